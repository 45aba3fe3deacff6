using System.Globalization;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;

namespace VitSparse.Pruning.Lpvit;

/// <summary>How block sparsity is allocated across layers.</summary>
public enum BlockMethod
{
    /// <summary>LPViT (LSP): Taylor distortion curves, power term, slope search (needs gradients).</summary>
    Lpvit,
    /// <summary>Baseline: the same block sparsity in every layer, blocks ranked by mean |W|.</summary>
    BlockMagnitude,
    /// <summary>Baseline: one ranking of all layers' blocks by mean |W|.</summary>
    BlockGlobal,
}

/// <summary>Settings of a block-pruning run; the defaults are the reference's (methods.md §3).</summary>
public sealed record BlockPruneOptions
{
    /// <summary>Allocation method.</summary>
    public BlockMethod Method { get; init; } = BlockMethod.Lpvit;
    /// <summary>Rows per block (output features).</summary>
    public int BlockHeight { get; init; } = 32;
    /// <summary>Columns per block (input features).</summary>
    public int BlockWidth { get; init; } = 32;
    /// <summary>Linear+conv FLOPs to keep, as a fraction of dense, in (0, 1].</summary>
    public double Flops { get; init; } = 0.5;
    /// <summary>The second-order term of the distortion curve.</summary>
    public SecondOrder SecondOrder { get; init; } = SecondOrder.On;
    /// <summary>The damping λ of H ≈ ggᵀ + λI.</summary>
    public double Damping { get; init; } = 1e-7;
    /// <summary>EMA weight for smoothing δ over the amount, or null for none (the reference's default).</summary>
    public double? Smooth { get; init; }
    /// <summary>β of the power term: null for automatic, 0 for none.</summary>
    public double? PowerWeight { get; init; }
    /// <summary>Which blocks the power term charges.</summary>
    public PowerSign PowerSign { get; init; } = PowerSign.Coded;
    /// <summary>Step h of the slope stencil.</summary>
    public int H { get; init; } = 4;
    /// <summary>Leave the classifier head(s) dense.</summary>
    public bool SkipHead { get; init; }
    /// <summary>Curve points beyond a = 0 (the reference's --maxdeadzones).</summary>
    public int Points { get; init; } = 100;
    /// <summary>Tolerance of the slope search on the FLOPs ratio.</summary>
    public double Tolerance { get; init; } = 0.02;

    /// <summary>Refuses settings that cannot run, naming the option.</summary>
    public void Validate()
    {
        if (!(Flops > 0 && Flops <= 1)) throw new InputException("--flops", $"must be in (0, 1] (the fraction of linear+conv FLOPs kept), got {Flops.ToString(CultureInfo.InvariantCulture)}");
        if (BlockHeight < 1 || BlockWidth < 1 || BlockHeight > SparseStorage.MaxBlockSide || BlockWidth > SparseStorage.MaxBlockSide)
            throw new InputException("--block", $"{BlockHeight}x{BlockWidth}: each side must be between 1 and {SparseStorage.MaxBlockSide}");
        if (H < 1 || H > Points / 2) throw new InputException("--h", $"must be between 1 and {Points / 2}, got {H}");
        if (Smooth is { } s && !(s >= 0 && s < 1)) throw new InputException("--smooth", $"must be in [0, 1), got {s.ToString(CultureInfo.InvariantCulture)}");
        if (PowerWeight is { } p && !(p >= 0 && double.IsFinite(p))) throw new InputException("--power-weight", $"must be auto or a number ≥ 0, got {p.ToString(CultureInfo.InvariantCulture)}");
        if (!(Damping >= 0 && double.IsFinite(Damping))) throw new InputException("--damping", $"must be ≥ 0, got {Damping}");
    }

    /// <summary>Whether the method needs calibration gradients.</summary>
    public bool NeedsGradients => Method == BlockMethod.Lpvit;
}

/// <summary>The result of block pruning: the zeroed weights, how to store them, the curves and the report.</summary>
/// <param name="Pruned">The weights with pruned blocks zeroed.</param>
/// <param name="Layouts">BSR layouts for <see cref="VitModel.Save"/>, one per layer with a pruned block.</param>
/// <param name="Curves">The curves of the pruned layers.</param>
/// <param name="Allocation">The chosen amounts.</param>
/// <param name="Report">The per-layer report.</param>
public sealed record BlockPruneResult(DenseTensors Pruned, Dictionary<string, StoredLayout> Layouts, IReadOnlyList<LayerCurve> Curves,
    AllocationResult Allocation, BlockPruneReport Report);

