using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace VitSparse.Kernels;

/// <summary>
/// Block-sparse linears whose block rows are narrower than the widest vector panel (bh = 8 or 16 at 512 bits):
/// run feature-major (<see cref="FeatureMajor"/>, Xᵀ in 16-token panels), a register tile of 8 output rows ×
/// 1–3 token vectors accumulating, over each kept block of its block row, bw broadcast weights × bw rows of Xᵀ.
/// There a weight broadcast serves up to 3 token vectors, where the panel kernel's one-vector panel would
/// need one broadcast of X per FMA. Blocks past N or K are zero-padded, as are block rows to a multiple of 8.
/// Packed layout: per kept block, per 8-row group g, per block column kk, the 8 rows' weights
/// contiguously ([block][g][kk][8]), the order the tile reads them. Indices are validated by <see cref="BsrLinear"/>.
/// </summary>
internal sealed class FeatureMajorBsr
{
    public int N { get; }
    public int K { get; }
    public int BlockHeight { get; }
    public int BlockWidth { get; }
    public SimdWidth Width { get; }
    public int BlockRows { get; }
    public int BlockCols { get; }

    const int R = FeatureMajor.Rows;
    /// <summary>Token vectors per work item at most (two 3-vector tiles): the chunk's Xᵀ panels stay in L2 while every row group passes over them.</summary>
    const int ChunkVectors = 6;
    readonly int _groups;          // 8-row groups per block row
    readonly int[] _rowPtr;        // [BlockRows + 1] into the kept blocks
    readonly int[] _colStart;      // per kept block: its first column of K (block column · bw)
    readonly float[] _values;      // [kept][groups][bw][8]
    readonly float[] _bias;        // [BlockRows][groups][8], zero past N

    FeatureMajorBsr(int n, int k, int bh, int bw, SimdWidth width, int[] rowPtr, int[] colStart, float[] values, float[] bias)
    {
        N = n; K = k; BlockHeight = bh; BlockWidth = bw; Width = width;
        BlockRows = rowPtr.Length - 1; BlockCols = (k + bw - 1) / bw;
        _groups = (bh + R - 1) / R;
        _rowPtr = rowPtr; _colStart = colStart; _values = values; _bias = bias;
    }

    /// <summary>Packs checked BSR arrays (values [kept, bh, bw], block columns, row pointers).</summary>
    public static FeatureMajorBsr Pack(ReadOnlySpan<float> values, ReadOnlySpan<int> colIndices, ReadOnlySpan<int> rowPtr, int n, int k, int bh, int bw,
        ReadOnlySpan<float> bias, SimdWidth width)
    {
        int blockRows = (n + bh - 1) / bh, groups = (bh + R - 1) / R;
        long packedLength = (long)colIndices.Length * groups * bw * R;
        if (packedLength > Array.MaxLength || (long)blockRows * groups * R > Array.MaxLength)
            throw new ArgumentException($"{colIndices.Length} blocks of {bh}×{bw} pack to more than {Array.MaxLength} floats", nameof(values));
        long blockFloats = (long)bh * bw;
        int kept = colIndices.Length;
        var packed = new float[packedLength];
        var colStart = new int[kept];
        for (int br = 0; br < blockRows; br++)
            for (int b = rowPtr[br]; b < rowPtr[br + 1]; b++)
            {
                int c0 = colIndices[b] * bw, cols = Math.Min(bw, k - c0), rows = Math.Min(bh, n - br * bh);
                colStart[b] = c0;
                var src = values.Slice((int)(b * blockFloats), (int)blockFloats);
                // Rows past N and columns past K stay zero whatever the file holds there.
                for (int r = 0; r < rows; r++)
                {
                    long dst = ((long)b * groups + r / R) * bw * R + r % R;
                    for (int kk = 0; kk < cols; kk++) packed[dst + (long)kk * R] = src[r * bw + kk];
                }
            }
        var b2 = new float[blockRows * groups * R];
        for (int i = 0; i < bias.Length; i++) b2[(i / bh * groups + i % bh / R) * R + i % bh % R] = bias[i];
        return new FeatureMajorBsr(n, k, bh, bw, width, rowPtr.ToArray(), colStart, packed, b2);
    }

