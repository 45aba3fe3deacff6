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
        var weights = new Option<string>("--weights") { Description = "model .safetensors, or seeded:ARCH for synthetic weights", Required = true };
        var calib = new Option<string?>("--calib") { Description = "calibration images: float32 NCHW .npy, a folder of JPEG/PNG images, an IDX image file, or 'seeded' (synthetic)", Required = true };
        var calibImages = new Option<int>("--calib-images") { Description = "images to use", DefaultValueFactory = _ => 16 };
        var ratios = new Option<string>("--ratios") { Description = "Q/K fractions removed, comma-separated", DefaultValueFactory = _ => "0.25,0.5,0.75" };
        var criteria = new Option<string>("--criteria") { Description = "criteria to compare", DefaultValueFactory = _ => "snp,l2,gm,random,reverse" };
        var gamma = new Option<int>("--gamma") { Description = "SNP singular components (default ⌈d/16⌉)", DefaultValueFactory = _ => 0 };
        var threads = CliApp.ThreadsOption("threads (default: all cores)");
        var cmd = new Command("fidelity", "compare pruning criteria by the cosine similarity of original and Q/K-pruned attention maps")
        {
            weights, CliApp.ArchOption, calib, calibImages, ratios, criteria, gamma, threads, CliApp.NonFiniteOption, CliApp.MaxImageSideOption, CliApp.MaxImagePixelsOption,
        };
        cmd.SetAction(pr => CliApp.Guard(pr, stderr, () =>
        {
            var inv = CultureInfo.InvariantCulture;
            var r = pr.GetValue(ratios)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(x => double.TryParse(x, NumberStyles.Float, inv, out double v) && v >= 0 && v < 1 ? v
                    : throw new InputException("--ratios", $"'{x}' is not a fraction removed in [0, 1)")).ToArray();
            var crits = pr.GetValue(criteria)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(x => Criteria.Parse(x, "--criteria")).ToArray();
            if (r.Length == 0) throw new InputException("--ratios", "needs at least one ratio");
            if (crits.Length == 0) throw new InputException("--criteria", "needs at least one criterion");
            int t = Check.AtLeast(pr, threads, 1), want = Check.AtLeast(pr, calibImages, 1), g = Check.AtLeast(pr, gamma, 0);
            var limits = CliApp.ImageLimits(pr);
            var options = CliApp.Options(pr, stderr);
            Check.Calibration(pr.GetValue(calib));
            var w = Weights.Check(pr.GetValue(weights)!, options.Arch);

            var (dense, _) = w.LoadDense(options);
            var (images, count) = PruneCommand.Calibration(pr.GetValue(calib), want, dense.Config, limits, options.NonFinite, stderr.WriteLine);
            var rows = PruneCommand.WithProgress(stdout, $"attention maps on {count} images", report =>
                AttentionFidelity.Measure(dense, images, count, r, crits, g, t, progress: report));
            if (w.SyntheticNotice() is { } notice) stdout.WriteLine(notice);
            stdout.WriteLine($"mean cosine similarity of attention maps, {dense.Config.Name}, {count} images, every block's Q/K pairs pruned (layer-local, no fine-tuning):");
            stdout.WriteLine();
            var table = new MarkdownTable(["criterion", .. r.Select(x => $"{x:0%} Q/K removed")]);
            table.RightAlign(Enumerable.Range(1, r.Length).ToArray());
            foreach (var row in rows) table.Add([row.Criterion.Name(), .. row.MeanCosine.Select(x => x.ToString("0.0000", inv))]);
            stdout.Write(table);
            return 0;
        }));
        return cmd;
    }
}