/// <summary>The result of block-pruning a Swin: as <see cref="BlockPruneResult"/>, its tensors saved with <see cref="SwinFile.Save"/>.</summary>
/// <param name="Pruned">The weights with pruned blocks zeroed (unpruned tensors shared with the dense ones).</param>
/// <param name="Layouts">BSR layouts for <see cref="SwinFile.Save"/>, one per layer with a pruned block.</param>
/// <param name="Curves">The curves of the pruned layers.</param>
/// <param name="Allocation">The chosen amounts.</param>
/// <param name="Report">The per-layer report.</param>
public sealed record SwinBlockPruneResult(SwinTensors Pruned, Dictionary<string, StoredLayout> Layouts, IReadOnlyList<LayerCurve> Curves,
    AllocationResult Allocation, BlockPruneReport Report);

/// <summary>LPViT and its baselines end to end: layers, curves, allocation, zeroed blocks, report (DeiT or Swin).</summary>
public static class BlockPruner
{
    /// <summary>
    /// The layers a run prunes with their block grids: checks the options and every layer's grid before anything
    /// expensive runs (a block larger than a layer is refused, naming it).
    /// </summary>
    public static List<(PrunableLayer Layer, BlockGrid Grid)> Plan(VitConfig config, BlockPruneOptions o) => Plan(() => PrunableLayer.Of(config, o.SkipHead), o);

    /// <summary>The layers of a Swin a run prunes with their block grids (as for a DeiT).</summary>
    public static List<(PrunableLayer Layer, BlockGrid Grid)> Plan(SwinConfig config, BlockPruneOptions o) => Plan(() => PrunableLayer.Of(config, o.SkipHead), o);

    static List<(PrunableLayer Layer, BlockGrid Grid)> Plan(Func<List<PrunableLayer>> layers, BlockPruneOptions o)
    {
        o.Validate();
        return layers().Select(l => (l, l.Grid(o.BlockHeight, o.BlockWidth))).ToList();
    }

    /// <summary>
    /// Refuses a FLOPs target the caps make unreachable before anything is calibrated (from the weights' block grids
    /// alone; the allocation checks again on its own curves).
    /// </summary>
    public static void RequireReachable(DenseTensors dense, BlockPruneOptions o) =>
        RequireReachable(Plan(dense.Config, o), n => dense[n].Data, PrunableLayer.DenseFlops(dense.Config), o);

    /// <summary>The same check for a Swin.</summary>
    public static void RequireReachable(SwinTensors dense, BlockPruneOptions o) =>
        RequireReachable(Plan(dense.Config, o), WeightsOf(dense), PrunableLayer.DenseFlops(dense.Config), o);

    static void RequireReachable(List<(PrunableLayer Layer, BlockGrid Grid)> plan, Func<string, float[]> weight, long denseFlops, BlockPruneOptions o)
    {
        var curves = Curves(plan, weight, o with { Method = BlockMethod.BlockMagnitude }, null);
        new FlopsBudget(curves, denseFlops).RequireReachable(o.Flops, Slopes.MinSparsity(o.Flops), o.Method == BlockMethod.Lpvit ? o.Tolerance : 0);
    }

    /// <summary>The curves: Taylor (with gradients by weight name) for LPViT, magnitude rankings for the baselines.</summary>
    public static List<LayerCurve> Curves(DenseTensors dense, BlockPruneOptions o, IReadOnlyDictionary<string, float[]>? gradients) =>
        Curves(Plan(dense.Config, o), n => dense[n].Data, o, gradients);

