using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace VitSparse.Kernels;

/// <summary>
/// A linear layer with an unstructured sparse weight: per output row, its non-zeros (values and 16-bit
/// column indices), compressed by row (CSR), with per-row pointers into each 128-wide block of K. Runs
/// feature-major like XNNPACK's f32-spmm: each non-zero is one broadcast times up to 4 vectors of tokens
/// of Xᵀ's row, so a weight costs 2 scalar loads and 4 vector loads for 4 FMAs. Two interleaved accumulator sets (even and odd non-zeros) give 8 independent FMA
/// chains. Column indices are 16-bit because the index stream is the only per-non-zero traffic besides the
/// value: 6 bytes per weight instead of 8, and every ViT width fits (K ≤ 65536; wider layers stay dense).
/// </summary>
public sealed class CsrLinear : ILinear
{
    public int N { get; }
    public int K { get; }
    public SimdWidth Width { get; }
    public int NonZeros => _values.Length;
    public double Density => NonZeros / ((double)N * K);
    public long MacsPerRow => NonZeros;

    /// <summary>Largest K a 16-bit column index addresses.</summary>
    public const int MaxK = ushort.MaxValue + 1;
    const int ChunkVectors = 4;
    const int RowsPerItem = 16;
    /// <summary>Features of K per pass over a chunk's Xᵀ.</summary>
    const int KBlock = 128;
    readonly int _kBlocks;
    readonly int[] _segPtr;     // [N][kBlocks + 1]: row i's non-zeros in K block kb are [segPtr[i][kb], segPtr[i][kb + 1])
    readonly ushort[] _cols;    // [nnz], sorted and unique within a row
    readonly float[] _values;   // [nnz]
    readonly float[] _bias;     // [N]

    CsrLinear(int n, int k, SimdWidth width, ReadOnlySpan<int> rowPtr, ushort[] cols, float[] values, float[] bias)
    {
        N = n; K = k; Width = width; _cols = cols; _values = values; _bias = bias;
        _kBlocks = (k + KBlock - 1) / KBlock;
        _segPtr = new int[checked(n * (_kBlocks + 1))];
        for (int i = 0; i < n; i++)
        {
            int p = rowPtr[i];
            for (int kb = 0; kb < _kBlocks; kb++)
            {
                _segPtr[i * (_kBlocks + 1) + kb] = p;
                while (p < rowPtr[i + 1] && cols[p] < (kb + 1) * KBlock) p++;
            }
            _segPtr[i * (_kBlocks + 1) + _kBlocks] = rowPtr[i + 1];
        }
    }

    /// <summary>From CSR arrays: values [nnz], colIndices [nnz] sorted and unique per row, rowPtr [n + 1]; all checked here.</summary>
    public static CsrLinear FromCsr(ReadOnlySpan<float> values, ReadOnlySpan<int> colIndices, ReadOnlySpan<int> rowPtr, int n, int k, ReadOnlySpan<float> bias, SimdWidth width = 0)
    {
        if (k > MaxK) throw new ArgumentOutOfRangeException(nameof(k), k, $"input width must be in [1, {MaxK}] for 16-bit column indices");
        Validate(values.Length, colIndices, rowPtr, n, k);
        if (!bias.IsEmpty && bias.Length != n) throw new ArgumentException($"bias has {bias.Length} elements, expected {n}", nameof(bias));
        var cols = new ushort[colIndices.Length];
        for (int p = 0; p < cols.Length; p++) cols[p] = (ushort)colIndices[p];
        if (width == 0) width = Isa.Best == SimdWidth.Scalar ? SimdWidth.V128 : Isa.Best;
        var b = new float[n];
        bias.CopyTo(b);
        return new CsrLinear(n, k, width, rowPtr, cols, values.ToArray(), b);
    }

