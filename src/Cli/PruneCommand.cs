using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Images;
using VitSparse.Runtime.Models;

namespace VitSparse.Cli;

/// <summary>
/// `vitsparse prune`: SNP structured pruning of a DeiT checkpoint into the compact ragged format, or block
/// pruning (LPViT and its magnitude baselines) into BSR layers (<see cref="BlockPruneCommand"/>).
/// </summary>
static class PruneCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var method = new Option<string>("--method") { Description = "pruning method: snp (structured, smaller dense model), lpvit, block-magnitude or block-global (block-sparse BSR layers), dimap or magnitude (Swin weight pruning)", DefaultValueFactory = _ => "snp" };
        var weights = new Option<string>("--weights") { Description = "dense model .safetensors (timm DeiT or VitSparse), or seeded:ARCH for synthetic weights", Required = true };
        var target = new Option<string?>("--target") { Description = "released SNP structure: deit_t_0.6g, deit_s_2.0g, deit_s_1.3g, deit_b_6.4g (or any architecture name)" };
        var ratios = new Option<string?>("--ratios") { Description = "per-layer ratio JSON: {\"embed\": r, \"blocks\": [{\"qk\": r, \"v\": r, \"mlp\": r}, …]} (fraction removed)" };
        var macs = new Option<string?>("--macs") { Description = "MAC budget, e.g. 2.0G or 1500M: removes the globally least important units until met" };
        var uneven = new Option<bool>("--uneven-heads") { Description = "with --macs: let heads of one block keep different widths" };
        var criterion = new Option<string>("--criterion") { Description = "snp, l2, gm, random or reverse", DefaultValueFactory = _ => "snp" };
        var calib = new Option<string?>("--calib") { Description = "calibration images for the SNP criterion and LPViT's gradients: a float32 NCHW .npy, a folder of JPEG/PNG images, an IDX image file (e.g. Fashion-MNIST train, raw or .gz), or 'seeded' for synthetic inputs (structure benchmarks only)" };
        var calibImages = new Option<int>("--calib-images") { Description = "calibration images to use (default: 64 for snp, 2000 for lpvit; fewer available: all of them)", DefaultValueFactory = _ => 64 };
        var gamma = new Option<int>("--gamma") { Description = "singular components of Q·Kᵀ the SNP criterion preserves (default ⌈d/16⌉ per head)", DefaultValueFactory = _ => 0 };
        var seed = new Option<int>("--seed") { Description = "seed of the random criterion", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--output", "-o") { Description = "pruned model .safetensors", Required = true };
        var report = new Option<string?>("--report") { Description = "also write the pruning report as JSON" };
        var threads = CliApp.ThreadsOption("threads for calibration (default: all cores)");
        var cmd = new Command("prune", "prune a DeiT with SNP into the compact ragged model; a DeiT or Swin with LPViT / block baselines into block-sparse layers; a Swin with DIMAP")
        {
            method, weights, CliApp.ArchOption, target, ratios, macs, uneven, criterion, calib, calibImages, gamma, seed, output, report, threads, CliApp.NonFiniteOption,
            CliApp.ClassesOption, CliApp.MaxImageSideOption, CliApp.MaxImagePixelsOption,
        };
        foreach (var o in BlockPruneCommand.All) cmd.Options.Add(o);   // --method lpvit|block-magnitude|block-global: BlockPruneCommand.cs
        var dimap = DimapCommand.AddOptions(cmd);   // --method dimap|magnitude (Swin weight pruning): DimapCommand.cs
        cmd.SetAction(pr => CliApp.Guard(pr, stderr, () =>
        {
            if (dimap.Intercept(pr, method, weights, output, report, stdout) is { } dimapCode) return dimapCode;
            // Every argument and path is checked before the model is loaded: a mistake costs no calibration.
            if (pr.GetValue(method) != "snp")
            {
                foreach (var o in new Option[] { target, ratios, macs, uneven, criterion, gamma, seed })
                    if (pr.GetResult(o) is { Implicit: false }) throw new InputException(o.Name, "applies to --method snp only");
                return BlockPruneCommand.Run(pr, BlockPruneCommand.ParseMethod(pr.GetValue(method)!), weights, calib, calibImages, output, report, threads, stdout, stderr);
            }
            BlockPruneCommand.RefuseWithSnp(pr);
            var crit = Criteria.Parse(pr.GetValue(criterion)!, "--criterion");
            int t = Check.AtLeast(pr, threads, 1), want = Check.AtLeast(pr, calibImages, 1), g = Check.AtLeast(pr, gamma, 0);
            var limits = CliApp.ImageLimits(pr);
            var options = CliApp.Options(pr, stderr);
            int chosen = new[] { pr.GetValue(target) != null, pr.GetValue(ratios) != null, pr.GetValue(macs) != null }.Count(x => x);
            if (chosen != 1) throw new InputException("--target", "give exactly one of --target, --ratios, --macs");
            Check.OnlyWith(pr.GetValue(uneven), "--uneven-heads", pr.GetValue(macs) != null, "--macs");
            var structure = pr.GetValue(target) is { } tn ? Architectures.Get(tn, "--target") : null;
            long? budget = pr.GetValue(macs) is { } m ? ParseMacs(m) : null;
            if (pr.GetValue(ratios) is { } rf) Check.File("--ratios", rf);
            bool needsCalib = crit is Criterion.Snp or Criterion.ReverseSnp;
            if (needsCalib && pr.GetValue(calib) == null)
                throw new InputException("--calib", "the SNP criterion needs calibration images: --calib images.npy (or --calib seeded for a structure-only run)");
            Check.Calibration(pr.GetValue(calib));
            string? namesFile = pr.GetValue(CliApp.ClassesOption);
            if (namesFile != null) Check.File("--classes", namesFile);
            using var outputs = new Outputs();
            string outPath = outputs.Add("--output", pr.GetValue(output)!);
            string? reportPath = pr.GetValue(report) is { } rp ? outputs.Add("--report", rp) : null;
            var w = Weights.Check(pr.GetValue(weights)!, options.Arch);

            // The pruned file keeps the class names: from --classes, else the dense model's own metadata.
            var (dense, namesInModel) = w.LoadDense(options, classNames: namesFile == null);
            var c = dense.Config;
            string[]? names = namesFile != null ? ClassNames.FromFile(namesFile, c.NumClasses) : namesInModel;
            PruneTarget goal = structure != null ? new PruneTarget.Structure(structure)
                : budget is { } b ? new PruneTarget.Macs(b, pr.GetValue(uneven))
                : new PruneTarget.Ratios(RatioSpec.Read(pr.GetValue(ratios)!, c.Depth), pr.GetValue(ratios)!);

            float[][][]? qk = null;
            int used = 0;
            if (needsCalib)
            {
                var (images, count) = Calibration(pr.GetValue(calib), want, c, limits, options.NonFinite, stderr.WriteLine);
                used = count;
                qk = WithProgress(stdout, $"calibrating on {count} images", (progress) =>
                    Pruner.CalibrateSnp(dense, images, count, g, t, progress));
            }
            var (pruned, rep) = Pruner.Prune(dense, goal, crit, qk, used, g, pr.GetValue(seed));
            string? synthetic = w.SyntheticOrigin();
            var metadata = synthetic != null ? new Dictionary<string, string> { [Synthetic.MetadataKey] = synthetic } : null;
            outputs.Stage(outPath, path => VitModel.Save(path, pruned.Config, pruned, classNames: names, metadata: metadata));
            if (reportPath != null) outputs.Stage(reportPath, path => AtomicFile.Write(path, s => { using var sw = new StreamWriter(s); sw.Write(rep.ToJson()); }));
            outputs.Commit();
            if (synthetic != null) stdout.WriteLine(Synthetic.Notice(synthetic));
            stdout.Write(rep.ToMarkdown());
            stdout.WriteLine($"wrote {outPath}{(reportPath != null ? $" and {reportPath}" : "")}");
            return 0;
        }));
        return cmd;
    }

    internal static long ParseMacs(string text)
    {
        string s = text.Trim().ToUpperInvariant();
        double scale = s.EndsWith('G') ? 1e9 : s.EndsWith('M') ? 1e6 : 1;
        if (scale != 1) s = s[..^1];
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !(v > 0) || v * scale > long.MaxValue / 2)
            throw new InputException("--macs", $"'{text}' is not a MAC count like 2.0G or 1500M");
        return (long)(v * scale);
    }

    /// <summary>Calibration images from 'seeded', a folder of images, an IDX image file or a float32 .npy (checked for NaN/Inf).</summary>
    internal static (float[] Images, int Count) Calibration(string? source, int want, IImageModelConfig c, (int Side, long Pixels) imageLimits,
        NonFinitePolicy nonFinite, Action<string> warn)
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
                ImageFile.ToTensor(files[i], c, images.AsSpan(i * c.ImageElements, c.ImageElements), imageLimits.Side, imageLimits.Pixels);
            return (images, files.Length);
        }
        if (!source.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
            return VitSparse.Runtime.Data.IdxImages.ReadImages(source, c, want);
        var npy = Npy.Read(source);
        int count = Math.Min(want, npy.RequireImages(c, "--calib", source));
        var used = npy.Data.AsSpan(0, count * c.ImageElements).ToArray();
        NonFinite.Check(used, "--calib", source, nonFinite, warn);
        return (used, count);
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
