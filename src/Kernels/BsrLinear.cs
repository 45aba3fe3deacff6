using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace VitSparse.Kernels;

/// <summary>
/// A linear layer whose weight is block-sparse (BSR): W[N,K] cut into bh×bw blocks, only the kept
/// (not all-zero) blocks stored, so time scales with the kept blocks. Runs feature-major
/// (<see cref="FeatureMajor"/>, Xᵀ in 16-token panels): a register tile of 8 output rows × 1–3 token vectors
/// accumulates, over each kept block of its block row, bw broadcast weights × bw rows of Xᵀ. Blocks past N or K (ragged
/// widths such as 307 or 1228) are zero-padded, as are block rows to a multiple of 8.
/// Packed layout: per kept block, per 8-row group g, per block column kk, the 8 rows' weights
/// contiguously ([block][g][kk][8]), the order the tile reads them.
/// </summary>
public sealed class BsrLinear : ILinear
{
    public int N { get; }
    public int K { get; }
    public int BlockHeight { get; }
    public int BlockWidth { get; }
    public SimdWidth Width { get; }
    public int BlockRows { get; }
    public int BlockCols { get; }
    public int KeptBlocks { get; }
    /// <summary>Kept blocks ÷ all blocks.</summary>
    public double Density => KeptBlocks / ((double)BlockRows * BlockCols);
    public long MacsPerRow => (long)KeptBlocks * BlockHeight * BlockWidth;

    const int R = FeatureMajor.Rows;
    /// <summary>Token vectors per work item at most (two 3-vector tiles): the chunk's Xᵀ panels stay in L2 while every row group passes over them.</summary>
    const int ChunkVectors = 6;
    readonly int _groups;          // 8-row groups per block row
    readonly int[] _rowPtr;        // [BlockRows + 1] into the kept blocks
    readonly int[] _colStart;      // per kept block: its first column of K (block column · bw)
    readonly float[] _values;      // [kept][groups][bw][8]
    readonly float[] _bias;        // [BlockRows][groups][8], zero past N

    BsrLinear(int n, int k, int bh, int bw, SimdWidth width, int[] rowPtr, int[] colStart, float[] values, float[] bias)
    {
        N = n; K = k; BlockHeight = bh; BlockWidth = bw; Width = width;
        BlockRows = rowPtr.Length - 1; BlockCols = (k + bw - 1) / bw; KeptBlocks = colStart.Length;
        _groups = (bh + R - 1) / R;
        _rowPtr = rowPtr; _colStart = colStart; _values = values; _bias = bias;
    }

    /// <summary>
    /// From BSR arrays as scipy and PyTorch store them: values [kept, bh, bw] row-major, colIndices [kept]
    /// block columns sorted and unique within each block row, rowPtr [⌈n/bh⌉ + 1]. Every index and count is
    /// checked here (ArgumentException naming what is wrong) before any kernel can read through it.
    /// </summary>
    public static BsrLinear FromBlocks(ReadOnlySpan<float> values, ReadOnlySpan<int> colIndices, ReadOnlySpan<int> rowPtr,
        int n, int k, int bh, int bw, ReadOnlySpan<float> bias, SimdWidth width = 0)
    {
        Validate(values.Length, colIndices, rowPtr, n, k, bh, bw);
        if (!bias.IsEmpty && bias.Length != n) throw new ArgumentException($"bias has {bias.Length} elements, expected {n}", nameof(bias));
        int blockRows = (n + bh - 1) / bh, kept = colIndices.Length;
        long blockFloats = (long)bh * bw;
        if (width == 0) width = Isa.Best == SimdWidth.Scalar ? SimdWidth.V128 : Isa.Best;
        int groups = (bh + R - 1) / R;
        long packedLength = (long)kept * groups * bw * R;
        if (packedLength > Array.MaxLength || (long)blockRows * groups * R > Array.MaxLength)
            throw new ArgumentException($"{kept} blocks of {bh}×{bw} pack to more than {Array.MaxLength} floats", nameof(values));
        return Pack(values, colIndices, rowPtr, n, k, bh, bw, bias, width, blockRows, groups, packedLength);
    }

