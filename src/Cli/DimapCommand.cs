using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;

namespace VitSparse.Cli;

/// <summary>
/// `vitsparse prune --method dimap|magnitude`: DIMAP weight pruning of a Swin (methods.md §2) into our sparse-stored
/// safetensors. Its options ride on `prune`; <see cref="Intercept"/> takes over the prune action for its methods.
/// </summary>
sealed class DimapCommand
{
    /// <summary>The `--method` values DIMAP handles.</summary>
    static readonly string[] Methods = ["dimap", "magnitude"];
    /// <summary>prune's options that apply to DIMAP too; any other given with it is refused.</summary>
    static readonly string[] Shared = ["--method", "--weights", "--arch", "--output", "--report", "--classes", "--verbose"];

    readonly Option<double?> _paramsRemoved = new("--params-removed") { Description = "dimap/magnitude: fraction of all parameters to remove, in [0, 1) (Table 1's Para.↓)" };
    readonly Option<int?> _level = new("--level") { Description = "dimap/magnitude: the paper's DIMAP level 1, 2 or 3 (≈14, 33, 52 % of parameters removed)" };
    readonly Option<bool> _singleModule = new("--single-module") { Description = "dimap: one threshold over all prunable weights (the paper's \"Model as Module\" ablation)" };
    readonly Option<string> _granularity = new("--granularity") { Description = "dimap/magnitude: unstructured (stored CSR) or block:BHxBW (whole blocks, stored BSR)", DefaultValueFactory = _ => "unstructured" };

    IEnumerable<Option> All => [_paramsRemoved, _level, _singleModule, _granularity];

    /// <summary>Adds DIMAP's options to `prune`.</summary>
    public static DimapCommand AddOptions(Command prune)
    {
        var d = new DimapCommand();
        foreach (var o in d.All) prune.Options.Add(o);
        return d;
    }

    /// <summary>
    /// Runs `prune` for a DIMAP method and returns its exit code; null for other methods (after refusing DIMAP's
    /// options with them), which prune then handles.
    /// </summary>
    public int? Intercept(ParseResult pr, Option<string> method, Option<string> weights, Option<string> output, Option<string?> report, TextWriter stdout)
    {
        string m = pr.GetValue(method)!;
        if (!Methods.Contains(m))
        {
            foreach (var o in All)
                if (Given(pr, o)) throw new InputException(o.Name, $"applies to --method dimap or magnitude, not {m}");
            return null;
        }
        // Every argument is checked before the model is loaded.
        foreach (var child in pr.CommandResult.Children.OfType<OptionResult>())
            if (!child.Implicit && !Shared.Contains(child.Option.Name) && !All.Contains(child.Option))
                throw new InputException(child.Option.Name, $"does not apply to --method {m} (options of dimap: --params-removed, --level, --single-module, --granularity)");
        double? removed = pr.GetValue(_paramsRemoved);
        int? level = pr.GetValue(_level);
        if ((removed == null) == (level == null)) throw new InputException("--params-removed", "give exactly one of --params-removed and --level");
        if (removed is { } r && !(r >= 0 && r < 1)) throw new InputException("--params-removed", $"{r.ToString(CultureInfo.InvariantCulture)} is outside [0, 1): it is the fraction of parameters removed");
        if (level is { } lv && lv is < 1 or > 3) throw new InputException("--level", $"{lv} is not a DIMAP level (1, 2 or 3)");
        Check.OnlyWith(pr.GetValue(_singleModule), "--single-module", m == "dimap", "--method dimap");
        var unit = Granularity.Parse(pr.GetValue(_granularity)!);
        var kind = m == "magnitude" ? DimapMethod.Magnitude : pr.GetValue(_singleModule) ? DimapMethod.SingleModule : DimapMethod.Dimap;
        string? namesFile = pr.GetValue(CliApp.ClassesOption);
        if (namesFile != null) Check.File("--classes", namesFile);
        using var outputs = new Outputs();
        string outPath = outputs.Add("--output", pr.GetValue(output)!);
        string? reportPath = pr.GetValue(report) is { } rp ? outputs.Add("--report", rp) : null;

        var (dense, namesInModel, synthetic) = Load(pr.GetValue(weights)!, pr.GetValue(CliApp.ArchOption), m);
        var c = dense.Config;
        string[]? names = namesFile != null ? ClassNames.FromFile(namesFile, c.NumClasses) : namesInModel;
        double fraction = removed ?? DimapModules.LevelRatio(Named(c), level!.Value);

        var ranking = DimapRanking.Rank(dense.Tensors, kind, unit, pr.GetValue(weights)!);
        var plan = ranking.Plan(fraction, removed != null ? "--params-removed" : "--level");
        var (pruned, sparse) = ranking.Apply(dense.Tensors, plan);
        var result = new SwinTensors(c, pruned);
        var rep = DimapReport.Of(c.Name, plan) with { ParamsAfter = result.NonZeros(), ParamsBefore = dense.NonZeros() };
        var metadata = synthetic != null ? new Dictionary<string, string> { [Synthetic.MetadataKey] = synthetic } : null;
        outputs.Stage(outPath, path => SwinFile.Save(path, c, result, classNames: names, metadata: metadata, sparse: sparse));
        if (reportPath != null) outputs.Stage(reportPath, path => AtomicFile.Write(path, s => { using var sw = new StreamWriter(s); sw.Write(rep.ToJson()); }));
        outputs.Commit();
        if (synthetic != null) stdout.WriteLine(Synthetic.Notice(synthetic));
        stdout.Write(rep.ToMarkdown());
        stdout.WriteLine($"wrote {outPath}{(reportPath != null ? $" and {reportPath}" : "")}");
        return 0;
    }

