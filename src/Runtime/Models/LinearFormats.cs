using System.Globalization;
using VitSparse.Kernels;

namespace VitSparse.Runtime.Models;

/// <summary>Which kernel a linear layer gets at load (`--sparse`).</summary>
public enum SparseMode
{
    /// <summary>Per layer, the format the cost model says is fastest for the zeros the weight holds.</summary>
    Auto,
    /// <summary>Every layer dense, whatever it holds or how the file stores it.</summary>
    Off,
    /// <summary>Every layer block-sparse, with the block shape of least estimated cost.</summary>
    Bsr,
    /// <summary>Every layer unstructured sparse (dense where K exceeds 16-bit column indices).</summary>
    Unstructured,
}

/// <summary>
/// Time per kept multiply-add of each sparse kernel relative to the dense packed GEMM (1.0), single
/// thread, M = 197 (the measured defaults are from `bench kernels` on the machine named in the README; the
/// command prints them for the machine it runs on, with the break-even density each implies). A format
/// wins a layer when density × factor &lt; 1 and beats the other formats' products.
/// </summary>
public sealed record SparseCostModel(IReadOnlyDictionary<(int H, int W), double> BsrFactor, double DefaultBsrFactor, double UnstructuredFactor)
{
    /// <summary>
    /// `bench kernels --sparse` (alternating rounds, median over the DeiT-S/B shapes) on the Zen 4 machine of README
    /// "Sparse linears": BSR 0.99–1.09 for 32- and 64-row blocks (the dense GEMM's engine over the kept blocks),
    /// 1.13–1.27 for 16- and 8-row blocks (`--cases bsr --rounds 21`); unstructured 1.9 since the CSR kernel's rework (median at density 0.5;
    /// 1.85–1.97 over 0.3–0.6, 2.5 at 0.1; `--cases unstructured`). The machine's noise exceeded the differences
    /// between similar block shapes, so their factors are kept in the order block size implies (a bigger block
    /// never costs more per MAC).
    /// </summary>
    public static SparseCostModel Measured { get; } = new(new Dictionary<(int, int), double>
    {
        [(64, 32)] = 1.0, [(32, 64)] = 1.0, [(32, 32)] = 1.0, [(16, 16)] = 1.15, [(16, 4)] = 1.15, [(8, 8)] = 1.25,
    }, 1.4, 1.9);

    /// <summary>Block shapes `auto` looks for in a weight's zeros, coarsest first.</summary>
    public static readonly (int H, int W)[] CandidateBlocks = [(64, 32), (32, 64), (32, 32), (16, 16), (16, 4), (8, 8)];

    /// <summary>Time per kept MAC of BSR with h×w blocks, relative to the dense GEMM's time per MAC.</summary>
    public double Bsr(int h, int w) => BsrFactor.TryGetValue((h, w), out double f) ? f : DefaultBsrFactor;

    /// <summary>The density below which a format with this factor beats dense, as printed.</summary>
    public static string BreakEven(double factor) => factor <= 1 ? "any" : (1 / factor).ToString("0.00", CultureInfo.InvariantCulture);
}

/// <summary>The format a layer was given at load, with the numbers `inspect` shows.</summary>
public sealed record LayerFormat(string Layer, int N, int K, WeightFormat Format, int BlockHeight, int BlockWidth, double Density, long NonZeros, long KernelMacsPerRow)
{
    /// <summary>"dense", "bsr 32×32" or "unstructured", as `inspect` prints it.</summary>
    public string Describe() => StoredLayout.Describe(Format, BlockHeight, BlockWidth);

    /// <summary>Rows of X this layer sees per image: the patches, every token, or the class token for a head.</summary>
    public long RowsPerImage(VitConfig c) =>
        Layer.StartsWith("patch_embed", StringComparison.Ordinal) ? c.PatchTokens : Layer.StartsWith("head", StringComparison.Ordinal) ? 1 : c.Tokens;

    /// <summary>Bytes the chosen kernel stores: all weights dense; values plus 4-byte block columns (BSR) or 2-byte columns (CSR).</summary>
    public long StoredBytes => Format switch
    {
        WeightFormat.Bsr => 4 * KernelMacsPerRow + 4 * (KernelMacsPerRow / ((long)BlockHeight * BlockWidth)),
        WeightFormat.Unstructured => 6 * KernelMacsPerRow,
        _ => 4L * N * K,
    };
}

