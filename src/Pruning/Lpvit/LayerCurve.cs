namespace VitSparse.Pruning.Lpvit;

/// <summary>How the distortion curve counts the second-order term ½ΔWᵀ(ggᵀ + λI)ΔW (methods.md §3.2).</summary>
public enum SecondOrder
{
    /// <summary>First-order term only.</summary>
    Off,
    /// <summary>½[(gᵀΔW)² + λ‖ΔW‖²], exactly (the default).</summary>
    On,
    /// <summary>
    /// The reference code's incremental update: it adds ½(ΔΔW + 2ΔW)ᵀHΔΔW with the new ΔW where the exact update
    /// uses the old one, and its H·ΔΔW adds λ (not λ·ΔΔW) on the changed weights.
    /// </summary>
    Reference,
}

/// <summary>
/// One layer's rate-distortion data at amounts a = d/points, d = 0…points (fraction of blocks pruned): the
/// nested prune sets (blocks ranked once, kept ones the top int((1−a)·n)), kept weights, distortion δ,
/// LPViT's power term P and the curve the allocation reads, δ + β·P.
/// </summary>
public sealed class LayerCurve
{
    /// <summary>The layer.</summary>
    public PrunableLayer Layer { get; }
    /// <summary>Its block grid.</summary>
    public BlockGrid Grid { get; }
    /// <summary>Blocks from most to least important: at any amount the kept blocks are a prefix of this order.</summary>
    public int[] Ranking { get; }
    /// <summary>Amount of blocks pruned at each point, d/points.</summary>
    public double[] Amounts { get; }
    /// <summary>Weights kept at each point (ragged blocks count their in-bounds weights).</summary>
    public long[] KeptWeights { get; }
    /// <summary>Distortion δ at each point (null for baselines, which are not calibrated).</summary>
    public double[]? Distortion { get; }
    /// <summary>The power term P at each point as the chosen sign counts it (null when not computed).</summary>
    public double[]? Power { get; internal set; }
    /// <summary>δ + β·P: the curve the slope search reads.</summary>
    public double[]? Combined { get; internal set; }
    readonly long[] _keptPrefix;

    LayerCurve(PrunableLayer layer, BlockGrid grid, int[] ranking, int points, double[]? distortion)
    {
        Layer = layer;
        Grid = grid;
        Ranking = ranking;
        _keptPrefix = new long[ranking.Length + 1];
        for (int i = 0; i < ranking.Length; i++) _keptPrefix[i + 1] = _keptPrefix[i] + grid.Elements(ranking[i]);
        Amounts = Enumerable.Range(0, points + 1).Select(d => d / (double)points).ToArray();
        KeptWeights = Amounts.Select(a => KeptWeightsAt(a)).ToArray();
        Distortion = distortion;
    }

    /// <summary>
    /// A curve as <see cref="CurveFile"/> read it back: enough for the allocation. The file keeps no block indices,
    /// so the ranking is the positions 0…n−1 in the file's (already ranked) order.
    /// </summary>
    internal LayerCurve(PrunableLayer layer, BlockGrid grid, long[] keptPrefix, double[] amounts, double[]? distortion, double[]? power, double[]? combined)
    {
        Layer = layer;
        Grid = grid;
        Ranking = Enumerable.Range(0, grid.Count).ToArray();
        _keptPrefix = keptPrefix;
        Amounts = amounts;
        KeptWeights = amounts.Select(a => KeptWeightsAt(a)).ToArray();
        Distortion = distortion;
        Power = power;
        Combined = combined;
    }

    /// <summary>Weights kept with the top k blocks, k = 0…blocks.</summary>
    public IReadOnlyList<long> KeptWeightsByBlocks => _keptPrefix;

    /// <summary>Blocks kept at amount <paramref name="a"/>: int((1−a)·n), as the reference's top-k.</summary>
    public int KeptBlocks(double a) => Math.Clamp((int)((1.0 - a) * Grid.Count), 0, Grid.Count);

    /// <summary>Weights kept at amount <paramref name="a"/>.</summary>
    public long KeptWeightsAt(double a) => _keptPrefix[KeptBlocks(a)];

    /// <summary>Weights kept when the top <paramref name="blocks"/> blocks are.</summary>
    public long KeptWeightsOfBlocks(int blocks) => _keptPrefix[blocks];

    /// <summary>
    /// Blocks ranked by a per-block score (higher kept first; ties by block index, so sets are nested and reproducible).
    /// </summary>
    public static int[] Rank(double[] score) =>
        Enumerable.Range(0, score.Length).OrderByDescending(b => score[b]).ThenBy(b => b).ToArray();

