using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace VitSparse.Kernels;

/// <summary>What a linear layer does with its result after X·Wᵀ + b.</summary>
public enum Epilogue
{
    /// <summary>Y = X·Wᵀ + b.</summary>
    Bias,
    /// <summary>Y = GELU(X·Wᵀ + b), exact erf form.</summary>
    BiasGelu,
    /// <summary>Y += X·Wᵀ + b: the residual add of a pre-norm block, done while the tile is in registers' reach.</summary>
    BiasAccumulate,
}

/// <summary>
/// A linear layer Y[M,N] = X[M,K]·W[N,K]ᵀ + b with W packed once, at model load, into column panels
/// of NR = 2 vectors: panel p holds W[p·NR .. p·NR+NR, :] transposed to [K][NR], zero-padded past N.
/// Any M, N and K run without padding the model: ragged N is a partially used last panel, ragged M a
/// shorter row tile.
/// </summary>
public sealed class PackedLinear : ILinear
{
    public int N { get; }
    public int K { get; }
    public SimdWidth Width { get; }
    public long MacsPerRow => (long)N * K;
    internal int Nr { get; }
    internal int Panels { get; }
    readonly float[] _packed;
    readonly float[] _bias; // padded to Panels·Nr

    PackedLinear(int n, int k, SimdWidth width, float[] packed, float[] bias)
    {
        N = n; K = k; Width = width;
        Nr = 2 * Isa.LanesOf(width);
        Panels = (n + Nr - 1) / Nr;
        _packed = packed; _bias = bias;
    }