/// <summary>
/// Picks and builds each linear layer's kernel at load from the zeros its weight holds: exact zeros are
/// counted per element and per candidate block shape, and the cost model picks dense, BSR (best block
/// shape) or unstructured. A block shape the file stored the weight in is always a candidate.
/// </summary>
public static class LinearFormats
{
    /// <summary>The kernel for one linear layer (n×k weight, row-major) under <paramref name="mode"/>, and what was chosen.</summary>
    public static (ILinear Linear, LayerFormat Format) Build(string layer, ReadOnlySpan<float> weight, int n, int k, ReadOnlySpan<float> bias,
        SparseMode mode, SimdWidth width, SparseCostModel? costs = null, StoredLayout? stored = null)
    {
        costs ??= SparseCostModel.Measured;
        long total = (long)n * k, nonZeros = 0;
        foreach (float v in weight) if (v != 0f) nonZeros++;
        double density = nonZeros / (double)total;
        LayerFormat Dense() => new(layer, n, k, WeightFormat.Dense, 1, 1, density, nonZeros, total);
        if (mode == SparseMode.Off || (mode == SparseMode.Auto && nonZeros == total && stored == null))
            return (PackedLinear.Pack(weight, n, k, bias, width), Dense());

        // Best block shape by estimated cost: kept fraction × the shape's factor.
        (int H, int W, double Density, double Cost) best = (0, 0, 1, double.MaxValue);
        var shapes = SparseCostModel.CandidateBlocks.ToList();
        if (stored is { Format: WeightFormat.Bsr } s && !shapes.Contains((s.BlockHeight, s.BlockWidth))) shapes.Insert(0, (s.BlockHeight, s.BlockWidth));
        var cells = CellMask.Of(weight, n, k);
        foreach (var (h, w) in shapes)
        {
            var (kept, blocks) = h % CellMask.Side == 0 && w % CellMask.Side == 0 ? cells.CountBlocks(h, w) : BsrLinear.CountBlocks(weight, n, k, h, w);
            double d = kept / (double)blocks, cost = d * costs.Bsr(h, w);
            if (cost < best.Cost) best = (h, w, d, cost);
        }
        double unstructuredCost = k <= CsrLinear.MaxK ? density * costs.UnstructuredFactor : double.MaxValue;
        var choice = mode switch
        {
            SparseMode.Bsr => WeightFormat.Bsr,
            SparseMode.Unstructured => k <= CsrLinear.MaxK ? WeightFormat.Unstructured : WeightFormat.Dense,
            _ => best.Cost < 1 && best.Cost <= unstructuredCost ? WeightFormat.Bsr : unstructuredCost < 1 ? WeightFormat.Unstructured : WeightFormat.Dense,
        };
        switch (choice)
        {
            case WeightFormat.Bsr:
                var bsr = BsrLinear.FromDense(weight, n, k, best.H, best.W, bias, width);
                return (bsr, new LayerFormat(layer, n, k, WeightFormat.Bsr, best.H, best.W, density, nonZeros, bsr.MacsPerRow));
            case WeightFormat.Unstructured:
                var csr = CsrLinear.FromDense(weight, n, k, bias, width);
                return (csr, new LayerFormat(layer, n, k, WeightFormat.Unstructured, 1, 1, density, nonZeros, csr.MacsPerRow));
            default:
                return (PackedLinear.Pack(weight, n, k, bias, width), Dense());
        }
    }

    /// <summary>Which 4×4 cells of a weight hold a non-zero: every candidate block shape is counted from it in one pass's time.</summary>
    sealed class CellMask
    {
        public const int Side = 4;
        readonly bool[] _any;
        readonly int _rows, _cols, _n, _k;

        CellMask(bool[] any, int rows, int cols, int n, int k) { _any = any; _rows = rows; _cols = cols; _n = n; _k = k; }

        public static CellMask Of(ReadOnlySpan<float> w, int n, int k)
        {
            int rows = (n + Side - 1) / Side, cols = (k + Side - 1) / Side;
            var any = new bool[(long)rows * cols];
            for (int i = 0; i < n; i++)
            {
                var row = w.Slice(i * k, k);
                int cellRow = i / Side * cols;
                for (int j = 0; j < k; j++) if (row[j] != 0f) any[cellRow + j / Side] = true;
            }
            return new CellMask(any, rows, cols, n, k);
        }

        public (long Kept, long Total) CountBlocks(int h, int w)
        {
            int ch = h / Side, cw = w / Side, blockRows = (_n + h - 1) / h, blockCols = (_k + w - 1) / w;
            long kept = 0;
            for (int br = 0; br < blockRows; br++)
                for (int bc = 0; bc < blockCols; bc++)
                {
                    bool any = false;
                    for (int r = br * ch; r < Math.Min(_rows, br * ch + ch) && !any; r++)
                        any = _any.AsSpan(r * _cols + bc * cw, Math.Min(cw, _cols - bc * cw)).Contains(true);
                    if (any) kept++;
                }
            return (kept, (long)blockRows * blockCols);
        }
    }
}