    /// <summary>The weight as dense W [N,K] row-major (zeros outside the kept blocks) and the bias [N] again.</summary>
    public void CopyDense(Span<float> weight, Span<float> bias)
    {
        if (weight.Length < (long)N * K || bias.Length < N) throw new ArgumentException($"needs {N}×{K} weights and {N} biases");
        weight[..(N * K)].Clear();
        int bh = BlockHeight, bw = BlockWidth;
        for (int br = 0; br < BlockRows; br++)
            for (int b = _rowPtr[br]; b < _rowPtr[br + 1]; b++)
            {
                int c0 = _colStart[b], cols = Math.Min(bw, K - c0), rows = Math.Min(bh, N - br * bh);
                for (int r = 0; r < rows; r++)
                {
                    long src = ((long)b * _groups + r / R) * bw * R + r % R;
                    for (int kk = 0; kk < cols; kk++) weight[(br * bh + r) * K + c0 + kk] = _values[src + (long)kk * R];
                }
            }
        for (int i = 0; i < N; i++) bias[i] = _bias[(i / bh * _groups + i % bh / R) * R + i % bh % R];
    }

    /// <summary>As <see cref="ILinear.Forward"/>; arguments are checked here too.</summary>
    public void Forward(ReadOnlySpan<float> x, int m, int ldx, Span<float> y, int ldy, Epilogue epilogue, ThreadTeam team)
    {
        if (m <= 0) return;
        FeatureMajor.CheckArguments(N, K, x, m, ldx, y, ldy);
        int mPad = FeatureMajor.PaddedTokens(m), kPad = BlockCols * BlockWidth, panelCount = mPad / FeatureMajor.Panel;
        // One Xᵀ for the team, or one per worker (FeatureMajor.PerWorkerThreads), with a done flag per (copy, panel).
        long copyFloats = FeatureMajor.TransposedLength(kPad, mPad);
        var xt = FeatureMajor.TransposeBuffer(team, copyFloats, panelCount, out int copies);
        int lanes = Isa.LanesOf(Width), chunkTokens = ChunkVectors * lanes;
        int vectors = (m + lanes - 1) / lanes, chunks = (vectors + ChunkVectors - 1) / ChunkVectors;
        unsafe
        {
            fixed (float* px = x)
            fixed (float* py = y)
            fixed (float* pxt = xt)
            fixed (float* values = _values)
            fixed (float* bias = _bias)
            fixed (int* rowPtr = _rowPtr)
            fixed (int* colStart = _colStart)
            {
                // Panels start on a 64-byte line (a 16-token panel row is one line), so no vector load splits a line.
                float* panels = FeatureMajor.AlignUp(pxt);
                int* done = FeatureMajor.DoneFlags(panels, copyFloats, copies, panelCount);
                if (done == null) FeatureMajor.TransposeToPanels(px, m, ldx, K, panels, kPad, mPad, team);   // else each worker transposes what its items need
                var transpose = new FeatureMajor.PanelBody(px, m, ldx, K, panels, kPad);
                team.For(BlockRows * _groups * chunks, new Body(this, panels, done, copyFloats, panelCount, transpose, kPad, m, py, ldy, epilogue,
                    chunks, vectors, chunkTokens, values, bias, rowPtr, colStart, team));
            }
        }
    }

    /// <summary>One work item = one 8-row group of a block row × one chunk of tokens; items are chunk-major: the chunk's Xᵀ stays in L2 while the weights stream past it (weights are 4 bytes per 24 FMAs, Xᵀ 192).</summary>
    unsafe readonly struct Body(FeatureMajorBsr w, float* sharedXt, int* done, long copyFloats, int panelCount, FeatureMajor.PanelBody transpose, int kPad, int m,
        float* y, int ldy, Epilogue ep, int chunks, int vectors, int chunkTokens, float* values, float* bias, int* rowPtr, int* colStart, ThreadTeam team) : IRangeBody
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

