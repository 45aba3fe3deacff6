using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Images;
using VitSparse.Runtime.Models;

namespace VitSparse.Cli;

/// <summary>`vitsparse prune`: SNP structured pruning of a DeiT checkpoint into the compact ragged format.</summary>
static class PruneCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var method = new Option<string>("--method") { Description = "pruning method (snp)", DefaultValueFactory = _ => "snp" };
        var weights = new Option<string>("--weights") { Description = "dense model .safetensors (timm DeiT or VitSparse), or seeded:ARCH for synthetic weights", Required = true };
        var target = new Option<string?>("--target") { Description = "released SNP structure: deit_t_0.6g, deit_s_2.0g, deit_s_1.3g, deit_b_6.4g (or any architecture name)" };
        var ratios = new Option<string?>("--ratios") { Description = "per-layer ratio JSON: {\"embed\": r, \"blocks\": [{\"qk\": r, \"v\": r, \"mlp\": r}, …]} (fraction removed)" };
        var macs = new Option<string?>("--macs") { Description = "MAC budget, e.g. 2.0G or 1500M: removes the globally least important units until met" };
        var uneven = new Option<bool>("--uneven-heads") { Description = "with --macs: let heads of one block keep different widths" };
        var criterion = new Option<string>("--criterion") { Description = "snp, l2, gm, random or reverse", DefaultValueFactory = _ => "snp" };
        var calib = new Option<string?>("--calib") { Description = "calibration images for the SNP criterion: a float32 NCHW .npy, a folder of JPEG/PNG images, an IDX image file (e.g. Fashion-MNIST train, raw or .gz), or 'seeded' for synthetic inputs (structure benchmarks only)" };
        var calibImages = new Option<int>("--calib-images") { Description = "calibration images to use", DefaultValueFactory = _ => 64 };
        var gamma = new Option<int>("--gamma") { Description = "singular components of Q·Kᵀ the SNP criterion preserves (default ⌈d/16⌉ per head)", DefaultValueFactory = _ => 0 };
        var seed = new Option<int>("--seed") { Description = "seed of the random criterion", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--output", "-o") { Description = "pruned model .safetensors", Required = true };
        var report = new Option<string?>("--report") { Description = "also write the pruning report as JSON" };
        var threads = new Option<int>("--threads") { Description = "threads for calibration", DefaultValueFactory = _ => Environment.ProcessorCount };
        var cmd = new Command("prune", "prune a DeiT with SNP and write the compact ragged model")
        {
            method, weights, CliApp.ArchOption, target, ratios, macs, uneven, criterion, calib, calibImages, gamma, seed, output, report, threads, CliApp.NonFiniteOption,
            CliApp.ClassesOption, CliApp.MaxImageSideOption, CliApp.MaxImagePixelsOption,
        };
        cmd.SetAction(pr => CliApp.Guard(pr, stderr, () =>
        {
            if (pr.GetValue(method) != "snp") throw new InputException("--method", $"'{pr.GetValue(method)}' is not available; this version prunes with snp");
            var crit = ParseCriterion(pr.GetValue(criterion)!, "--criterion");
            string path = pr.GetValue(weights)!;
            var options = CliApp.Options(pr, stderr);
            // The pruned file keeps the class names: from --classes, else the dense model's own metadata.
            string? namesFile = pr.GetValue(CliApp.ClassesOption);
            var (dense, namesInModel) = LoadDense(path, options, classNames: namesFile == null);
            var c = dense.Config;
            string[]? names = namesFile != null ? ClassNames.FromFile(namesFile, c.NumClasses) : namesInModel;

            int chosen = new[] { pr.GetValue(target) != null, pr.GetValue(ratios) != null, pr.GetValue(macs) != null }.Count(x => x);
            if (chosen != 1) throw new InputException("--target", "give exactly one of --target, --ratios, --macs");
            PruneTarget goal = pr.GetValue(target) is { } t ? new PruneTarget.Structure(Architectures.Get(t))
                : pr.GetValue(ratios) is { } r ? new PruneTarget.Ratios(RatioSpec.Read(r, c.Depth), r)
                : new PruneTarget.Macs(ParseMacs(pr.GetValue(macs)!), pr.GetValue(uneven));

            float[][][]? qk = null;
            int used = 0;
            if (crit is Criterion.Snp or Criterion.ReverseSnp)
            {
                var (images, count) = Calibration(pr.GetValue(calib), pr.GetValue(calibImages), c, CliApp.ImageLimits(pr));
                used = count;
                qk = WithProgress(stdout, $"calibrating on {count} images", (report) =>
                    Pruner.CalibrateSnp(dense, images, count, pr.GetValue(gamma), pr.GetValue(threads), report));
            }
            var (pruned, rep) = Pruner.Prune(dense, goal, crit, qk, used, pr.GetValue(gamma), pr.GetValue(seed));
            VitModel.Save(pr.GetValue(output)!, pruned.Config, pruned, classNames: names);
            if (pr.GetValue(report) is { } rp) AtomicFile.Write(rp, s => { using var w = new StreamWriter(s); w.Write(rep.ToJson()); });
            stdout.Write(rep.ToMarkdown());
            stdout.WriteLine($"wrote {pr.GetValue(output)}");
            return 0;
        }));
        return cmd;
    }

    internal static Criterion ParseCriterion(string name, string option) => name switch
    {
        "snp" => Criterion.Snp, "l2" => Criterion.L2, "gm" => Criterion.GeometricMedian, "random" => Criterion.Random, "reverse" => Criterion.ReverseSnp,
        var other => throw new InputException(option, $"'{other}' is not one of snp, l2, gm, random, reverse"),
    };

    /// <summary>
    /// A checkpoint (with the class names in its metadata when asked), or "seeded:ARCH" for the synthetic weights
    /// bench uses (structure and speed studies; no names).
    /// </summary>
    internal static (DenseTensors Dense, string[]? ClassNames) LoadDense(string path, LoadOptions options, bool classNames = false)
    {
        if (path.StartsWith("seeded:", StringComparison.Ordinal))
        {
            var config = Architectures.Get(path["seeded:".Length..]);
            return (DenseTensors.From(new SeededWeights(config), config), null);
        }
        using var file = new SafeTensorsFile(path);
        var dense = DenseTensors.From(new SafeTensorsSource(file), VitModel.ReadConfig(file, options.Arch));
        return (dense, classNames ? ClassNames.FromMetadata(file, dense.Config.NumClasses) : null);
    }

    internal static long ParseMacs(string text)
    {
        string s = text.Trim().ToUpperInvariant();
        double scale = s.EndsWith('G') ? 1e9 : s.EndsWith('M') ? 1e6 : 1;
        if (scale != 1) s = s[..^1];
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !(v > 0))
            throw new InputException("--macs", $"'{text}' is not a MAC count like 2.0G or 1500M");
        return (long)(v * scale);
    }

    internal static (float[] Images, int Count) Calibration(string? source, int want, VitConfig c, (int Side, long Pixels)? imageLimits = null)
    {
        if (want < 1) throw new InputException("--calib-images", $"must be at least 1, got {want}");
        if (source == null) throw new InputException("--calib", "the SNP criterion needs calibration images: --calib images.npy (or --calib seeded for a structure-only run)");
        if (source == "seeded")
        {
            var x = new float[(long)want * c.ImageElements];
            for (int i = 0; i < want; i++) SeededWeights.FillInput(x.AsSpan(i * c.ImageElements, c.ImageElements), (ulong)i);
            return (x, want);
        }
        if (Directory.Exists(source))
        {
            // Every JPEG/PNG below the folder, in path order, preprocessed like evaluation images.
            var files = Directory.GetFiles(source, "*", SearchOption.AllDirectories)
                .Where(f => Path.GetExtension(f).ToLowerInvariant() is ".jpg" or ".jpeg" or ".png").Order(StringComparer.Ordinal).Take(want).ToArray();
            if (files.Length == 0) throw new InputException("--calib", $"{source} holds no .jpg/.jpeg/.png images");
            var images = new float[(long)files.Length * c.ImageElements];
            for (int i = 0; i < files.Length; i++)
                ImageFile.ToTensor(files[i], c, images.AsSpan(i * c.ImageElements, c.ImageElements),
                    imageLimits?.Side ?? ImageFile.DefaultMaxSide, imageLimits?.Pixels ?? ImageFile.DefaultMaxPixels);
            return (images, files.Length);
        }
        if (!source.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
            return VitSparse.Runtime.Data.IdxImages.ReadImages(source, c, want);
        var npy = Npy.Read(source);
        int count = Math.Min(want, npy.RequireImages(c, "--calib", source));
        return (npy.Data.AsSpan(0, count * c.ImageElements).ToArray(), count);
    }

    /// <summary>A Spectre progress bar on a terminal; plain lines when output is redirected or captured.</summary>
    internal static T WithProgress<T>(TextWriter stdout, string label, Func<Action<int, int>, T> work)
    {
        if (ReferenceEquals(stdout, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive)
        {
            T result = default!;
            AnsiConsole.Progress().Start(ctx =>
            {
                var task = ctx.AddTask(label);
                result = work((done, total) => { task.MaxValue = total; task.Value = done; });
            });
            return result;
        }
        int lastTenth = -1;
        return work((done, total) =>
        {
            int tenth = done * 10 / total;
            if (tenth != lastTenth) { stdout.WriteLine($"{label}: {done}/{total}"); lastTenth = tenth; }
        });
    }
}
