using System.CommandLine;
using System.Globalization;
using VitSparse.Pruning;
using VitSparse.Pruning.Lpvit;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;

namespace VitSparse.Cli;

/// <summary>
/// `vitsparse prune --method lpvit | block-magnitude | block-global`: block sparsity in every linear and the patch
/// conv to a FLOPs target, written as BSR layers (methods.md §3).
/// </summary>
static class BlockPruneCommand
{
    public static readonly Option<double?> Flops = new("--flops") { Description = "block methods: fraction of linear+conv FLOPs to keep, in (0, 1] (attention matmuls excluded, as LPViT counts)" };
    public static readonly Option<string> Block = new("--block") { Description = "block methods: block shape HxW over W[out,in], e.g. 32x32, 16x16, 32x64", DefaultValueFactory = _ => "32x32" };
    public static readonly Option<string> PowerWeight = new("--power-weight") { Description = "lpvit: β of the power term: auto (ratio of mean max slopes), 0 (off) or a number", DefaultValueFactory = _ => "auto" };
    public static readonly Option<string> PowerSign = new("--power-sign") { Description = "lpvit: coded (as the reference: charges pruned blocks; default) or saving (charges kept blocks)", DefaultValueFactory = _ => "coded" };
    public static readonly Option<string> SecondOrder = new("--second-order") { Description = "lpvit: second-order term of the distortion: on (½ΔWᵀ(ggᵀ+λI)ΔW, default), off, or reference (the code's incremental quirk)", DefaultValueFactory = _ => "on" };
    public static readonly Option<double?> Smooth = new("--smooth") { Description = "lpvit: smooth the distortion curves by an EMA with this weight, debiased (off by default; the reference's scripts use 0.1 or 0.9)" };
    public static readonly Option<int> H = new("--h") { Description = "lpvit: step of the slope stencil", DefaultValueFactory = _ => 4 };
    public static readonly Option<bool> SkipHead = new("--skip-head") { Description = "block methods: leave the classifier head(s) dense (the reference prunes them)" };
    public static readonly Option<string?> ExportCurves = new("--export-curves") { Description = "block methods: also write every layer's curves and the allocation as JSON (tools/lpvit/allocate.py reads it)" };
    public static readonly Option<string> CalibNorm = new("--calib-norm") { Description = "lpvit: model (calibration images normalised with the model's mean/std, default) or half (the reference's mean = std = 0.5 quirk)", DefaultValueFactory = _ => "model" };

    public static readonly Option<string?> Gradients = new("--gradients") { Description = "lpvit: read the averaged gradients instead of calibrating (safetensors from --save-gradients or `vitsparse grad --loss sq`)" };
    public static readonly Option<string?> SaveGradients = new("--save-gradients") { Description = "lpvit: also write the averaged calibration gradients (safetensors), for reuse with --gradients" };

    public static IEnumerable<Option> All => [Flops, Block, PowerWeight, PowerSign, SecondOrder, Smooth, H, SkipHead, ExportCurves, CalibNorm, Gradients, SaveGradients];

    /// <summary>Refuses block-method options given to SNP.</summary>
    public static void RefuseWithSnp(ParseResult pr)
    {
        foreach (var o in All)
            if (pr.GetResult(o) is { Implicit: false }) throw new InputException(o.Name, "applies to --method lpvit, block-magnitude or block-global, not snp");
    }

    public static BlockMethod ParseMethod(string name) => name switch
    {
        "lpvit" => BlockMethod.Lpvit,
        "block-magnitude" => BlockMethod.BlockMagnitude,
        "block-global" => BlockMethod.BlockGlobal,
        _ => throw new InputException("--method", $"'{name}' is not one of snp, lpvit, block-magnitude, block-global, dimap, magnitude{Runtime.Text.DidYouMean.Hint(name, ["snp", "lpvit", "block-magnitude", "block-global", "dimap", "magnitude"])}"),
    };

