using VitSparse.Runtime;

namespace VitSparse.Pruning;

/// <summary>
/// One prunable layer's units (single weights or blocks) sorted once, least important first, with their scores.
/// Pruning a layer always removes a prefix of this order, so a threshold (or a count) is all an allocation chooses.
/// </summary>
internal sealed class LayerRanking
{
    public required string Name { get; init; }
    public required DimapModule Module { get; init; }
    public required int Rows { get; init; }
    public required int Cols { get; init; }
    public required Granularity Unit { get; init; }
    /// <summary>Unit indices (flat weight index, or block index br·blockCols+bc), ascending score.</summary>
    public required int[] Order { get; init; }
    /// <summary>Scores in <see cref="Order"/>'s order: non-decreasing, non-negative.</summary>
    public required float[] Scores { get; init; }
    /// <summary>Weights in the first i units of <see cref="Order"/> (length units + 1); null for single weights, where it is i.</summary>
    long[]? _cumulative;

    public long Params => (long)Rows * Cols;
    public int Units => Order.Length;
    int BlockCols => (Cols + Unit.BlockWidth - 1) / Unit.BlockWidth;

    /// <summary>Weights in the first <paramref name="count"/> units.</summary>
    public long WeightsIn(int count) => _cumulative?[count] ?? count;

    /// <summary>Units whose score is at most <paramref name="t"/> (they form a prefix).</summary>
    public int CountAtMost(float t)
    {
        int lo = 0, hi = Scores.Length;
        while (lo < hi) { int mid = (lo + hi) >>> 1; if (Scores[mid] <= t) lo = mid + 1; else hi = mid; }
        return lo;
    }

    /// <summary>Units whose score is below <paramref name="t"/>.</summary>
    public int CountBelow(float t)
    {
        int lo = 0, hi = Scores.Length;
        while (lo < hi) { int mid = (lo + hi) >>> 1; if (Scores[mid] < t) lo = mid + 1; else hi = mid; }
        return lo;
    }

    /// <summary>
    /// Ranks a [rows, cols] weight. <paramref name="lamp"/>: score = e / Σ of the e of units with e ≥ this one's (Eq. 10,
    /// LAMP), with e = w² or a block's Σw²; otherwise score = e (plain magnitude, for the per-layer uniform baseline).
    /// One sort per layer, O(n log n); ties are broken by the sort, deterministically for the same weights.
    /// </summary>
    public static LayerRanking Rank(string name, DimapModule module, ReadOnlySpan<float> w, int rows, int cols, Granularity unit, bool lamp)
    {
        int units;
        float[] energy;
        if (unit.IsUnstructured)
        {
            units = w.Length;
            energy = new float[units];
            // |w| sorts like w² and never overflows; squares are taken in double below.
            for (int i = 0; i < units; i++) energy[i] = MathF.Abs(w[i]);
        }
        else
        {
            int bh = unit.BlockHeight, bw = unit.BlockWidth, blockRows = (rows + bh - 1) / bh, blockCols = (cols + bw - 1) / bw;
            units = blockRows * blockCols;
            var sums = new double[units];
            for (int r = 0; r < rows; r++)
            {
                var row = w.Slice(r * cols, cols);
                int b0 = r / bh * blockCols;
                for (int c = 0; c < cols; c++) sums[b0 + c / bw] += (double)row[c] * row[c];
            }
            energy = new float[units];
            // Square roots keep float sort keys in range; the order is that of the energies.
            for (int i = 0; i < units; i++) energy[i] = (float)Math.Sqrt(sums[i]);
        }
        var order = new int[units];
        for (int i = 0; i < units; i++) order[i] = i;
        Array.Sort(energy, order);

        // In place: key (a magnitude) → score. The suffix sum runs from the largest unit down, in double.
        double suffix = 0;
        for (int i = units - 1; i >= 0; i--)
        {
            double e = (double)energy[i] * energy[i];
            suffix += e;
            energy[i] = lamp ? (suffix > 0 ? (float)(e / suffix) : 0f) : (float)e;
        }
        // Rounding to float keeps the order; equal magnitudes whose scores differ are put back in score order.
        for (int i = 1; i < units; i++) if (energy[i] < energy[i - 1]) energy[i] = energy[i - 1];

        var ranking = new LayerRanking { Name = name, Module = module, Rows = rows, Cols = cols, Unit = unit, Order = order, Scores = energy };
        if (!unit.IsUnstructured)
        {
            var cum = new long[units + 1];
            for (int i = 0; i < units; i++) cum[i + 1] = cum[i] + ranking.BlockSize(order[i]);
            ranking._cumulative = cum;
        }
        return ranking;
    }

    long BlockSize(int block)
    {
        int br = block / BlockCols, bc = block % BlockCols;
        return (long)Math.Min(Unit.BlockHeight, Rows - br * Unit.BlockHeight) * Math.Min(Unit.BlockWidth, Cols - bc * Unit.BlockWidth);
    }

    /// <summary>Zeros the first <paramref name="count"/> units of the order in <paramref name="w"/> (this layer's weight).</summary>
    public void Zero(Span<float> w, int count)
    {
        if (Unit.IsUnstructured)
        {
            for (int i = 0; i < count; i++) w[Order[i]] = 0f;
            return;
        }
        int bh = Unit.BlockHeight, bw = Unit.BlockWidth;
        for (int i = 0; i < count; i++)
        {
            int br = Order[i] / BlockCols, bc = Order[i] % BlockCols;
            int c0 = bc * bw, width = Math.Min(bw, Cols - c0);
            for (int r = br * bh; r < Math.Min(Rows, br * bh + bh); r++) w.Slice(r * Cols + c0, width).Clear();
        }
    }
}
