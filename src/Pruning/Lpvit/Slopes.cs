using VitSparse.Runtime;

namespace VitSparse.Pruning.Lpvit;

/// <summary>
/// LPViT's layer-wise allocation, the "empirical optimization" (methods.md §3.3): for a slope λ = 2^s every
/// layer takes the amount where its curve's slope is closest to λ (capped at 1 − min_sp), and s is found by
/// binary search on [−100, 100] until the remaining linear+conv FLOPs ratio is within a tolerance of the target.
/// </summary>
public static class Slopes
{
    /// <summary>
    /// dy/dx at points 0…n−2 (n−1 values: the last point has none), by the reference's stencil
    /// (−y[i+h'] + 8y[i+h'/2] − 8y[i−h'/2] + y[i−h']) / (6(x[i+h'] − x[i])) with h' = min(h, i, n−1−i) shrinking
    /// towards the ends; where h' &lt; 2 a forward difference in the first two points, a central one in the last.
    /// </summary>
    public static double[] Derivative(IReadOnlyList<double> x, IReadOnlyList<double> y, int h)
    {
        int n = x.Count;
        var d = new double[n - 1];
        for (int i = 0; i < n - 1; i++)
        {
            int hh = Math.Min(h, Math.Min(i, n - i - 1));
            if (hh < 2 && i < 2) d[i] = (y[i + 1] - y[i]) / (x[i + 1] - x[i]);
            else if (hh < 2 && n - i < 3) d[i] = (y[i + 1] - y[i - 1]) / (x[i + 1] - x[i - 1]);
            else
            {
                int half = hh / 2;
                d[i] = (-y[i + hh] + 8 * y[i + half] - 8 * y[i - half] + y[i - hh]) / (6 * (x[i + hh] - x[i]));
            }
        }
        return d;
    }

    /// <summary>The point whose slope is closest to λ (the first of equals).</summary>
    public static int ParetoPoint(double[] slopes, double lambda)
    {
        int best = 0;
        double bestGap = double.PositiveInfinity;
        for (int i = 0; i < slopes.Length; i++)
        {
            double gap = Math.Abs(slopes[i] - lambda);
            if (gap < bestGap) { bestGap = gap; best = i; }
        }
        return best;
    }

    /// <summary>The cap's floor: min_sp = min(0.05, (1 − target)/2).</summary>
    public static double MinSparsity(double target) => Math.Min(0.05, (1 - target) / 2);
}

/// <summary>What the slope search settled on.</summary>
/// <param name="Amounts">The amount chosen per curve (fraction of blocks).</param>
/// <param name="KeptBlocks">Blocks kept per curve: the top of its ranking.</param>
/// <param name="Log2Slope">s, with λ = 2^s (NaN for the baselines).</param>
/// <param name="FlopsRatio">Remaining linear+conv FLOPs ÷ dense, as the reference counts them.</param>
/// <param name="Iterations">Search steps taken.</param>
public sealed record AllocationResult(double[] Amounts, int[] KeptBlocks, double Log2Slope, double FlopsRatio, int Iterations);

/// <summary>Layer sparsities for a FLOPs target from the curves: LPViT's slope search and the two magnitude baselines.</summary>
public sealed class FlopsBudget
{
    readonly IReadOnlyList<LayerCurve> _curves;
    readonly long _dense, _fixed;

    /// <summary>The curves of the pruned layers; <paramref name="denseFlops"/> counts every linear+conv layer dense, pruned or not.</summary>
    public FlopsBudget(IReadOnlyList<LayerCurve> curves, long denseFlops)
    {
        _curves = curves;
        _dense = denseFlops;
        _fixed = denseFlops - curves.Sum(c => c.Layer.Flops(c.Layer.Numel));
    }

    /// <summary>Remaining linear+conv FLOPs ratio with block sparsity <paramref name="amounts"/> per curve.</summary>
    public double Ratio(IReadOnlyList<double> amounts)
    {
        long flops = _fixed;
        for (int l = 0; l < _curves.Count; l++) flops += _curves[l].Layer.Flops(_curves[l].KeptWeightsAt(amounts[l]));
        return flops / (double)_dense;
    }

    /// <summary>Remaining ratio with the top <paramref name="keptBlocks"/> blocks of each curve kept.</summary>
    public double RatioOfBlocks(IReadOnlyList<int> keptBlocks)
    {
        long flops = _fixed;
        for (int l = 0; l < _curves.Count; l++) flops += _curves[l].Layer.Flops(_curves[l].KeptWeightsOfBlocks(keptBlocks[l]));
        return flops / (double)_dense;
    }

    /// <summary>
    /// Refuses a target the caps make unreachable: with every layer at 1 − min_sp the ratio still exceeds target +
    /// tolerance. The message names the bound: the layers at their cap, and the share no pruning touches.
    /// </summary>
    public void RequireReachable(double target, double minSp, double tolerance)
    {
        var capped = _curves.Select(_ => 1 - minSp).ToArray();
        double floor = Ratio(capped);
        if (floor <= target + tolerance) return;
        double untouched = _fixed / (double)_dense + _curves.Sum(c => (double)c.Layer.BiasFlops) / _dense;
        string layers = _curves.Count <= 6 ? string.Join(", ", _curves.Select(c => c.Layer.Name)) : $"all {_curves.Count} pruned layers ({_curves[0].Layer.Name} … {_curves[^1].Layer.Name})";
        throw new InputException("--flops", $"{target:0.###} is unreachable: with every layer at its cap of {1 - minSp:0.##} block sparsity (min_sp {minSp:0.###}), {floor:0.###} of the linear+conv FLOPs remain; " +
            $"binding: the caps of {layers}, and {untouched:0.###} of the FLOPs no block pruning removes (biases{(_fixed > 0 ? ", unpruned layers such as the heads under --skip-head" : "")})");
    }

