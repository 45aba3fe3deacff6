using System.Globalization;
using System.Text.Json;
using VitSparse.Runtime.Models;
using VitSparse.Runtime.Text;

namespace VitSparse.Pruning.Lpvit;

/// <summary>One layer after block pruning.</summary>
/// <param name="Layer">Module name (timm).</param>
/// <param name="Shape">Weight rows × columns.</param>
/// <param name="Blocks">Blocks in the layer's grid.</param>
/// <param name="KeptBlocks">Blocks kept.</param>
/// <param name="BlockSparsity">Fraction of blocks pruned.</param>
/// <param name="FlopsKept">The layer's FLOPs kept (weights and bias), as a fraction of its dense FLOPs.</param>
/// <param name="PowerUnits">Modelled power of the kept blocks: kept blocks × ⌊D_in/16⌋ (LPViT's unitless term).</param>
/// <param name="DensePowerUnits">The same for the dense layer.</param>
/// <param name="Distortion">δ at the chosen point of the curve (null for the magnitude baselines).</param>
public sealed record BlockLayerReport(string Layer, string Shape, int Blocks, int KeptBlocks, double BlockSparsity, double FlopsKept,
    long PowerUnits, long DensePowerUnits, double? Distortion);

/// <summary>What a block-pruning run did, per layer and in total.</summary>
/// <param name="Model">Architecture name.</param>
/// <param name="Method">lpvit, block-magnitude or block-global.</param>
/// <param name="Block">Block shape, e.g. 32x32.</param>
/// <param name="TargetFlops">The target fraction of linear+conv FLOPs.</param>
/// <param name="FlopsRatio">Remaining linear+conv FLOPs ÷ dense (attention matmuls excluded, as the reference counts).</param>
/// <param name="MacsBefore">All MACs per image before, attention matmuls included (ours).</param>
/// <param name="MacsAfter">All MACs per image after, counting kept weights only.</param>
/// <param name="PowerRatio">Modelled power of the kept blocks ÷ dense, over the pruned layers (LPViT's term).</param>
/// <param name="PowerWeight">β used (0 when off or for baselines).</param>
/// <param name="PowerSign">coded or saving.</param>
/// <param name="Log2Slope">s of λ = 2^s found by the search (null for baselines).</param>
/// <param name="CalibrationImages">Images the gradient averaged over (0 for baselines).</param>
/// <param name="SecondOrder">off, on or reference.</param>
/// <param name="Layers">Per layer.</param>
public sealed record BlockPruneReport(string Model, string Method, string Block, double TargetFlops, double FlopsRatio, long MacsBefore, long MacsAfter,
    double PowerRatio, double PowerWeight, string PowerSign, double? Log2Slope, int CalibrationImages, string SecondOrder, List<BlockLayerReport> Layers)
{
    /// <summary>The CLI's name of a method.</summary>
    public static string MethodName(BlockMethod m) => m switch { BlockMethod.Lpvit => "lpvit", BlockMethod.BlockMagnitude => "block-magnitude", _ => "block-global" };

    internal static BlockPruneReport Of(string model, long macs, BlockPruneOptions o, IReadOnlyList<LayerCurve> curves, AllocationResult r, double beta, int calibrationImages)
    {
        var layers = new List<BlockLayerReport>();
        long removedMacs = 0, power = 0, densePower = 0;
        for (int l = 0; l < curves.Count; l++)
        {
            var curve = curves[l];
            var layer = curve.Layer;
            int kept = r.KeptBlocks[l];
            long keptWeights = curve.KeptWeightsOfBlocks(kept);
            removedMacs += (layer.Numel - keptWeights) * layer.RowsPerImage;
            long p = PowerTerm.KeptUnits(layer, kept), pd = PowerTerm.KeptUnits(layer, curve.Grid.Count);
            power += p; densePower += pd;
            double? distortion = curve.Distortion?[(int)Math.Round(r.Amounts[l] * o.Points)];
            layers.Add(new BlockLayerReport(layer.Name, $"{layer.Rows}×{layer.Cols}", curve.Grid.Count, kept, 1 - kept / (double)curve.Grid.Count,
                layer.Flops(keptWeights) / (double)layer.Flops(layer.Numel), p, pd, distortion));
        }
        bool lpvit = o.Method == BlockMethod.Lpvit;
        return new BlockPruneReport(model, MethodName(o.Method), $"{o.BlockHeight}x{o.BlockWidth}", o.Flops, r.FlopsRatio, macs, macs - removedMacs,
            densePower > 0 ? power / (double)densePower : 1, beta, o.PowerSign == Lpvit.PowerSign.Coded ? "coded" : "saving",
            double.IsNaN(r.Log2Slope) ? null : r.Log2Slope, lpvit ? calibrationImages : 0, lpvit ? o.SecondOrder.ToString().ToLowerInvariant() : "-", layers);
    }

    /// <summary>The report as the CLI prints it: summary lines and a markdown table per layer.</summary>
    public string ToMarkdown()
    {
        var inv = CultureInfo.InvariantCulture;
        var sw = new StringWriter(inv);
        sw.WriteLine($"pruned {Model} with {Method}, blocks {Block}, target {TargetFlops:0.###} of linear+conv FLOPs" +
            (Method == "lpvit" ? $" (calibration images: {CalibrationImages}; second order: {SecondOrder}; power β = {PowerWeight:G3}, {PowerSign}{(Log2Slope is { } s ? $"; λ = 2^{s:0.###}" : "")})" : ""));
        sw.WriteLine($"linear+conv FLOPs kept {FlopsRatio:0.0000} (attention matmuls excluded, as LPViT counts); all MACs {MacsBefore / 1e9:0.000} → {MacsAfter / 1e9:0.000} GMAC ({MacsAfter / (double)MacsBefore:0.0000} kept, attention included); modelled block power {PowerRatio:0.0000} of dense");
        sw.WriteLine();
        var t = new MarkdownTable("layer", "shape", "blocks kept", "block sparsity", "FLOPs kept", "modelled power", "distortion").RightAlign(2, 3, 4, 5, 6);
        foreach (var l in Layers)
            t.Add(l.Layer, l.Shape, $"{l.KeptBlocks}/{l.Blocks}", l.BlockSparsity.ToString("0.0%", inv), l.FlopsKept.ToString("0.0%", inv),
                $"{l.PowerUnits}/{l.DensePowerUnits}", l.Distortion?.ToString("0.###e+0", inv) ?? "-");
        sw.Write(t);
        return sw.ToString();
    }

    /// <summary>The report as JSON (snake_case names), as `prune --report` writes it.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, BlockPruneJson.Default.BlockPruneReport);
}

[System.Text.Json.Serialization.JsonSerializable(typeof(BlockPruneReport))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower)]
internal partial class BlockPruneJson : System.Text.Json.Serialization.JsonSerializerContext;
