using System.CommandLine;
using System.Globalization;
using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Text;

namespace VitSparse.Cli;

/// <summary>`vitsparse fidelity`: how well each criterion's Q/K choice preserves attention maps, without fine-tuning.</summary>
static class FidelityCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var weights = new Option<string>("--weights") { Description = "model .safetensors", Required = true };
        var calib = new Option<string?>("--calib") { Description = "calibration images: float32 NCHW .npy, a folder of JPEG/PNG images, an IDX image file, or 'seeded' (synthetic)", Required = true };
        var calibImages = new Option<int>("--calib-images") { Description = "images to use", DefaultValueFactory = _ => 16 };
        var ratios = new Option<string>("--ratios") { Description = "Q/K fractions removed, comma-separated", DefaultValueFactory = _ => "0.25,0.5,0.75" };
        var criteria = new Option<string>("--criteria") { Description = "criteria to compare", DefaultValueFactory = _ => "snp,l2,gm,random,reverse" };
        var gamma = new Option<int>("--gamma") { Description = "SNP singular components (default ⌈d/16⌉)", DefaultValueFactory = _ => 0 };
        var threads = new Option<int>("--threads") { Description = "threads", DefaultValueFactory = _ => Environment.ProcessorCount };
        var cmd = new Command("fidelity", "compare pruning criteria by the cosine similarity of original and Q/K-pruned attention maps")
        {
            weights, CliApp.ArchOption, calib, calibImages, ratios, criteria, gamma, threads, CliApp.NonFiniteOption, CliApp.MaxImageSideOption, CliApp.MaxImagePixelsOption,
        };
        cmd.SetAction(pr => CliApp.Guard(pr, stderr, () =>
        {
            var inv = CultureInfo.InvariantCulture;
            var r = pr.GetValue(ratios)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(x => double.TryParse(x, NumberStyles.Float, inv, out double v) ? v : throw new InputException("--ratios", $"'{x}' is not a number")).ToArray();
            var crits = pr.GetValue(criteria)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(x => PruneCommand.ParseCriterion(x, "--criteria")).ToArray();
            if (r.Length == 0 || crits.Length == 0) throw new InputException("--ratios", "needs at least one ratio and one criterion");
            var (dense, _) = PruneCommand.LoadDense(pr.GetValue(weights)!, CliApp.Options(pr, stderr));
            var (images, count) = PruneCommand.Calibration(pr.GetValue(calib), pr.GetValue(calibImages), dense.Config, CliApp.ImageLimits(pr));
            var rows = PruneCommand.WithProgress(stdout, $"attention maps on {count} images", report =>
                AttentionFidelity.Measure(dense, images, count, r, crits, pr.GetValue(gamma), pr.GetValue(threads), progress: report));
            stdout.WriteLine($"mean cosine similarity of attention maps, {dense.Config.Name}, {count} images, every block's Q/K pairs pruned (layer-local, no fine-tuning):");
            stdout.WriteLine();
            var t = new MarkdownTable(["criterion", .. r.Select(x => $"{x:0%} Q/K removed")]);
            t.RightAlign(Enumerable.Range(1, r.Length).ToArray());
            foreach (var row in rows) t.Add([row.Criterion.ToString(), .. row.MeanCosine.Select(x => x.ToString("0.0000", inv))]);
            stdout.Write(t);
            return 0;
        }));
        return cmd;
    }
}
