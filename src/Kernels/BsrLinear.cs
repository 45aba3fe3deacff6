namespace VitSparse.Kernels;

/// <summary>
/// A linear layer whose weight is block-sparse (BSR): W[N,K] cut into bh×bw blocks, only the kept
/// (not all-zero) blocks stored, so time scales with the kept blocks. Block rows that are a whole number of
/// two-vector panels (bh = 32 or 64 at 512 bits; 16 at 256) run on the dense GEMM's engine
/// (<see cref="PanelGemm"/>): a panel's packed rows are its kept blocks' columns only, adjacent kept blocks
/// merged into one run of K, X read in place, so a block row with every block kept costs what the dense layer
/// costs. Narrower block rows run feature-major (<see cref="FeatureMajorBsr"/>). Blocks past N or K (ragged
/// widths such as 307 or 1228) are cut at the edge.
/// </summary>
public sealed class BsrLinear : ILinear
{
    public int N { get; }
    public int K { get; }
    public int BlockHeight { get; }
    public int BlockWidth { get; }
    /// <summary>The vector width the kernel runs at (narrower than asked when the block height needs it).</summary>
    public SimdWidth Width => _gemm?.Width ?? _narrow!.Width;
    public int BlockRows { get; }
    public int BlockCols { get; }
    public int KeptBlocks { get; }
    /// <summary>Kept blocks ÷ all blocks.</summary>
    public double Density => KeptBlocks / ((double)BlockRows * BlockCols);
    public long MacsPerRow => (long)KeptBlocks * BlockHeight * BlockWidth;

    readonly PanelGemm? _gemm;          // block rows a whole number of two-vector panels
    readonly FeatureMajorBsr? _narrow;  // narrower block rows

    BsrLinear(int n, int k, int bh, int bw, int kept, PanelGemm? gemm, FeatureMajorBsr? narrow)
    {
        N = n; K = k; BlockHeight = bh; BlockWidth = bw; _gemm = gemm; _narrow = narrow;
        BlockRows = (n + bh - 1) / bh; BlockCols = (k + bw - 1) / bw; KeptBlocks = kept;
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
        if (width == 0) width = Isa.Best == SimdWidth.Scalar ? SimdWidth.V128 : Isa.Best;
        if (PanelWidth(bh, width) is not SimdWidth panelWidth)
            return new BsrLinear(n, k, bh, bw, colIndices.Length, null, FeatureMajorBsr.Pack(values, colIndices, rowPtr, n, k, bh, bw, bias, width));
        int nr = 2 * Isa.LanesOf(panelWidth), blockRows = (n + bh - 1) / bh, perBlockRow = (bh + nr - 1) / nr;
        var row0 = new int[blockRows * perBlockRow];
        var rows = new int[row0.Length];
        for (int br = 0; br < blockRows; br++)
            for (int s = 0; s < perBlockRow; s++)
            {
                row0[br * perBlockRow + s] = br * bh + s * nr;
                rows[br * perBlockRow + s] = Math.Min(nr, bh - s * nr);
            }
        var cols = colIndices.ToArray();
        var ptr = rowPtr.ToArray();
        // Adjacent kept block columns become one run of K; the last block column ends at K.
        void Runs(int panel, List<(int Start, int Length)> runs)
        {
            int br = panel / perBlockRow;
            for (int b = ptr[br]; b < ptr[br + 1]; b++)
            {
                int c0 = cols[b] * bw, len = Math.Min(bw, k - c0);
                if (runs.Count > 0 && runs[^1].Start + runs[^1].Length == c0) runs[^1] = (runs[^1].Start, runs[^1].Length + len);
                else runs.Add((c0, len));
            }
        }
        var gemm = PanelGemm.Pack(n, k, panelWidth, row0, rows, Runs, new BlockSource(values, cols, rowPtr, bh, bw), bias, "values");
        return new BsrLinear(n, k, bh, bw, cols.Length, gemm, null);
    }

    /// <summary>
    /// The vector width whose two-vector panel tiles bh exactly: the width asked for, or 256 bits where the CPU
    /// runs 512-bit FMAs at the 256-bit rate anyway (<see cref="Isa.Fma512IsHalfRate"/>: 16×16 blocks then run
    /// as one 16-wide panel per block row at full rate). Null: no such panel, so the block rows run feature-major
    /// (<see cref="FeatureMajorBsr"/>), which beats a one-vector panel's one broadcast of X per FMA.
    /// </summary>
    internal static SimdWidth? PanelWidth(int bh, SimdWidth width)
    {
        if (bh % (2 * Isa.LanesOf(width)) == 0) return width;
        if (width == SimdWidth.V512 && Isa.Fma512IsHalfRate && bh % (2 * Isa.LanesOf(SimdWidth.V256)) == 0) return SimdWidth.V256;
        return null;
    }

    /// <summary>W[row, column] inside a kept block: the block row's kept columns are searched (sorted, validated).</summary>
    readonly ref struct BlockSource(ReadOnlySpan<float> values, int[] cols, ReadOnlySpan<int> rowPtr, int bh, int bw) : PanelGemm.IWeightSource
    {
        readonly ReadOnlySpan<float> _values = values;
        readonly ReadOnlySpan<int> _rowPtr = rowPtr;

        public float At(int row, int column)
        {
            int br = row / bh, b0 = _rowPtr[br];
            int b = Array.BinarySearch(cols, b0, _rowPtr[br + 1] - b0, column / bw);
            return _values[(int)((long)b * bh * bw + (long)(row - br * bh) * bw + column % bw)];
        }
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

    /// <summary>The weight as dense W [N,K] row-major (zeros outside the kept blocks) and the bias [N] again.</summary>
    public void CopyDense(Span<float> weight, Span<float> bias)
    {
        if (_gemm != null) _gemm.CopyDense(weight, bias);
        else _narrow!.CopyDense(weight, bias);
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

    /// <summary>x is [m, K] with row stride ldx (≥ K), y is [m, N] with row stride ldy (≥ N); the same bits for any team size.</summary>
    public void Forward(ReadOnlySpan<float> x, int m, int ldx, Span<float> y, int ldy, Epilogue epilogue, ThreadTeam team)
    {
        if (_gemm != null) _gemm.Forward(x, m, ldx, y, ldy, epilogue, team);
        else _narrow!.Forward(x, m, ldx, y, ldy, epilogue, team);
    }
}
