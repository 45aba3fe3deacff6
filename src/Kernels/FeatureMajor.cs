using System.Runtime.CompilerServices;

namespace VitSparse.Kernels;

/// <summary>
/// The token-contiguous ("feature-major") layout the sparse kernels run on (anchors.md §0.3, XNNPACK's
/// spmm): Xᵀ in panels of tokens, so a kept weight is broadcast once and multiplies a whole vector of tokens. X
/// is transposed once per layer call into the caller's shared scratch, or on teams of up to <see cref="PerWorkerThreads"/>
/// into each worker's own copy as its items need it (8×8 AVX shuffle blocks, <see cref="Transpose8x8"/>); results leave the registers as
/// Yᵀ tiles of 8 output rows, get bias and GELU there (one bias per row = one broadcast), and are written
/// back transposed into Y[M][N] with the same epilogues as the dense path.
/// </summary>
internal static unsafe class FeatureMajor
{
    /// <summary>Output rows per register tile, and the row granularity of the sparse weight layouts.</summary>
    public const int Rows = 8;
    /// <summary>Extra floats a buffer needs so that a 64-byte aligned start fits in it.</summary>
    public const int AlignFloats = 16;

    /// <summary>The first 64-byte line boundary at or after p: a vector load from there never splits a cache line.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float* AlignUp(float* p) => (float*)(((nint)p + 63) & ~(nint)63);

    /// <summary>Tokens padded to whole 16-float lines, so every vector width loads whole vectors.</summary>
    public static int PaddedTokens(int m) => (m + Panel - 1) / Panel * Panel;

    /// <summary>Tokens per panel of the paneled Xᵀ layout (one 512-bit vector).</summary>
    public const int Panel = 16;

    /// <summary>
    /// Teams of up to this many threads give each worker its own Xᵀ, transposed part by part as its items first
    /// need them. A shared Xᵀ is written by one core and read by all: on 2 cores of Zen 4 the caller's transpose
    /// took 2.2× its single-thread time (every line it rewrote was still held by the other core) and the
    /// sparse layers ran up to 13 % slower than with private copies (README "Sparse linears"). A private copy costs
    /// its worker up to one whole transpose, which every further worker would repeat: wider teams share one.
    /// </summary>
    public const int PerWorkerThreads = 2;

    /// <summary>
    /// Largest Xᵀ (floats) copied per worker: 32 MB, DeiT-B's widest layer at batch 8. Larger inputs share one, so
    /// a big batch does not double the buffer (the transpose is a small share of such a layer anyway).
    /// </summary>
    public const long PerWorkerMaxFloats = 8L << 20;

    /// <summary>How many copies of an Xᵀ of <paramref name="floats"/> a call on <paramref name="team"/> uses: one per worker or one shared.</summary>
    public static int Copies(ThreadTeam team, long floats) => team.Threads <= PerWorkerThreads && floats <= PerWorkerMaxFloats ? team.Threads : 1;

    /// <summary>
    /// The caller's shared buffer for a call's Xᵀ: <paramref name="copies"/> (see <see cref="Copies"/>) of
    /// <paramref name="copyFloats"/> each (a multiple of 16, so every copy starts on a line), then a done flag per copy and
    /// part (chunk or panel) of it; refused, not wrapped, past one array.
    /// </summary>
    public static float[] TransposeBuffer(ThreadTeam team, long copyFloats, int parts, out int copies)
    {
        copies = Copies(team, copyFloats);
        long floats = copies * copyFloats + (long)copies * parts + AlignFloats;
        if (floats > Array.MaxLength) throw new ArgumentException($"{copies} transposed inputs of {copyFloats} floats do not fit one array; run fewer images at a time");
        return team.Shared((int)floats);
    }

    /// <summary>The done flags after the copies at <paramref name="xt"/>, cleared; null when the team shares one Xᵀ (transposed up front).</summary>
    public static int* DoneFlags(float* xt, long copyFloats, int copies, int parts)
    {
        if (copies == 1) return null;
        int* done = (int*)(xt + copies * copyFloats);
        new Span<int>(done, copies * parts).Clear();
        return done;
    }

    /// <summary>
    /// Fills xt with Xᵀ in panels of 16 tokens, [mPad/16][kPad][16]: a register tile walking down K reads
    /// one contiguous stream per token vector (sequential lines the prefetchers follow), instead of one
    /// line per row of a row-major Xᵀ. Tokens past m and features past k are zero, so padded weights and padded
    /// tokens multiply finite numbers.
    /// </summary>
    public static void TransposeToPanels(float* x, int m, int ldx, int k, float* xt, int kPad, int mPad, ThreadTeam team)
    {
        var body = new PanelBody(x, m, ldx, k, xt, kPad);
        if ((long)mPad * kPad <= ThreadTeam.CallerFloats) team.OnCaller(mPad / Panel, body);
        else team.For(mPad / Panel, body);
    }

    /// <summary>Where token t's value of feature 0 lives in the paneled layout; feature kk is kk·16 floats further.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float* PanelToken(float* xt, int kPad, int t) => xt + (long)(t / Panel) * kPad * Panel + t % Panel;