    /// <summary>Checks CSR index data against an n×k weight; the exception's ParamName says which array is wrong.</summary>
    public static void Validate(int valueCount, ReadOnlySpan<int> colIndices, ReadOnlySpan<int> rowPtr, int n, int k)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "output width must be positive");
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "input width must be positive");
        if (rowPtr.Length != (long)n + 1) throw new ArgumentException($"row pointers have {rowPtr.Length} entries, expected {(long)n + 1}", nameof(rowPtr));
        if (rowPtr[0] != 0) throw new ArgumentException($"row pointers start at {rowPtr[0]}, not 0", nameof(rowPtr));
        for (int i = 0; i < n; i++)
            if (rowPtr[i + 1] < rowPtr[i]) throw new ArgumentException($"row pointers decrease at row {i} ({rowPtr[i]} → {rowPtr[i + 1]})", nameof(rowPtr));
        int nnz = colIndices.Length;
        if (rowPtr[n] != nnz) throw new ArgumentException($"row pointers end at {rowPtr[n]}, but there are {nnz} column indices", nameof(rowPtr));
        if (valueCount != nnz) throw new ArgumentException($"values hold {valueCount} floats, expected one per column index ({nnz})", "values");
        for (int i = 0; i < n; i++)
            for (int p = rowPtr[i]; p < rowPtr[i + 1]; p++)
            {
                int c = colIndices[p];
                if (c < 0 || c >= k) throw new ArgumentException($"column index {c} (non-zero {p}, row {i}) is outside [0, {k})", nameof(colIndices));
                if (p > rowPtr[i] && c <= colIndices[p - 1])
                    throw new ArgumentException($"column indices of row {i} are {(c == colIndices[p - 1] ? "duplicated" : "unsorted")} at non-zero {p} ({colIndices[p - 1]} then {c})", nameof(colIndices));
            }
    }

    /// <summary>Keeps the non-zeros of a dense W[n,k] (−0 counts as zero).</summary>
    public static CsrLinear FromDense(ReadOnlySpan<float> weight, int n, int k, ReadOnlySpan<float> bias, SimdWidth width = 0)
    {
        var (values, cols, rowPtr) = ToCsr(weight, n, k);
        return FromCsr(values, cols, rowPtr, n, k, bias, width);
    }

    /// <summary>Dense W[n,k] → CSR arrays.</summary>
    public static (float[] Values, int[] ColIndices, int[] RowPtr) ToCsr(ReadOnlySpan<float> weight, int n, int k)
    {
        if (weight.Length != (long)n * k) throw new ArgumentException($"weight has {weight.Length} elements, expected {n}×{k}", nameof(weight));
        int nnz = 0;
        foreach (float v in weight) if (v != 0f) nnz++;
        var values = new float[nnz];
        var cols = new int[nnz];
        var rowPtr = new int[n + 1];
        int p = 0;
        for (int i = 0; i < n; i++)
        {
            var row = weight.Slice(i * k, k);
            for (int j = 0; j < k; j++)
                if (row[j] != 0f) { values[p] = row[j]; cols[p] = j; p++; }
            rowPtr[i + 1] = p;
        }
        return (values, cols, rowPtr);
    }

    /// <summary>The weight as dense W [N,K] row-major and the bias [N] again.</summary>
    public void CopyDense(Span<float> weight, Span<float> bias)
    {
        if (weight.Length < (long)N * K || bias.Length < N) throw new ArgumentException($"needs {N}×{K} weights and {N} biases");
        weight[..(N * K)].Clear();
        for (int i = 0; i < N; i++)
            for (int p = _segPtr[i * (_kBlocks + 1)]; p < _segPtr[i * (_kBlocks + 1) + _kBlocks]; p++) weight[i * K + _cols[p]] = _values[p];
        _bias.AsSpan(0, N).CopyTo(bias);
    }

    public void Forward(ReadOnlySpan<float> x, int m, int ldx, Span<float> y, int ldy, Epilogue epilogue, ThreadTeam team)
    {
        if (m <= 0) return;
        FeatureMajor.CheckArguments(N, K, x, m, ldx, y, ldy);
        int mPad = FeatureMajor.PaddedTokens(m);
        var xt = team.Shared(FeatureMajor.TransposedLength(K, mPad));
        int lanes = Isa.LanesOf(Width), chunkTokens = ChunkVectors * lanes;
        int vectors = (m + lanes - 1) / lanes, chunks = (vectors + ChunkVectors - 1) / ChunkVectors;
        unsafe
        {
            fixed (float* px = x)
            fixed (float* py = y)
            fixed (float* pxt = xt)
            fixed (float* values = _values)
            fixed (ushort* cols = _cols)
            fixed (float* bias = _bias)
            fixed (int* segPtr = _segPtr)
            {
                FeatureMajor.Transpose(px, m, ldx, K, pxt, K, mPad, team);
                int rowGroups = (N + RowsPerItem - 1) / RowsPerItem;
                team.For(rowGroups * chunks, new Body(this, pxt, mPad, m, py, ldy, epilogue, chunks, vectors, chunkTokens, values, cols, bias, segPtr, team));
            }
        }
    }

    /// <summary>
    /// One work item = 16 output rows × one chunk of tokens, chunk-major. Within an item, K goes in blocks of
    /// <see cref="KBlock"/> features: the block of Xᵀ (128 rows × 64 tokens = 32 KB) serves all 16 rows from L1,
    /// where the whole chunk (K rows) would stream from L2 for every row; partial sums wait in the tile.
    /// </summary>
    unsafe readonly struct Body(CsrLinear w, float* xt, int mPad, int m, float* y, int ldy, Epilogue ep, int chunks, int vectors, int chunkTokens,
        float* values, ushort* cols, float* bias, int* segPtr, ThreadTeam team) : IRangeBody
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
            int vc = TOps.Count, kBlocks = w._kBlocks, rowGroups = (w.N + RowsPerItem - 1) / RowsPerItem;
            fixed (float* tile = team.Scratch(worker, RowsPerItem * chunkTokens))
            {
                for (int item = start; item < end; item++)
                {
                    int c = item / rowGroups, n0 = item % rowGroups * RowsPerItem, rows = Math.Min(RowsPerItem, w.N - n0);
                    // Chunks split the token vectors evenly (13 vectors → 4,3,3,3), so threads get equal work.
                    int v0 = (int)((long)c * vectors / chunks), vecs = (int)((long)(c + 1) * vectors / chunks) - v0;
                    int m0 = v0 * vc, tokens = Math.Min(vecs * vc, m - m0);
                    float* xChunk = xt + m0;
                    for (int kb = 0; kb < kBlocks; kb++)
                        for (int r = 0; r < rows; r++)
                        {
                            int* seg = segPtr + (long)(n0 + r) * (kBlocks + 1) + kb;
                            ref float tileRow = ref *(tile + r * chunkTokens);
                            bool first = kb == 0;
                            switch (vecs)
                            {
                                case 4: Row<TOps, TV, R4>(seg[0], seg[1], xChunk, ref tileRow, first); break;
                                case 3: Row<TOps, TV, R3>(seg[0], seg[1], xChunk, ref tileRow, first); break;
                                case 2: Row<TOps, TV, R2>(seg[0], seg[1], xChunk, ref tileRow, first); break;
                                default: Row<TOps, TV, R1>(seg[0], seg[1], xChunk, ref tileRow, first); break;
                            }
                        }
                    FeatureMajor.FinishTile<TOps, TV>(tile, chunkTokens, rows, vecs, bias + n0, ep);
                    FeatureMajor.WriteOut(tile, chunkTokens, rows, tokens, y + (long)m0 * ldy + n0, ldy, ep);
                }
            }
        }

        /// <summary>tileRow (=, or += after the first K block) Σ over non-zeros [p0, p1) of value × Xᵀ row, for TC token vectors.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Row<TOps, TV, TC>(int p0, int p1, float* xChunk, ref float tileRow, bool first) where TOps : struct, IVec<TV> where TV : struct where TC : struct, IRows
        {
            int vc = TOps.Count;
            long ld = mPad;
            TV a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
            TV b0 = TOps.Zero, b1 = TOps.Zero, b2 = TOps.Zero, b3 = TOps.Zero;
            if (!first)
            {
                a0 = TOps.Load(ref tileRow);
                if (TC.Value > 1) a1 = TOps.Load(ref Unsafe.Add(ref tileRow, vc));
                if (TC.Value > 2) a2 = TOps.Load(ref Unsafe.Add(ref tileRow, 2 * vc));
                if (TC.Value > 3) a3 = TOps.Load(ref Unsafe.Add(ref tileRow, 3 * vc));
            }
            int p = p0;
            for (; p + 1 < p1; p += 2)
            {
                float* xa = xChunk + cols[p] * ld, xb = xChunk + cols[p + 1] * ld;
                TV s = TOps.Broadcast(values[p]), u = TOps.Broadcast(values[p + 1]);
                a0 = TOps.Fma(s, TOps.Load(ref *xa), a0);
                b0 = TOps.Fma(u, TOps.Load(ref *xb), b0);
                if (TC.Value > 1) { a1 = TOps.Fma(s, TOps.Load(ref *(xa + vc)), a1); b1 = TOps.Fma(u, TOps.Load(ref *(xb + vc)), b1); }
                if (TC.Value > 2) { a2 = TOps.Fma(s, TOps.Load(ref *(xa + 2 * vc)), a2); b2 = TOps.Fma(u, TOps.Load(ref *(xb + 2 * vc)), b2); }
                if (TC.Value > 3) { a3 = TOps.Fma(s, TOps.Load(ref *(xa + 3 * vc)), a3); b3 = TOps.Fma(u, TOps.Load(ref *(xb + 3 * vc)), b3); }
            }
            if (p < p1)
            {
                float* xa = xChunk + cols[p] * ld;
                TV s = TOps.Broadcast(values[p]);
                a0 = TOps.Fma(s, TOps.Load(ref *xa), a0);
                if (TC.Value > 1) a1 = TOps.Fma(s, TOps.Load(ref *(xa + vc)), a1);
                if (TC.Value > 2) a2 = TOps.Fma(s, TOps.Load(ref *(xa + 2 * vc)), a2);
                if (TC.Value > 3) a3 = TOps.Fma(s, TOps.Load(ref *(xa + 3 * vc)), a3);
            }
            TOps.Store(ref tileRow, TOps.Add(a0, b0));
            if (TC.Value > 1) TOps.Store(ref Unsafe.Add(ref tileRow, vc), TOps.Add(a1, b1));
            if (TC.Value > 2) TOps.Store(ref Unsafe.Add(ref tileRow, 2 * vc), TOps.Add(a2, b2));
            if (TC.Value > 3) TOps.Store(ref Unsafe.Add(ref tileRow, 3 * vc), TOps.Add(a3, b3));
        }
    }
}