    static bool Given(ParseResult pr, Option o) => pr.GetResult(o) is { Implicit: false };

    /// <summary>The Swin's tensors, class names and synthetic origin; a DeiT (seeded, named or a file) is refused with what applies.</summary>
    static (SwinTensors Dense, string[]? Names, string? Synthetic) Load(string spec, string? arch, string method)
    {
        InputException NotSwin(string what) => new("--weights",
            $"{what} is a DeiT; --method {method} prunes Swin models (swin_t, swin_s, swin_b or a Swin checkpoint); prune a DeiT with --method snp");
        if (spec.StartsWith(Synthetic.Prefix, StringComparison.Ordinal))
        {
            if (!Synthetic.IsSeededSwin(spec, out var seeded))
            {
                string name = spec[Synthetic.Prefix.Length..];
                if (Architectures.TryGet(name, out _)) throw NotSwin(spec);
                SwinArchitectures.Get(name, "--weights");   // unknown: lists the Swins
            }
            if (arch != null) throw new InputException("--arch", $"seeded weights take their architecture from --weights {spec}; leave out --arch");
            return (SwinTensors.From(new SeededSwinWeights(seeded), seeded), null, spec);
        }
        if (arch != null && !SwinArchitectures.TryGet(arch, out _))
        {
            if (Architectures.TryGet(arch, out _)) throw new InputException("--arch", $"{arch} is a DeiT; --method {method} prunes Swin models (swin_t, swin_s, swin_b); prune a DeiT with --method snp");
            SwinArchitectures.Get(arch);
        }
        Check.File("--weights", spec);
        using var file = new SafeTensorsFile(spec);
        if (!SwinFile.IsSwin(file))
        {
            if (file.Contains("blocks.0.attn.qkv.weight") || file.Metadata.ContainsKey(VitConfig.MetadataKey)) throw NotSwin(spec);
            throw new ModelException($"{spec}: not a Swin checkpoint ('layers.0.blocks.0.attn.qkv.weight' missing); --method {method} prunes Swin models", "layers.0.blocks.0.attn.qkv.weight");
        }
        var config = SwinFile.ReadConfig(file, arch);
        var tensors = SwinTensors.From(new SafeTensorsSource(file), config);
        foreach (var (name, t) in tensors.Tensors)
        {
            int bad = Array.FindIndex(t.Data, v => !float.IsFinite(v));
            if (bad >= 0) throw new ModelException($"{spec}: tensor '{name}' has NaN/Inf values (first at flat index {bad}); refusing to prune it", name);
        }
        return (tensors, ClassNames.FromMetadata(file, config.NumClasses), Synthetic.Origin(file));
    }

    /// <summary>The named Swin a config has the stages of (so a timm file read without --arch still gets its Table 1 levels), else its own name.</summary>
    static string Named(SwinConfig c)
    {
        foreach (var name in new[] { "swin_t", "swin_s", "swin_b" })
            if (SwinArchitectures.TryGet(name, out var known) && known.Stages.SequenceEqual(c.Stages)) return name;
        return c.Name;
    }
}