    /// <summary>
    /// Checks BSR index data against a weight of n×k in bh×bw blocks; the exception's ParamName says which
    /// array is wrong (values, colIndices, rowPtr). Nothing reads through an index before this passed.
    /// </summary>
    public static void Validate(int valueCount, ReadOnlySpan<int> colIndices, ReadOnlySpan<int> rowPtr, int n, int k, int bh, int bw)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "output width must be positive");
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "input width must be positive");
        if (bh <= 0 || bw <= 0) throw new ArgumentException($"block shape {bh}×{bw} must be positive");
        int blockRows = (int)(((long)n + bh - 1) / bh), blockCols = (int)(((long)k + bw - 1) / bw);
        if (rowPtr.Length != (long)blockRows + 1)
            throw new ArgumentException($"row pointers have {rowPtr.Length} entries, expected {blockRows + 1} ({n} rows in blocks of {bh}, plus one)", nameof(rowPtr));
        if (rowPtr[0] != 0) throw new ArgumentException($"row pointers start at {rowPtr[0]}, not 0", nameof(rowPtr));
        for (int i = 0; i < blockRows; i++)
            if (rowPtr[i + 1] < rowPtr[i]) throw new ArgumentException($"row pointers decrease at block row {i} ({rowPtr[i]} → {rowPtr[i + 1]})", nameof(rowPtr));
        int kept = colIndices.Length;
        if (rowPtr[blockRows] != kept) throw new ArgumentException($"row pointers end at {rowPtr[blockRows]}, but there are {kept} column indices", nameof(rowPtr));
        for (int i = 0; i < blockRows; i++)
            for (int b = rowPtr[i]; b < rowPtr[i + 1]; b++)
            {
                int c = colIndices[b];
                if (c < 0 || c >= blockCols) throw new ArgumentException($"block column index {c} (block {b}, block row {i}) is outside [0, {blockCols})", nameof(colIndices));
                if (b > rowPtr[i] && c <= colIndices[b - 1])
                    throw new ArgumentException($"block columns of block row {i} are {(c == colIndices[b - 1] ? "duplicated" : "unsorted")} at block {b} ({colIndices[b - 1]} then {c})", nameof(colIndices));
            }
        long blockFloats = (long)bh * bw;
        if (valueCount != kept * blockFloats)
            throw new ArgumentException($"values hold {valueCount} floats, expected {kept} blocks × {bh}×{bw} = {kept * blockFloats}", "values");
    }

    static BsrLinear Pack(ReadOnlySpan<float> values, ReadOnlySpan<int> colIndices, ReadOnlySpan<int> rowPtr, int n, int k, int bh, int bw,
        ReadOnlySpan<float> bias, SimdWidth width, int blockRows, int groups, long packedLength)
    {
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
        return new BsrLinear(n, k, bh, bw, width, rowPtr.ToArray(), colStart, packed, b2);
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

    /// <summary>Keeps the blocks of a dense W[n,k] that hold any non-zero (a block of zeros and −0 is dropped).</summary>
    public static BsrLinear FromDense(ReadOnlySpan<float> weight, int n, int k, int bh, int bw, ReadOnlySpan<float> bias, SimdWidth width = 0)
    {
        var (values, cols, rowPtr) = ToBlocks(weight, n, k, bh, bw);
        return FromBlocks(values, cols, rowPtr, n, k, bh, bw, bias, width);
    }

    /// <summary>Dense W[n,k] → BSR arrays (values [kept, bh, bw] zero-padded at the edges, block columns, row pointers).</summary>
    public static (float[] Values, int[] ColIndices, int[] RowPtr) ToBlocks(ReadOnlySpan<float> weight, int n, int k, int bh, int bw)
    {
        if (bh <= 0 || bw <= 0) throw new ArgumentException($"block shape {bh}×{bw} must be positive");
        if (weight.Length != (long)n * k) throw new ArgumentException($"weight has {weight.Length} elements, expected {n}×{k}", nameof(weight));
        int blockRows = (n + bh - 1) / bh, blockCols = (k + bw - 1) / bw;
        var rowPtr = new int[blockRows + 1];
        var cols = new List<int>();
        for (int br = 0; br < blockRows; br++)
        {
            for (int bc = 0; bc < blockCols; bc++)
                if (BlockHasNonZero(weight, n, k, br * bh, bc * bw, bh, bw)) cols.Add(bc);
            rowPtr[br + 1] = cols.Count;
        }
        long blockFloats = (long)bh * bw;
        if (cols.Count * blockFloats > Array.MaxLength) throw new ArgumentException($"{cols.Count} blocks of {bh}×{bw} are more than one array holds", nameof(weight));
        var values = new float[cols.Count * blockFloats];
        for (int br = 0; br < blockRows; br++)
            for (int b = rowPtr[br]; b < rowPtr[br + 1]; b++)
            {
                int r0 = br * bh, c0 = cols[b] * bw;
                for (int r = 0; r < Math.Min(bh, n - r0); r++)
                    weight.Slice((r0 + r) * k + c0, Math.Min(bw, k - c0)).CopyTo(values.AsSpan((int)(b * blockFloats) + r * bw));
            }
        return (values, cols.ToArray(), rowPtr);
    }

    /// <summary>How many bh×bw blocks of W[n,k] hold a non-zero, out of how many.</summary>
    public static (long Kept, long Total) CountBlocks(ReadOnlySpan<float> weight, int n, int k, int bh, int bw)
    {
        int blockRows = (n + bh - 1) / bh, blockCols = (k + bw - 1) / bw;
        long kept = 0;
        for (int br = 0; br < blockRows; br++)
            for (int bc = 0; bc < blockCols; bc++)
                if (BlockHasNonZero(weight, n, k, br * bh, bc * bw, bh, bw)) kept++;
        return (kept, (long)blockRows * blockCols);
    }

    static bool BlockHasNonZero(ReadOnlySpan<float> w, int n, int k, int r0, int c0, int bh, int bw)
    {
        int cols = Math.Min(bw, k - c0);
        for (int r = r0; r < Math.Min(n, r0 + bh); r++)
            if (w.Slice(r * k + c0, cols).IndexOfAnyExcept(0f) >= 0) return true;  // −0 == 0 counts as zero
        return false;
    }

    public void Forward(ReadOnlySpan<float> x, int m, int ldx, Span<float> y, int ldy, Epilogue epilogue, ThreadTeam team)
    {
        if (m <= 0) return;
        FeatureMajor.CheckArguments(N, K, x, m, ldx, y, ldy);
        int mPad = FeatureMajor.PaddedTokens(m), kPad = BlockCols * BlockWidth;
        var xt = team.Shared(FeatureMajor.TransposedLength(kPad, mPad));
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
                FeatureMajor.TransposeToPanels(px, m, ldx, K, pxt, kPad, mPad, team);
                team.For(BlockRows * _groups * chunks, new Body(this, pxt, kPad, m, py, ldy, epilogue, chunks, vectors, chunkTokens, values, bias, rowPtr, colStart, team));
            }
        }
    }

    /// <summary>One work item = one 8-row group of a block row × one chunk of tokens; items are chunk-major: the chunk's Xᵀ stays in L2 while the weights stream past it (weights are 4 bytes per 24 FMAs, Xᵀ 192).</summary>
    unsafe readonly struct Body(BsrLinear w, float* xt, int kPad, int m, float* y, int ldy, Epilogue ep, int chunks, int vectors, int chunkTokens,
        float* values, float* bias, int* rowPtr, int* colStart, ThreadTeam team) : IRangeBody
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
            fixed (float* tile = team.Scratch(worker, R * chunkTokens))
            {
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
