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
    /// <summary>Per-layer fractions removed, from a ratio file.</summary>
    /// <param name="Spec">The parsed ratios.</param>
    /// <param name="File">The ratio file, named in the report.</param>
    public sealed record Ratios(RatioSpec Spec, string File) : PruneTarget;
    /// <summary>A MAC budget met by removing the globally least important units.</summary>
    /// <param name="Target">MACs per image to reach.</param>
    /// <param name="UnevenHeads">Whether heads of one block may keep different widths.</param>
    public sealed record Macs(long Target, bool UnevenHeads) : PruneTarget;

    /// <summary>The target as the report prints it.</summary>
    public string Describe() => this switch
    {
        Structure s => $"structure {s.Config.Name}",
        Ratios r => $"ratios {Path.GetFileName(r.File)}",
        Macs m => $"{m.Target / 1e9:0.###} GMAC{(m.UnevenHeads ? ", uneven heads" : "")}",
        _ => "?",
    };
}

/// <summary>One block's widths after pruning, and its totals before.</summary>
/// <param name="Block">Block index.</param>
/// <param name="Qk">Q/K width per head, comma-separated.</param>
/// <param name="V">V width per head, comma-separated.</param>
/// <param name="Ffn">FFN hidden width.</param>
/// <param name="QkBefore">Q/K width of all heads before.</param>
/// <param name="VBefore">V width of all heads before.</param>
/// <param name="FfnBefore">FFN hidden width before.</param>
public sealed record BlockWidths(int Block, string Qk, string V, int Ffn, int QkBefore, int VBefore, int FfnBefore);

/// <summary>What a pruning run did: criterion, target, MACs and parameters before and after, widths per block.</summary>
/// <param name="Model">The dense model's name.</param>
/// <param name="Criterion">The criterion as the CLI spells it (snp, l2, gm, random, reverse).</param>
/// <param name="Target">The target, described.</param>
/// <param name="CalibrationImages">Images SNP calibrated on (0 for data-free criteria).</param>
/// <param name="Gamma">SNP's γ when given (0: the default ⌈d/16⌉).</param>
/// <param name="MacsBefore">MACs per image before.</param>
/// <param name="MacsAfter">MACs per image after.</param>
/// <param name="ParamsBefore">Parameters before.</param>
/// <param name="ParamsAfter">Parameters after.</param>
/// <param name="EmbedBefore">Residual width before.</param>
/// <param name="EmbedAfter">Residual width after.</param>
/// <param name="Blocks">Widths per block.</param>
public sealed record PruningReport(string Model, string Criterion, string Target, int CalibrationImages, int Gamma,
    long MacsBefore, long MacsAfter, long ParamsBefore, long ParamsAfter, int EmbedBefore, int EmbedAfter, List<BlockWidths> Blocks)
{
    /// <summary>The report as the CLI prints it: a summary line and a markdown table of widths per block.</summary>
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

    /// <summary>The report as JSON (snake_case names), as `prune --report` writes it.</summary>
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

    /// <summary>Scores, allocates and cuts: the compact pruned model and its report. <paramref name="snpQk"/> comes from <see cref="CalibrateSnp"/> for the SNP criteria.</summary>
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