    /// <summary>Packs W [n,k] row-major (PyTorch's Linear layout) and an optional bias [n].</summary>
    public static PackedLinear Pack(ReadOnlySpan<float> weight, int n, int k, ReadOnlySpan<float> bias, SimdWidth width = 0)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "output width must be positive");
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "input width must be positive");
        if (weight.Length != (long)n * k)
            throw new ArgumentException($"weight has {weight.Length} elements, expected {n}×{k}", nameof(weight));
        if (!bias.IsEmpty && bias.Length != n)
            throw new ArgumentException($"bias has {bias.Length} elements, expected {n}", nameof(bias));
        if (width == 0) width = Isa.Best == SimdWidth.Scalar ? SimdWidth.V128 : Isa.Best;
        int nr = 2 * Isa.LanesOf(width);
        int panels = (n + nr - 1) / nr;
        if ((long)panels * k * nr > Array.MaxLength)
            throw new ArgumentException($"a {n}×{k} weight packs to more than {Array.MaxLength} floats", nameof(weight));
        var packed = new float[panels * k * nr];
        for (int p = 0; p < panels; p++)
        {
            int n0 = p * nr, cols = Math.Min(nr, n - n0);
            var dst = packed.AsSpan(p * k * nr, k * nr);
            for (int j = 0; j < cols; j++)
            {
                var row = weight.Slice((n0 + j) * k, k);
                for (int kk = 0; kk < k; kk++) dst[kk * nr + j] = row[kk];
            }
        }
        var b = new float[panels * nr];
        bias.CopyTo(b);
        return new PackedLinear(n, k, width, packed, b);
    }

    /// <summary>
    /// Runs the layer on M rows. x is [m, K] with row stride ldx (≥ K), y is [m, N] with row stride ldy (≥ N).
    /// Each output element is written by exactly one work item, so the result is the same for any team size.
    /// </summary>
    public void Forward(ReadOnlySpan<float> x, int m, int ldx, Span<float> y, int ldy, Epilogue epilogue, ThreadTeam team)
    {
        if (m <= 0) return;
        if (ldx < K) throw new ArgumentOutOfRangeException(nameof(ldx), ldx, $"row stride must be at least K={K}");
        if (ldy < N) throw new ArgumentOutOfRangeException(nameof(ldy), ldy, $"row stride must be at least N={N}");
        if (x.Length < (long)(m - 1) * ldx + K) throw new ArgumentException($"x holds {x.Length} floats, needs {m} rows of stride {ldx}", nameof(x));
        if (y.Length < (long)(m - 1) * ldy + N) throw new ArgumentException($"y holds {y.Length} floats, needs {m} rows of stride {ldy}", nameof(y));
        unsafe
        {
            fixed (float* px = x)
            fixed (float* py = y)
            {
                int rowTiles = (m + MicroKernel.Mr - 1) / MicroKernel.Mr;
                int groups = (rowTiles + GroupTiles - 1) / GroupTiles;
                int groupTiles = (rowTiles + groups - 1) / groups;
                // Items of a chunk share each block of X while it is in L2 (see Loop), so with several K blocks a
                // chunk takes as many as fit, but never so many that fewer than 16 chunks are left to share out.
                int items = Panels * groups, kBlocks = (K + Kc - 1) / Kc;
                int grain = kBlocks == 1 ? 1 : Math.Clamp(items / 16, 1, Math.Max(1, ChunkFloats / (groupTiles * MicroKernel.Mr * Nr)));
                team.For(items, new Body(this, px, m, ldx, py, ldy, epilogue, rowTiles, groups, groupTiles, team), grain);
            }
        }
    }

    /// <summary>K is consumed in blocks of this many rows of a panel (Kc·NR floats, 32 KB at 512 bits), so the
    /// block stays in L1 while every row tile of a group streams past it.</summary>
    const int Kc = 256;
    /// <summary>Row tiles that share one pass over a panel; their partial sums live in worker scratch.</summary>
    const int GroupTiles = 40;
    /// <summary>Partial sums a worker keeps for a K-block-outer chunk of items (256 KB): with X's block, well inside L2.</summary>
    const int ChunkFloats = 64 * 1024;

    /// <summary>One work item = one panel × one group of row tiles; items are panel-major so a worker keeps its panel hot.</summary>
    unsafe readonly struct Body(PackedLinear w, float* x, int m, int ldx, float* y, int ldy, Epilogue ep, int rowTiles, int groups, int groupTiles, ThreadTeam team) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            switch (w.Width)
            {
                case SimdWidth.V512: Loop<V512, Vector512<float>>(start, end, worker); break;
                case SimdWidth.V256: Loop<V256, Vector256<float>>(start, end, worker); break;
                default: Loop<V128, Vector128<float>>(start, end, worker); break;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Loop<TOps, TV>(int start, int end, int worker) where TOps : struct, IVec<TV> where TV : struct
        {
            int nr = w.Nr, k = w.K, tileFloats = MicroKernel.Mr * nr, itemFloats = groupTiles * tileFloats;
            // Equal K blocks of at most Kc: K = 307 runs as 154 + 153, not 256 + 51.
            int kBlocks = (k + Kc - 1) / Kc, kBlock = (k + kBlocks - 1) / kBlocks;
            // With several K blocks, a chunk of items goes K-block-outer: one block of X's rows (≤ Kc columns)
            // serves every panel of the chunk while it is in L2, instead of all of X (2.4 MB for K = 3072)
            // being re-read from L3 for each panel. The chunk's partial sums wait in worker scratch.
            int chunk = kBlocks == 1 ? 1 : Math.Clamp(ChunkFloats / itemFloats, 1, end - start);
            ref float packed = ref MemoryMarshal.GetArrayDataReference(w._packed);
            ref float bias = ref MemoryMarshal.GetArrayDataReference(w._bias);
            fixed (float* acc = team.Scratch(worker, chunk * itemFloats))
            {
                for (int c0 = start; c0 < end; c0 += chunk)
                {
                    int c1 = Math.Min(end, c0 + chunk);
                    for (int k0 = 0; k0 < k; k0 += kBlock)
                    {
                        int kc = Math.Min(kBlock, k - k0);
                        for (int item = c0; item < c1; item++)
                        {
                            int p = item / groups, g = item % groups;
                            int t0 = g * groupTiles, t1 = Math.Min(rowTiles, t0 + groupTiles);
                            ref float block = ref Unsafe.Add(ref packed, ((nint)p * k + k0) * nr);
                            // The weights stream from memory exactly once; fetch the block used next while this
                            // one serves every row tile, instead of stalling on it when its turn comes.
                            var (nextItem, nextK) = item + 1 < c1 ? (item + 1, k0) : k0 + kBlock < k ? (c0, k0 + kBlock) : (c1, 0);
                            int nextLines = 0;
                            float* next = null;
                            if (nextItem < end)
                            {
                                nextLines = Math.Min(kBlock, k - nextK) * nr / 16;
                                next = (float*)Unsafe.AsPointer(ref Unsafe.Add(ref packed, ((nint)(nextItem / groups) * k + nextK) * nr));
                            }
                            int perTile = (nextLines + (t1 - t0) - 1) / (t1 - t0);
                            float* itemAcc = acc + (item - c0) * itemFloats;
                            for (int t = t0; t < t1; t++)
                            {
                                if (nextLines > 0) Prefetch.Lines(next + (long)(t - t0) * perTile * 16, Math.Min(perTile, nextLines - (t - t0) * perTile));
                                int m0 = t * MicroKernel.Mr, rows = Math.Min(MicroKernel.Mr, m - m0);
                                MicroKernel.Run<TOps, TV>(rows, ref *(x + (long)m0 * ldx + k0), ldx, ref block, kc,
                                    ref *(itemAcc + (t - t0) * tileFloats), accumulate: k0 > 0);
                            }
                        }
                    }
                    for (int item = c0; item < c1; item++)
                    {
                        int p = item / groups, g = item % groups;
                        int t0 = g * groupTiles, t1 = Math.Min(rowTiles, t0 + groupTiles);
                        int n0 = p * nr, cols = Math.Min(nr, w.N - n0);
                        for (int t = t0; t < t1; t++)
                        {
                            int m0 = t * MicroKernel.Mr, rows = Math.Min(MicroKernel.Mr, m - m0);
                            Finish<TOps, TV>(acc + (item - c0) * itemFloats + (t - t0) * tileFloats, rows, ref Unsafe.Add(ref bias, n0), y + (long)m0 * ldy + n0, cols);
                        }
                    }
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        void Finish<TOps, TV>(float* tile, int rows, ref float bias, float* dst, int cols) where TOps : struct, IVec<TV> where TV : struct
        {
            int vc = TOps.Count, nr = 2 * vc;
            TV b0 = TOps.Load(ref bias), b1 = TOps.Load(ref Unsafe.Add(ref bias, vc));
            for (int r = 0; r < rows; r++)
            {
                ref float t = ref *(tile + r * nr);
                TV v0 = TOps.Add(TOps.Load(ref t), b0);
                TV v1 = TOps.Add(TOps.Load(ref Unsafe.Add(ref t, vc)), b1);
                if (ep == Epilogue.BiasGelu)
                {
                    v0 = Gelu.Apply<TOps, TV>(v0);
                    v1 = Gelu.Apply<TOps, TV>(v1);
                }
                float* d = dst + (long)r * ldy;
                if (cols == nr)
                {
                    if (ep == Epilogue.BiasAccumulate)
                    {
                        v0 = TOps.Add(v0, TOps.Load(ref *d));
                        v1 = TOps.Add(v1, TOps.Load(ref *(d + vc)));
                    }
                    TOps.Store(ref *d, v0);
                    TOps.Store(ref *(d + vc), v1);
                }
                else
                {
                    TOps.Store(ref t, v0);
                    TOps.Store(ref Unsafe.Add(ref t, vc), v1);
                    float* s = tile + r * nr;
                    if (ep == Epilogue.BiasAccumulate)
                        for (int j = 0; j < cols; j++) d[j] += s[j];
                    else
                        for (int j = 0; j < cols; j++) d[j] = s[j];
                }
            }
        }
    }
}