    /// <summary>A curve without distortion: for the magnitude baselines, ranked by mean |W| per block.</summary>
    public static LayerCurve Magnitude(PrunableLayer layer, BlockGrid grid, ReadOnlySpan<float> w, int points) =>
        new(layer, grid, Rank(MeanAbs(grid, w)), points, null);

    /// <summary>Mean |W| over each block's in-bounds weights.</summary>
    public static double[] MeanAbs(BlockGrid grid, ReadOnlySpan<float> w)
    {
        var score = new double[grid.Count];
        for (int b = 0; b < grid.Count; b++)
        {
            var (r0, c0, h, bw) = grid.Bounds(b);
            double s = 0;
            for (int r = r0; r < r0 + h; r++)
                foreach (float v in w.Slice(r * grid.Cols + c0, bw)) s += Math.Abs(v);
            score[b] = s / (h * bw);
        }
        return score;
    }

    /// <summary>
    /// LPViT's curve (methods.md §3.2): blocks ranked by mean |W ⊙ G|; with ΔW = −W on the pruned blocks,
    /// δ(a) = mean((ΔW ⊙ G)²) plus, by <paramref name="secondOrder"/>, ½ΔWᵀ(ggᵀ + λI)ΔW with g = G flattened;
    /// then, when <paramref name="smooth"/> is given, an EMA over a with that weight on the previous value, debiased.
    /// Per-block sums make every point O(blocks), so a DeiT-B layer costs one pass over its weights.
    /// </summary>
    public static LayerCurve Taylor(PrunableLayer layer, BlockGrid grid, ReadOnlySpan<float> w, ReadOnlySpan<float> g, int points,
        SecondOrder secondOrder, double lambda, double? smooth)
    {
        int n = grid.Count;
        var score = new double[n];
        var sq = new double[n];   // Σ (W·G)²
        var wg = new double[n];   // Σ W·G
        var ww = new double[n];   // Σ W²
        var sw = new double[n];   // Σ W
        for (int b = 0; b < n; b++)
        {
            var (r0, c0, h, bw) = grid.Bounds(b);
            double abs = 0;
            for (int r = r0; r < r0 + h; r++)
            {
                int o = r * grid.Cols + c0;
                for (int j = 0; j < bw; j++)
                {
                    double x = w[o + j], p = x * g[o + j];
                    abs += Math.Abs(p); sq[b] += p * p; wg[b] += p; ww[b] += x * x; sw[b] += x;
                }
            }
            score[b] = abs / (h * bw);
        }
        var ranking = Rank(score);
        var delta = new double[points + 1];
        double numel = layer.Numel;
        double sumSq = 0, s = 0, q = 0, reference = 0;
        int pruned = 0;
        for (int d = 0; d <= points; d++)
        {
            int target = n - Math.Clamp((int)((1.0 - d / (double)points) * n), 0, n);
            double sOld = s, newW = 0;
            for (; pruned < target; pruned++)
            {
                int b = ranking[n - 1 - pruned];
                sumSq += sq[b]; s += wg[b]; q += ww[b]; newW += sw[b];
            }
            // gᵀΔW = −S and ‖ΔW‖² = Q over the pruned weights.
            delta[d] = sumSq / numel;
            if (secondOrder == SecondOrder.On) delta[d] += 0.5 * (s * s + lambda * q);
            else if (secondOrder == SecondOrder.Reference)
            {
                // u = gᵀΔΔW = −(S − S_old); the code's step ½(ΔΔW + 2ΔW_new)ᵀ(g·u + λ·1) = ½u(u − 2S) − 1.5·λ·ΣW_new.
                double u = -(s - sOld);
                reference += 0.5 * u * (u - 2 * s) - 1.5 * lambda * newW;
                delta[d] += reference;
            }
        }
        if (smooth is { } weight) Smooth(delta, weight);
        return new LayerCurve(layer, grid, ranking, points, delta);
    }

    /// <summary>EMA with debias, TensorBoard's smoothing: last = w·last + (1−w)·y; out = last / (1 − wᵏ).</summary>
    public static void Smooth(double[] y, double weight)
    {
        double last = 0;
        for (int i = 0; i < y.Length; i++)
        {
            last = last * weight + (1 - weight) * y[i];
            y[i] = weight == 1 ? last : last / (1 - Math.Pow(weight, i + 1));
        }
    }
}
