using System.Globalization;
using System.Text.Json;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;
using VitSparse.Runtime.Text;

namespace VitSparse.Pruning;

/// <summary>Where the pruned widths come from.</summary>
public abstract record PruneTarget
{
    /// <summary>A named structure, e.g. the released SNP DeiT-S 2.0 GMAC widths.</summary>
    public sealed record Structure(VitConfig Config) : PruneTarget;
    public sealed record Ratios(RatioSpec Spec, string File) : PruneTarget;
    public sealed record Macs(long Target, bool UnevenHeads) : PruneTarget;

    public string Describe() => this switch
    {
        Structure s => $"structure {s.Config.Name}",
        Ratios r => $"ratios {Path.GetFileName(r.File)}",
        Macs m => $"{m.Target / 1e9:0.###} GMAC{(m.UnevenHeads ? ", uneven heads" : "")}",
        _ => "?",
    };
}

public sealed record BlockWidths(int Block, string Qk, string V, int Ffn, int QkBefore, int VBefore, int FfnBefore);

public sealed record PruningReport(string Model, string Criterion, string Target, int CalibrationImages, int Gamma,
    long MacsBefore, long MacsAfter, long ParamsBefore, long ParamsAfter, int EmbedBefore, int EmbedAfter, List<BlockWidths> Blocks)
{
    public string ToMarkdown()
    {
        var inv = CultureInfo.InvariantCulture;
        var sw = new StringWriter(inv);
        sw.WriteLine($"pruned {Model} with {Criterion} ({Target}; calibration images: {CalibrationImages}{(Gamma > 0 ? $", γ = {Gamma}" : "")})");
        sw.WriteLine($"MACs {MacsBefore / 1e9:0.000} → {MacsAfter / 1e9:0.000} GMAC ({(double)MacsBefore / MacsAfter:0.00}× fewer); params {ParamsBefore / 1e6:0.00} M → {ParamsAfter / 1e6:0.00} M; embed {EmbedBefore} → {EmbedAfter}");
        sw.WriteLine();
        var t = new MarkdownTable("block", "Q/K per head", "V per head", "FFN", "Q/K kept", "V kept", "FFN kept").RightAlign(0, 3, 4, 5, 6);
        foreach (var b in Blocks)
            t.Add(b.Block, b.Qk, b.V, b.Ffn, Pct(b.Qk, b.QkBefore), Pct(b.V, b.VBefore), ((double)b.Ffn / b.FfnBefore).ToString("0%", inv));
        sw.Write(t);
        return sw.ToString();
    }

    static string Pct(string widths, int before) =>
        ((double)widths.Split(',', StringSplitOptions.RemoveEmptyEntries).Sum(int.Parse) / before).ToString("0%", CultureInfo.InvariantCulture);

    public string ToJson() => JsonSerializer.Serialize(this, PruningJson.Default.PruningReport);
}

[System.Text.Json.Serialization.JsonSerializable(typeof(PruningReport))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower)]
internal partial class PruningJson : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>SNP end to end: calibrate, score, allocate, cut (methods.md §1).</summary>
public static class Pruner
{
    /// <summary>
    /// Runs calibration images through the model itself and accumulates SNP's Q/K pair scores.
    /// images: [count, C, H, W] preprocessed. progress(done, total) is called after each batch.
    /// </summary>
    public static float[][][] CalibrateSnp(DenseTensors dense, ReadOnlySpan<float> images, int count, int gamma = 0, int threads = 0,
        Action<int, int>? progress = null)
    {
        var c = dense.Config;
        if (count < 1) throw new InputException("--calib", "needs at least one calibration image");
        if (images.Length != (long)count * c.ImageElements)
            throw new InputException("--calib", $"holds {images.Length} floats, expected {count}×{c.InChannels}×{c.ImageSize}×{c.ImageSize}");
        var model = VitModel.FromSource(dense, c);
        var observer = new SnpAttentionScore(c, gamma);
        using var session = new InferenceSession(model, threads) { Observer = observer };
        const int batch = 8;
        var logits = new float[batch * c.NumClasses];
        for (int i = 0; i < count; i += batch)
        {
            int b = Math.Min(batch, count - i);
            session.Run(images.Slice(i * c.ImageElements, b * c.ImageElements), b, logits);
            progress?.Invoke(i + b, count);
        }
        return observer.Scores;
    }

    public static (DenseTensors Pruned, PruningReport Report) Prune(DenseTensors dense, PruneTarget target, Criterion criterion,
        float[][][]? snpQk, int calibrationImages, int gamma = 0, int seed = 0)
    {
        var scores = Criteria.Score(dense, criterion, snpQk, seed);
        var plan = target switch
        {
            PruneTarget.Structure s => Allocation.ToStructure(dense.Config, s.Config, scores),
            PruneTarget.Ratios r => Allocation.FromRatios(dense.Config, r.Spec, scores),
            PruneTarget.Macs m => Allocation.ToMacs(dense.Config, m.Target, scores, m.UnevenHeads),
            _ => throw new ArgumentOutOfRangeException(nameof(target)),
        };
        var pruned = Surgery.Apply(dense, plan);
        string name = target is PruneTarget.Structure st ? st.Config.Name : $"{dense.Config.Name}_pruned";
        pruned = new DenseTensors(pruned.Config with { Name = name }, pruned.Tensors);
        var before = dense.Config;
        var after = pruned.Config;
        var blocks = after.Blocks.Select((b, i) => new BlockWidths(i, string.Join(",", b.QkWidths), string.Join(",", b.VWidths), b.MlpHidden,
            before.Blocks[i].QkTotal, before.Blocks[i].VTotal, before.Blocks[i].MlpHidden)).ToList();
        var report = new PruningReport(before.Name, criterion.Name(), target.Describe(), criterion is Criterion.Snp or Criterion.ReverseSnp ? calibrationImages : 0,
            criterion is Criterion.Snp or Criterion.ReverseSnp ? gamma : 0,
            ModelStats.Macs(before), ModelStats.Macs(after), ModelStats.Params(before), ModelStats.Params(after), before.EmbedDim, after.EmbedDim, blocks);
        return (pruned, report);
    }
}