    /// <summary>
    /// LPViT's search (methods.md §3.3): per layer a = min(1 − min_sp, argmin |dδ'/da − λ|) with λ = 2^s; s by bisection on
    /// [−100, 100], at most <paramref name="maxIterations"/> steps, stopping when the ratio is within
    /// <paramref name="tolerance"/> of the target; after the last step the best of its bracket and midpoint, as the reference.
    /// </summary>
    public AllocationResult Lpvit(double target, int h, double minSp, double tolerance = 0.02, int maxIterations = 40)
    {
        RequireFinite(_curves, c => c.Combined ?? throw new InvalidOperationException($"{c.Layer.Name}: no combined curve"), "distortion");
        var slopes = _curves.Select(c => Slopes.Derivative(c.Amounts, c.Combined!, h)).ToArray();
        RequireReachable(target, minSp, tolerance);
        double[] AmountsAt(double s)
        {
            double lambda = Math.Pow(2, s);
            return _curves.Select((c, l) => Math.Min(1 - minSp, c.Amounts[Slopes.ParetoPoint(slopes[l], lambda)])).ToArray();
        }
        double lo = -100, hi = 100, mid = 0;
        int it = 0;
        while (lo < hi)
        {
            mid = (lo + hi) / 2;
            double r = Ratio(AmountsAt(mid));
            it++;
            if (Math.Abs(r - target) <= tolerance) break;
            if (r > target) lo = mid; else hi = mid;
            if (it >= maxIterations)
            {
                double gapMid = Math.Abs(r - target), gapLo = Math.Abs(Ratio(AmountsAt(lo)) - target), gapHi = Math.Abs(Ratio(AmountsAt(hi)) - target);
                if (gapMid > gapLo && gapHi > gapLo) mid = lo;
                else if (gapMid > gapHi && gapLo > gapHi) mid = hi;
                break;
            }
        }
        return Result(AmountsAt(mid), mid, it);
    }

    /// <summary>
    /// Baseline: one block sparsity for every layer (blocks ranked by mean |W| within each), the least that meets
    /// the target, found by bisection on [0, 1 − min_sp].
    /// </summary>
    public AllocationResult Uniform(double target, double minSp)
    {
        RequireReachable(target, minSp, 0);
        double lo = 0, hi = 1 - minSp;
        double[] At(double a) => _curves.Select(_ => a).ToArray();
        if (Ratio(At(lo)) <= target) return Result(At(0), double.NaN, 0);
        for (int i = 0; i < 60; i++)
        {
            double m = (lo + hi) / 2;
            if (Ratio(At(m)) <= target) hi = m; else lo = m;
        }
        return Result(At(hi), double.NaN, 60);
    }

    /// <summary>
    /// Baseline: blocks of all layers in one ranking by mean |W| (<paramref name="blockScore"/>), the least removed first
    /// until the target is met, no layer past its cap of 1 − min_sp.
    /// </summary>
    public AllocationResult Global(double target, double minSp, Func<int, int, double> blockScore)
    {
        RequireReachable(target, minSp, 0);
        var kept = _curves.Select(c => c.Grid.Count).ToArray();
        var floor = _curves.Select(c => c.KeptBlocks(1 - minSp)).ToArray();
        // Each layer's blocks are removed in its own ranking's order, so the global order merges the layers' tails by score.
        var queue = new PriorityQueue<int, (double Score, int Layer)>();
        for (int l = 0; l < _curves.Count; l++)
            if (kept[l] > floor[l]) queue.Enqueue(l, (blockScore(l, _curves[l].Ranking[kept[l] - 1]), l));
        long flops = _fixed + _curves.Sum(c => c.Layer.Flops(c.Layer.Numel));
        long goal = (long)Math.Floor(target * _dense);
        while (flops > goal && queue.TryDequeue(out int layer, out _))
        {
            var c = _curves[layer];
            flops -= c.Grid.Elements(c.Ranking[kept[layer] - 1]) * c.Layer.RowsPerImage;
            kept[layer]--;
            if (kept[layer] > floor[layer]) queue.Enqueue(layer, (blockScore(layer, c.Ranking[kept[layer] - 1]), layer));
        }
        var amounts = _curves.Select((c, l) => 1 - kept[l] / (double)c.Grid.Count).ToArray();
        return new AllocationResult(amounts, kept, double.NaN, RatioOfBlocks(kept), 0);
    }

    AllocationResult Result(double[] amounts, double s, int iterations)
    {
        var kept = _curves.Select((c, l) => c.KeptBlocks(amounts[l])).ToArray();
        return new AllocationResult(amounts, kept, s, RatioOfBlocks(kept), iterations);
    }

    /// <summary>Refuses curves with a NaN/Inf point, naming the layer.</summary>
    public static void RequireFinite(IEnumerable<LayerCurve> curves, Func<LayerCurve, double[]?> values, string what)
    {
        foreach (var c in curves)
            if (values(c) is { } y)
                for (int i = 0; i < y.Length; i++)
                    if (!double.IsFinite(y[i]))
                        throw new ModelException($"the {what} curve of layer {c.Layer.Name} has a NaN/Inf value at amount {c.Amounts[i]:0.00} (are its weights and gradients finite?)", c.Layer.Weight);
    }
}