        void Loop<TOps, TV>(int start, int end, int worker) where TOps : struct, IVec<TV> where TV : struct
        {
            int vc = TOps.Count, groups = w._groups, bh = w.BlockHeight, rowGroups = w.BlockRows * groups;
            // 16 or 24 accumulators need AVX-512's 32 registers; narrower widths (16 registers) keep one token vector.
            bool wide = TOps.Count == 16;
            fixed (float* tileBase = team.Scratch(worker, R * chunkTokens + FeatureMajor.AlignFloats))
            {
                float* tile = FeatureMajor.AlignUp(tileBase);
                for (int item = start; item < end; item++)
                {
                    int c = item / rowGroups, rg = item % rowGroups, br = rg / groups, g = rg % groups;
                    int n0 = br * bh + g * R, rows = Math.Min(Math.Min(R, bh - g * R), w.N - n0);
                    if (rows <= 0) continue;
                    // Chunks split the token vectors evenly (13 vectors → 4,3,3,3), so threads get equal work.
                    int v0 = (int)((long)c * vectors / chunks), vecs = (int)((long)(c + 1) * vectors / chunks) - v0;
                    int m0 = v0 * vc, tokens = Math.Min(vecs * vc, m - m0);
                    int b0 = rowPtr[br], b1 = rowPtr[br + 1];
                    float* biasRow = bias + (long)rg * R;
                    float* xt = sharedXt;
                    if (done != null)
                    {
                        // This worker's own Xᵀ: each panel transposed the first time one of its items needs it.
                        xt += worker * copyFloats;
                        int* mine = done + worker * panelCount;
                        for (int p = m0 / FeatureMajor.Panel, pEnd = (m0 + vecs * vc + FeatureMajor.Panel - 1) / FeatureMajor.Panel; p < pEnd; p++)
                            if (mine[p] == 0) { transpose.Panels(p, p + 1, xt); mine[p] = 1; }
                    }
                    for (int v = 0; v < vecs;)
                    {
                        float* xTile = FeatureMajor.PanelToken(xt, kPad, m0 + v * vc);
                        ref float tileCol = ref *(tile + v * vc);
                        int left = vecs - v;
                        if (wide && left >= 3 && left != 4) { Tile<TOps, TV, R3>(b0, b1, g, xTile, ref tileCol); v += 3; }
                        else if (wide && left >= 2) { Tile<TOps, TV, C2>(b0, b1, g, xTile, ref tileCol); v += 2; }
                        else { Tile<TOps, TV, C1>(b0, b1, g, xTile, ref tileCol); v += 1; }
                    }
                    FeatureMajor.FinishTile<TOps, TV>(tile, chunkTokens, rows, vecs, biasRow, ep);
                    FeatureMajor.WriteOut(tile, chunkTokens, rows, tokens, y + (long)m0 * ldy + n0, ldy, ep);
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Tile<TOps, TV, TC>(int b0, int b1, int g, float* xTile, ref float tile) where TOps : struct, IVec<TV> where TV : struct where TC : struct, IRows
        {
            int vc = TOps.Count, bw = w.BlockWidth, groups = w._groups;
            const int ld = FeatureMajor.Panel;
            long next = (long)kPad * FeatureMajor.Panel;   // the next token vector's panel (wide tiles run at 16 lanes)
            TV p0 = TOps.Zero, p1 = TOps.Zero, p2 = TOps.Zero, p3 = TOps.Zero, p4 = TOps.Zero, p5 = TOps.Zero, p6 = TOps.Zero, p7 = TOps.Zero;
            TV q0 = TOps.Zero, q1 = TOps.Zero, q2 = TOps.Zero, q3 = TOps.Zero, q4 = TOps.Zero, q5 = TOps.Zero, q6 = TOps.Zero, q7 = TOps.Zero;
            TV u0 = TOps.Zero, u1 = TOps.Zero, u2 = TOps.Zero, u3 = TOps.Zero, u4 = TOps.Zero, u5 = TOps.Zero, u6 = TOps.Zero, u7 = TOps.Zero;
            for (int b = b0; b < b1; b++)
            {
                float* wv = values + ((long)b * groups + g) * bw * R;
                float* xr = xTile + colStart[b] * ld;
                for (int kk = 0; kk < bw; kk++, xr += ld, wv += R)
                {
                    TV x0 = TOps.Load(ref *xr), x1 = TC.Value > 1 ? TOps.Load(ref *(xr + next)) : x0, x2 = TC.Value > 2 ? TOps.Load(ref *(xr + 2 * next)) : x0;
                    TV s = TOps.Broadcast(wv[0]); p0 = TOps.Fma(s, x0, p0); if (TC.Value > 1) q0 = TOps.Fma(s, x1, q0); if (TC.Value > 2) u0 = TOps.Fma(s, x2, u0);
                    s = TOps.Broadcast(wv[1]); p1 = TOps.Fma(s, x0, p1); if (TC.Value > 1) q1 = TOps.Fma(s, x1, q1); if (TC.Value > 2) u1 = TOps.Fma(s, x2, u1);
                    s = TOps.Broadcast(wv[2]); p2 = TOps.Fma(s, x0, p2); if (TC.Value > 1) q2 = TOps.Fma(s, x1, q2); if (TC.Value > 2) u2 = TOps.Fma(s, x2, u2);
                    s = TOps.Broadcast(wv[3]); p3 = TOps.Fma(s, x0, p3); if (TC.Value > 1) q3 = TOps.Fma(s, x1, q3); if (TC.Value > 2) u3 = TOps.Fma(s, x2, u3);
                    s = TOps.Broadcast(wv[4]); p4 = TOps.Fma(s, x0, p4); if (TC.Value > 1) q4 = TOps.Fma(s, x1, q4); if (TC.Value > 2) u4 = TOps.Fma(s, x2, u4);
                    s = TOps.Broadcast(wv[5]); p5 = TOps.Fma(s, x0, p5); if (TC.Value > 1) q5 = TOps.Fma(s, x1, q5); if (TC.Value > 2) u5 = TOps.Fma(s, x2, u5);
                    s = TOps.Broadcast(wv[6]); p6 = TOps.Fma(s, x0, p6); if (TC.Value > 1) q6 = TOps.Fma(s, x1, q6); if (TC.Value > 2) u6 = TOps.Fma(s, x2, u6);
                    s = TOps.Broadcast(wv[7]); p7 = TOps.Fma(s, x0, p7); if (TC.Value > 1) q7 = TOps.Fma(s, x1, q7); if (TC.Value > 2) u7 = TOps.Fma(s, x2, u7);
                }
            }
            int ts = chunkTokens;
            TOps.Store(ref tile, p0); TOps.Store(ref Unsafe.Add(ref tile, ts), p1);
            TOps.Store(ref Unsafe.Add(ref tile, 2 * ts), p2); TOps.Store(ref Unsafe.Add(ref tile, 3 * ts), p3);
            TOps.Store(ref Unsafe.Add(ref tile, 4 * ts), p4); TOps.Store(ref Unsafe.Add(ref tile, 5 * ts), p5);
            TOps.Store(ref Unsafe.Add(ref tile, 6 * ts), p6); TOps.Store(ref Unsafe.Add(ref tile, 7 * ts), p7);
            if (TC.Value > 1)
            {
                ref float t1 = ref Unsafe.Add(ref tile, vc);
                TOps.Store(ref t1, q0); TOps.Store(ref Unsafe.Add(ref t1, ts), q1);
                TOps.Store(ref Unsafe.Add(ref t1, 2 * ts), q2); TOps.Store(ref Unsafe.Add(ref t1, 3 * ts), q3);
                TOps.Store(ref Unsafe.Add(ref t1, 4 * ts), q4); TOps.Store(ref Unsafe.Add(ref t1, 5 * ts), q5);
                TOps.Store(ref Unsafe.Add(ref t1, 6 * ts), q6); TOps.Store(ref Unsafe.Add(ref t1, 7 * ts), q7);
            }
            if (TC.Value > 2)
            {
                ref float t2 = ref Unsafe.Add(ref tile, 2 * vc);
                TOps.Store(ref t2, u0); TOps.Store(ref Unsafe.Add(ref t2, ts), u1);
                TOps.Store(ref Unsafe.Add(ref t2, 2 * ts), u2); TOps.Store(ref Unsafe.Add(ref t2, 3 * ts), u3);
                TOps.Store(ref Unsafe.Add(ref t2, 4 * ts), u4); TOps.Store(ref Unsafe.Add(ref t2, 5 * ts), u5);
                TOps.Store(ref Unsafe.Add(ref t2, 6 * ts), u6); TOps.Store(ref Unsafe.Add(ref t2, 7 * ts), u7);
            }
        }
    }
}