    /// <summary>The transpose of <see cref="TransposeToPanels"/>, a panel at a time.</summary>
    public readonly struct PanelBody(float* x, int m, int ldx, int k, float* xt, int kPad) : IRangeBody
    {
        public void Run(int start, int end, int worker) => Panels(start, end, xt);

        /// <summary>Panels [start, end) into the paneled Xᵀ at <paramref name="into"/> (the shared one or a worker's own copy).</summary>
        public void Panels(int start, int end, float* into)
        {
            int k8 = Transpose8x8.IsSupported ? k / 8 * 8 : 0;
            for (int item = start; item < end; item++)
            {
                int t0 = item * Panel, tokens = Math.Min(Panel, m - t0);
                float* panel = into + (long)item * kPad * Panel;
                // Each half panel of 8 tokens: whole 8×8 blocks by AVX shuffles, the rest (and ragged halves) element by element.
                for (int j0 = 0; j0 < Panel; j0 += 8)
                {
                    int n = Math.Clamp(tokens - j0, 0, 8), kFrom = n == 8 ? k8 : 0;
                    for (int kk = 0; kk < kFrom; kk += 8)
                        Transpose8x8.Block(x + (long)(t0 + j0) * ldx + kk, ldx, panel + (long)kk * Panel + j0, Panel);
                    for (int kk = kFrom; kk < k; kk++)
                    {
                        float* d = panel + (long)kk * Panel + j0;
                        int j = 0;
                        for (; j < n; j++) d[j] = x[(long)(t0 + j0 + j) * ldx + kk];
                        for (; j < 8; j++) d[j] = 0f;
                    }
                }
                new Span<float>(panel + (long)k * Panel, (kPad - k) * Panel).Clear();
            }
        }
    }

    /// <summary>
    /// Bias (one per row: a broadcast) and GELU over a raw Yᵀ tile of rows × vecs vectors, in place. Kept
    /// apart from the kernels' loops: inlined there, its register pressure made the JIT spill accumulators.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void FinishTile<TOps, TV>(float* tile, int tileStride, int rows, int vecs, float* bias, Epilogue ep) where TOps : struct, IVec<TV> where TV : struct
    {
        int vc = TOps.Count;
        for (int r = 0; r < rows; r++)
        {
            TV b = TOps.Broadcast(bias[r]);
            for (int v = 0; v < vecs; v++)
            {
                ref float t = ref *(tile + r * tileStride + v * vc);
                TV x = TOps.Add(TOps.Load(ref t), b);
                if (ep == Epilogue.BiasGelu) x = Gelu.Apply<TOps, TV>(x);
                TOps.Store(ref t, x);
            }
        }
    }

    /// <summary>
    /// Writes a finished Yᵀ tile (rows × tokens, row stride tileStride) into Y[m0.., n0..] transposed, stored
    /// or added (residual): 8×8 blocks with AVX shuffles, the ragged edges element by element.
    /// </summary>
    public static void WriteOut(float* tile, int tileStride, int rows, int tokens, float* y, int ldy, Epilogue ep)
    {
        bool acc = ep == Epilogue.BiasAccumulate;
        int rows8 = Transpose8x8.IsSupported ? rows / 8 * 8 : 0, tokens8 = Transpose8x8.IsSupported ? tokens / 8 * 8 : 0;
        for (int j0 = 0; j0 < tokens8; j0 += 8)
            for (int r0 = 0; r0 < rows8; r0 += 8)
                Transpose8x8.Block(tile + r0 * tileStride + j0, tileStride, y + (long)j0 * ldy + r0, ldy, acc);
        for (int j = 0; j < tokens; j++)
        {
            float* yr = y + (long)j * ldy;
            for (int r = j < tokens8 ? rows8 : 0; r < rows; r++)
                yr[r] = acc ? yr[r] + tile[r * tileStride + j] : tile[r * tileStride + j];
        }
    }

    /// <summary>The checks every Forward makes before touching memory (the same as the dense path's).</summary>
    public static void CheckArguments(int n, int k, ReadOnlySpan<float> x, int m, int ldx, Span<float> y, int ldy)
    {
        if (ldx < k) throw new ArgumentOutOfRangeException(nameof(ldx), ldx, $"row stride must be at least K={k}");
        if (ldy < n) throw new ArgumentOutOfRangeException(nameof(ldy), ldy, $"row stride must be at least N={n}");
        if (x.Length < (long)(m - 1) * ldx + k) throw new ArgumentException($"x holds {x.Length} floats, needs {m} rows of stride {ldx}", nameof(x));
        if (y.Length < (long)(m - 1) * ldy + n) throw new ArgumentException($"y holds {y.Length} floats, needs {m} rows of stride {ldy}", nameof(y));
    }

    /// <summary>Floats of the shared Xᵀ buffer, refused (not wrapped) past one array.</summary>
    public static int TransposedLength(int kPad, int mPad)
    {
        long len = (long)kPad * mPad;
        return len <= Array.MaxLength ? (int)len : throw new ArgumentException($"a transposed input of {kPad}×{mPad} floats does not fit one array; run fewer images at a time");
    }
}