    static Func<string, float[]> WeightsOf(SwinTensors dense)
    {
        var byName = dense.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.Data, StringComparer.Ordinal);
        return n => byName.TryGetValue(n, out var w) ? w : throw new ModelException($"missing tensor '{n}'", n);
    }

    static List<LayerCurve> Curves(List<(PrunableLayer Layer, BlockGrid Grid)> plan, Func<string, float[]> weight, BlockPruneOptions o, IReadOnlyDictionary<string, float[]>? gradients)
    {
        if (o.NeedsGradients && gradients == null) throw new InputException("--calib", "LPViT needs calibration gradients");
        var curves = new LayerCurve[plan.Count];
        Parallel.For(0, plan.Count, i =>
        {
            var (layer, grid) = plan[i];
            var w = weight(layer.Weight);
            if (o.NeedsGradients)
            {
                var g = gradients!.TryGetValue(layer.Weight, out var gv) && gv.Length == w.Length ? gv
                    : throw new ModelException($"no gradient of the shape of '{layer.Weight}'", layer.Weight);
                curves[i] = LayerCurve.Taylor(layer, grid, w, g, o.Points, o.SecondOrder, o.Damping, o.Smooth);
            }
            else curves[i] = LayerCurve.Magnitude(layer, grid, w, o.Points);
        });
        return curves.ToList();
    }

    /// <summary>
    /// Prunes <paramref name="dense"/> to the options' FLOPs target. LPViT needs <paramref name="gradients"/>
    /// (<see cref="TaylorGradients.Average(DenseTensors, ReadOnlySpan{float}, int, IEnumerable{PrunableLayer}, int, Action{int, int}?)"/>);
    /// the baselines ignore them. <paramref name="calibrationImages"/> is for the report.
    /// </summary>
    public static BlockPruneResult Prune(DenseTensors dense, BlockPruneOptions o, IReadOnlyDictionary<string, float[]>? gradients, int calibrationImages = 0)
    {
        var c = dense.Config;
        var (curves, result, beta) = Allocate(Plan(c, o), n => dense[n].Data, PrunableLayer.DenseFlops(c), o, gradients);
        var pruned = dense.Clone();
        var layouts = ZeroBlocks(curves, result, n => pruned[n].Data, o);
        var report = BlockPruneReport.Of(c.Name, ModelStats.Macs(c), o, curves, result, beta, calibrationImages);
        return new BlockPruneResult(pruned, layouts, curves, result, report);
    }

    /// <summary>
    /// Prunes a Swin to the options' FLOPs target (linear+conv FLOPs as the paper counts them: each layer's rows are
    /// its stage's tokens, the patch conv's its patches, the head's one pooled row). LPViT needs
    /// <paramref name="gradients"/> (<see cref="TaylorGradients.Average(SwinTensors, ReadOnlySpan{float}, int, IEnumerable{PrunableLayer}, int, Action{int, int}?)"/>).
    /// </summary>
    public static SwinBlockPruneResult Prune(SwinTensors dense, BlockPruneOptions o, IReadOnlyDictionary<string, float[]>? gradients, int calibrationImages = 0)
    {
        var c = dense.Config;
        var (curves, result, beta) = Allocate(Plan(c, o), WeightsOf(dense), PrunableLayer.DenseFlops(c), o, gradients);
        // Pruned layers get copies; every other tensor is shared with the dense model.
        var tensors = dense.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        foreach (var curve in curves)
        {
            var t = tensors[curve.Layer.Weight];
            tensors[curve.Layer.Weight] = t with { Data = (float[])t.Data.Clone() };
        }
        var layouts = ZeroBlocks(curves, result, n => tensors[n].Data, o);
        var report = BlockPruneReport.Of(c.Name, PrunableLayer.DenseMacs(c), o, curves, result, beta, calibrationImages);
        return new SwinBlockPruneResult(new SwinTensors(c, tensors), layouts, curves, result, report);
    }

    static (List<LayerCurve> Curves, AllocationResult Result, double Beta) Allocate(List<(PrunableLayer Layer, BlockGrid Grid)> plan, Func<string, float[]> weight,
        long denseFlops, BlockPruneOptions o, IReadOnlyDictionary<string, float[]>? gradients)
    {
        var curves = Curves(plan, weight, o, gradients);
        var budget = new FlopsBudget(curves, denseFlops);
        double minSp = Slopes.MinSparsity(o.Flops);
        double beta = 0;
        AllocationResult result;
        switch (o.Method)
        {
            case BlockMethod.Lpvit:
                FlopsBudget.RequireFinite(curves, x => x.Distortion, "distortion");
                beta = PowerTerm.Apply(curves, o.PowerWeight, o.PowerSign);
                result = budget.Lpvit(o.Flops, o.H, minSp, o.Tolerance);
                break;
            case BlockMethod.BlockMagnitude:
                result = budget.Uniform(o.Flops, minSp);
                break;
            default:
                var scores = curves.Select(x => LayerCurve.MeanAbs(x.Grid, weight(x.Layer.Weight))).ToArray();
                result = budget.Global(o.Flops, minSp, (l, b) => scores[l][b]);
                break;
        }
        return (curves, result, beta);
    }

    /// <summary>Zeros each layer's pruned blocks in the (copied) weights <paramref name="prunedWeight"/> returns; the BSR layout of each layer that lost any.</summary>
    static Dictionary<string, StoredLayout> ZeroBlocks(List<LayerCurve> curves, AllocationResult result, Func<string, float[]> prunedWeight, BlockPruneOptions o)
    {
        var layouts = new Dictionary<string, StoredLayout>(StringComparer.Ordinal);
        for (int l = 0; l < curves.Count; l++)
        {
            var curve = curves[l];
            int kept = result.KeptBlocks[l];
            if (kept == curve.Grid.Count) continue;
            var w = prunedWeight(curve.Layer.Weight);
            for (int i = kept; i < curve.Grid.Count; i++) curve.Grid.Zero(w, curve.Ranking[i]);
            layouts[curve.Layer.Weight] = new StoredLayout(WeightFormat.Bsr, o.BlockHeight, o.BlockWidth, curve.Grid.Rows, curve.Grid.Cols, kept / (double)curve.Grid.Count);
        }
        return layouts;
    }
}