    static (int H, int W) ParseBlock(string text)
    {
        var parts = text.Split('x', 'X', '×');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int h)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int w) && h >= 1 && w >= 1) return (h, w);
        throw new InputException("--block", $"'{text}' is not a block shape HxW like 32x32");
    }

    static BlockPruneOptions Options(ParseResult pr, BlockMethod method)
    {
        double flops = pr.GetValue(Flops) ?? throw new InputException("--flops", "give the fraction of linear+conv FLOPs to keep, e.g. --flops 0.5");
        var (bh, bw) = ParseBlock(pr.GetValue(Block)!);
        string pw = pr.GetValue(PowerWeight)!;
        double? power = pw == "auto" ? null
            : double.TryParse(pw, NumberStyles.Float, CultureInfo.InvariantCulture, out double p) ? p
            : throw new InputException("--power-weight", $"'{pw}' is not auto or a number");
        var sign = pr.GetValue(PowerSign) switch
        {
            "coded" => Pruning.Lpvit.PowerSign.Coded,
            "saving" => Pruning.Lpvit.PowerSign.Saving,
            var v => throw new InputException("--power-sign", $"'{v}' is not coded or saving"),
        };
        var second = pr.GetValue(SecondOrder) switch
        {
            "on" => Pruning.Lpvit.SecondOrder.On,
            "off" => Pruning.Lpvit.SecondOrder.Off,
            "reference" => Pruning.Lpvit.SecondOrder.Reference,
            var v => throw new InputException("--second-order", $"'{v}' is not on, off or reference"),
        };
        if (method != BlockMethod.Lpvit)
            foreach (var o in new Option[] { PowerWeight, PowerSign, SecondOrder, Smooth, H, CalibNorm, Gradients, SaveGradients })
                if (pr.GetResult(o) is { Implicit: false }) throw new InputException(o.Name, "applies to --method lpvit only");
        var options = new BlockPruneOptions
        {
            Method = method, BlockHeight = bh, BlockWidth = bw, Flops = flops, PowerWeight = power, PowerSign = sign, SecondOrder = second,
            Smooth = pr.GetValue(Smooth), H = pr.GetValue(H), SkipHead = pr.GetValue(SkipHead),
        };
        options.Validate();
        return options;
    }

    /// <summary>The block-pruning body of `prune`: every argument checked before the model loads or calibrates.</summary>
    public static int Run(ParseResult pr, BlockMethod method, Option<string> weights, Option<string?> calib, Option<int> calibImages, Option<string> output,
        Option<string?> report, Option<int> threads, TextWriter stdout, TextWriter stderr)
    {
        var o = Options(pr, method);
        bool halfNorm = pr.GetValue(CalibNorm) switch
        {
            "model" => false,
            "half" => true,
            var v => throw new InputException("--calib-norm", $"'{v}' is not model or half"),
        };
        int t = Check.AtLeast(pr, threads, 1);
        // LPViT's reference calibrates on 2000 images; SNP's default of 64 applies only to SNP.
        int want = pr.GetResult(calibImages) is null or { Implicit: true } ? 2000 : Check.AtLeast(pr, calibImages, 1);
        var limits = CliApp.ImageLimits(pr);
        var loadOptions = CliApp.Options(pr, stderr);
        string? gradientsFile = pr.GetValue(Gradients) is { } gf ? Check.File("--gradients", gf) : null;
        if (gradientsFile != null && pr.GetValue(calib) != null) throw new InputException("--gradients", "give either --gradients or --calib, not both");
        if (o.NeedsGradients && gradientsFile == null && pr.GetValue(calib) == null)
            throw new InputException("--calib", "LPViT needs calibration images for its gradients: --calib images.npy, an image folder or an IDX file (or --calib seeded for a structure-only run)");
        if (!o.NeedsGradients && pr.GetValue(calib) != null) throw new InputException("--calib", $"--method {BlockPruneReport.MethodName(method)} is data-free; leave out --calib");
        Check.Calibration(pr.GetValue(calib));
        string? namesFile = pr.GetValue(CliApp.ClassesOption);
        if (namesFile != null) Check.File("--classes", namesFile);
        using var outputs = new Outputs();
        string outPath = outputs.Add("--output", pr.GetValue(output)!);
        string? reportPath = pr.GetValue(report) is { } rp ? outputs.Add("--report", rp) : null;
        string? curvesPath = pr.GetValue(ExportCurves) is { } cp ? outputs.Add("--export-curves", cp) : null;
        string? saveGradients = pr.GetValue(SaveGradients) is { } sg ? outputs.Add("--save-gradients", sg) : null;
        if (saveGradients != null && gradientsFile != null) throw new InputException("--save-gradients", "the gradients come from --gradients already");
        var w = Weights.Check(pr.GetValue(weights)!, loadOptions.Arch);
        var run = new GradientStep(o, pr.GetValue(calib), want, limits, loadOptions, halfNorm, gradientsFile, stdout, stderr);
        string? synthetic = w.SyntheticOrigin();
        var metadata = synthetic != null ? new Dictionary<string, string> { [Synthetic.MetadataKey] = synthetic } : null;
        BlockPruneReport rep;
        if (w.IsSwin)
        {
            var (dense, namesInModel) = w.LoadSwinTensors(loadOptions, classNames: namesFile == null);
            var c = dense.Config;
            string[]? names = namesFile != null ? ClassNames.FromFile(namesFile, c.NumClasses) : namesInModel;
            var plan = BlockPruner.Plan(c, o);   // a block larger than a layer fails here, before calibration
            BlockPruner.RequireReachable(dense, o);
            var (gradients, used) = run.Gradients(c, plan, (images, count, progress) => TaylorGradients.Average(dense, images, count, plan.Select(p => p.Layer), t, progress));
            var result = BlockPruner.Prune(dense, o, gradients, used);
            rep = result.Report;
            run.NoteTolerance(result.Allocation);
            outputs.Stage(outPath, path => SwinFile.Save(path, c, result.Pruned, classNames: names, metadata: metadata, sparse: result.Layouts));
            if (saveGradients != null) outputs.Stage(saveGradients, path => TaylorGradients.Write(path, dense, gradients!, used));
            if (curvesPath != null) outputs.Stage(curvesPath, path => CurveFile.Write(path, c.Name, o, result.Curves, PrunableLayer.DenseFlops(c), result.Allocation, rep.PowerWeight));
        }
        else
        {
            var (dense, namesInModel) = w.LoadDense(loadOptions, classNames: namesFile == null);
            var c = dense.Config;
            string[]? names = namesFile != null ? ClassNames.FromFile(namesFile, c.NumClasses) : namesInModel;
            var plan = BlockPruner.Plan(c, o);   // a block larger than a layer fails here, before calibration
            BlockPruner.RequireReachable(dense, o);
            var (gradients, used) = run.Gradients(c, plan, (images, count, progress) => TaylorGradients.Average(dense, images, count, plan.Select(p => p.Layer), t, progress));
            var result = BlockPruner.Prune(dense, o, gradients, used);
            rep = result.Report;
            run.NoteTolerance(result.Allocation);
            outputs.Stage(outPath, path => VitModel.Save(path, c, result.Pruned, classNames: names, metadata: metadata, sparse: result.Layouts));
            if (saveGradients != null) outputs.Stage(saveGradients, path => TaylorGradients.Write(path, dense, gradients!, used));
            if (curvesPath != null) outputs.Stage(curvesPath, path => CurveFile.Write(path, c.Name, o, result.Curves, PrunableLayer.DenseFlops(c), result.Allocation, rep.PowerWeight));
        }
        if (reportPath != null) outputs.Stage(reportPath, path => AtomicFile.Write(path, s => { using var sw = new StreamWriter(s); sw.Write(rep.ToJson()); }));
        outputs.Commit();
        if (synthetic != null) stdout.WriteLine(Synthetic.Notice(synthetic));
        stdout.Write(rep.ToMarkdown());
        stdout.WriteLine($"wrote {outPath}{(reportPath != null ? $" and {reportPath}" : "")}{(curvesPath != null ? $" and {curvesPath}" : "")}");
        return 0;
    }

    delegate Dictionary<string, float[]> Calibrate(float[] images, int count, Action<int, int> progress);

    /// <summary>What the gradient step and the closing note need, the same for either family.</summary>
    sealed record GradientStep(BlockPruneOptions O, string? Calib, int Want, (int Side, long Pixels) Limits, LoadOptions Load, bool HalfNorm,
        string? GradientsFile, TextWriter Stdout, TextWriter Stderr)
    {
        /// <summary>The averaged gradients (read, calibrated, or null for the data-free baselines) and the images they came from.</summary>
        public (Dictionary<string, float[]>? Gradients, int Used) Gradients(IImageModelConfig c, List<(PrunableLayer Layer, BlockGrid Grid)> plan, Calibrate calibrate)
        {
            if (GradientsFile != null) return (TaylorGradients.Read(GradientsFile, plan.Select(p => p.Layer)), 0);
            if (!O.NeedsGradients) return (null, 0);
            var (images, count) = PruneCommand.Calibration(Calib, Want, c, Limits, Load.NonFinite, Stderr.WriteLine);
            if (count < Want) Stderr.WriteLine($"note: {Calib} holds {count} calibration images, fewer than the {Want} asked for; using all {count}");
            if (HalfNorm) TaylorGradients.RenormaliseHalf(images, c);
            var gradients = PruneCommand.WithProgress(Stdout, $"gradients of mean(logits²) on {count} images", progress => calibrate(images, count, progress));
            return (gradients, count);
        }

        /// <summary>Says when the slope search ended outside its tolerance (the reference keeps the best of its last bracket).</summary>
        public void NoteTolerance(AllocationResult allocation)
        {
            if (O.Method == BlockMethod.Lpvit && Math.Abs(allocation.FlopsRatio - O.Flops) > O.Tolerance)
                Stderr.WriteLine($"note: the slope search ended at {allocation.FlopsRatio:0.####} of the FLOPs, outside the tolerance {O.Tolerance} of the target {O.Flops} (as the reference, the best of its last bracket): the curves' steps are coarse for this block size, or layers whose slope never comes near any λ > 0 stay put (with --power-sign saving, a power term that outweighs the distortion holds its layers at the cap)");
        }
    }
}
