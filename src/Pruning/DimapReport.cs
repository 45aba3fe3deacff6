using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using VitSparse.Runtime.Text;

namespace VitSparse.Pruning;

/// <summary>One module's line in a DIMAP report.</summary>
public sealed record DimapModuleLine(string Module, long Params, long Removed, float? Threshold);

/// <summary>One layer's line in a DIMAP report.</summary>
public sealed record DimapLayerLine(string Layer, string Module, long Params, long Removed, double Kept);

/// <summary>What `prune --method dimap` did, as printed (markdown) and written (`--report`, JSON).</summary>
public sealed record DimapReport(string Model, string Method, string Granularity, double ParamsRemoved, long ParamsBefore, long ParamsAfter,
    long PrunableParams, IReadOnlyList<DimapModuleLine> Modules, IReadOnlyList<DimapLayerLine> Layers)
{
    /// <summary>The one threshold of the single-module ablation (null for the other methods).</summary>
    public float? GlobalThreshold { get; init; }

    /// <summary>The report of a plan on the model called <paramref name="model"/>.</summary>
    public static DimapReport Of(string model, DimapPlan plan)
    {
        var modules = plan.Layers.GroupBy(l => l.Module).OrderBy(g => g.Key).Select(g => new DimapModuleLine(
            g.Key.ToString(), g.Sum(l => l.Params), g.Sum(l => l.Removed),
            plan.Method == DimapMethod.Dimap ? plan.Thresholds[g.Key.ToString()] : null)).ToList();
        string method = plan.Method switch { DimapMethod.Dimap => "dimap", DimapMethod.SingleModule => "dimap single-module", _ => "magnitude (uniform per layer)" };
        return new DimapReport(model, method, plan.Unit.ToString(), plan.ParamsRemoved, plan.TotalParams, plan.ParamsAfter, plan.PrunableParams, modules,
            plan.Layers.Select(l => new DimapLayerLine(l.Layer, l.Module.ToString(), l.Params, l.Removed, Math.Round(l.Kept, 6))).ToList())
        {
            GlobalThreshold = plan.Method == DimapMethod.SingleModule ? plan.Thresholds["model"] : null,
        };
    }

    /// <summary>Totals, then one row per module.</summary>
    public string ToMarkdown()
    {
        var inv = CultureInfo.InvariantCulture;
        var sw = new StringWriter(inv);
        double removed = 1 - (double)ParamsAfter / ParamsBefore;
        sw.WriteLine($"pruned {Model} with {Method} ({Granularity}): params {ParamsBefore / 1e6:0.00} M → {ParamsAfter / 1e6:0.00} M ({removed:0.0%} removed; asked {ParamsRemoved:0.0%})");
        sw.WriteLine();
        var t = new MarkdownTable("module", "weights", "removed", "kept", "threshold").RightAlign(1, 2, 3, 4);
        foreach (var m in Modules)
            t.Add(m.Module, m.Params.ToString("N0", inv), m.Removed.ToString("N0", inv), (1 - (double)m.Removed / m.Params).ToString("0.0%", inv),
                m.Threshold is { } th ? th.ToString("0.###E+0", inv) : "-");
        sw.Write(t);
        if (GlobalThreshold is { } g) sw.WriteLine($"one threshold over all prunable weights: {g.ToString("0.###E+0", inv)}");
        return sw.ToString();
    }

    /// <summary>The report as indented JSON, every layer included.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, DimapJson.Default.DimapReport);
}

[JsonSerializable(typeof(DimapReport))]
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
internal partial class DimapJson : JsonSerializerContext;
