using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;

namespace VitSparse.Cli;

/// <summary>
/// The model a command runs: a safetensors file, or "seeded:ARCH" for the synthetic weights `bench` uses.
/// Checked before anything is loaded; knows whether its outputs must be marked synthetic.
/// </summary>
sealed class Weights
{
    public string Spec { get; }
    /// <summary>The architecture of seeded weights; null for a file.</summary>
    public VitConfig? Seeded { get; }

    Weights(string spec, VitConfig? seeded) => (Spec, Seeded) = (spec, seeded);

    /// <summary>The architecture of seeded Swin weights; null otherwise.</summary>
    public SwinConfig? SeededSwin { get; private init; }

    /// <summary>Whether the model is a Swin: seeded:swin_*, or a file whose metadata or keys say so (reads the header).</summary>
    public bool IsSwin
    {
        get
        {
            if (SeededSwin != null) return true;
            if (Seeded != null) return false;
            using var file = new SafeTensorsFile(Spec);
            return SwinFile.IsSwin(file);
        }
    }

    /// <summary>The Swin, packed for inference.</summary>
    public SwinModel LoadSwin(LoadOptions options)
    {
        if (SeededSwin != null) return SwinModel.FromSource(new SeededSwinWeights(SeededSwin), SeededSwin, options);
        WarnIfArchIgnored(options);
        return SwinModel.Load(Spec, options);
    }

    /// <summary>Checks the --weights value (and that --arch does not contradict it) without loading anything.</summary>
    public static Weights Check(string spec, string? arch, string option = "--weights")
    {
        if (Synthetic.IsSeededSwin(spec, out var swin))
        {
            if (arch != null) throw new InputException("--arch", $"seeded weights take their architecture from {option} {spec}; leave out --arch");
            return new Weights(spec, null) { SeededSwin = swin };
        }
        if (Synthetic.IsSeeded(spec, out var config, option))
        {
            if (arch != null) throw new InputException("--arch", $"seeded weights take their architecture from {option} {spec}; leave out --arch");
            return new Weights(spec, config);
        }
        return new Weights(Cli.Check.File(option, spec), null);
    }

    /// <summary>The line to print before a synthetic model's outputs, or null for real weights (reads the file's header).</summary>
    public string? SyntheticNotice()
    {
        if (Seeded != null || SeededSwin != null) return Synthetic.Notice(Spec);
        using var file = new SafeTensorsFile(Spec);
        return Synthetic.Origin(file) is { } origin ? Synthetic.Notice(origin) : null;
    }

    /// <summary>Where synthetic weights came from ("seeded:deit_s"), so a pruned file can say so; null for real weights.</summary>
    public string? SyntheticOrigin()
    {
        if (Seeded != null || SeededSwin != null) return Spec;
        using var file = new SafeTensorsFile(Spec);
        return Synthetic.Origin(file);
    }

    /// <summary>The model, packed for inference.</summary>
    public VitModel Load(LoadOptions options)
    {
        RefuseSwin();
        if (Seeded != null) return VitModel.FromSource(new SeededWeights(Seeded), Seeded, options);
        WarnIfArchIgnored(options);
        return VitModel.Load(Spec, options);
    }

    /// <summary>The model's tensors in memory (pruning), with the class names of its metadata when asked.</summary>
    public (DenseTensors Dense, string[]? ClassNames) LoadDense(LoadOptions options, bool classNames = false)
    {
        RefuseSwin();
        if (Seeded != null) return (DenseTensors.From(new SeededWeights(Seeded), Seeded), null);
        WarnIfArchIgnored(options);
        using var file = new SafeTensorsFile(Spec);
        var dense = DenseTensors.From(new SafeTensorsSource(file), VitModel.ReadConfig(file, options.Arch));
        return (dense, classNames ? ClassNames.FromMetadata(file, dense.Config.NumClasses) : null);
    }

    /// <summary>Class names: --classes, the file's metadata, Debian's ImageNet list for 1000 classes, else indices.</summary>
    public (string[] Names, string Origin) ClassNamesFor(int classes, string? namesFile)
    {
        if ((Seeded == null && SeededSwin == null) || namesFile != null) return ClassNames.Resolve(Spec, classes, namesFile);
        if (classes == 1000 && File.Exists(ClassNames.DebianImageNetList)) return (ClassNames.FromFile(ClassNames.DebianImageNetList, classes), ClassNames.DebianImageNetList);
        return (ClassNames.Indices(classes), "class indices");
    }

    /// <summary>The commands that need a DeiT (pruning, fidelity) say so for a Swin instead of failing on its tensors.</summary>
    void RefuseSwin()
    {
        if (IsSwin) throw new InputException("--weights", $"{Spec} is a Swin; this command takes a DeiT (a Swin runs in infer, inspect, eval, bench, grad and finetune)");
    }

    void WarnIfArchIgnored(LoadOptions options)
    {
        if (options.Arch == null) return;
        using var file = new SafeTensorsFile(Spec);
        if (file.Metadata.ContainsKey(VitConfig.MetadataKey))
            options.Warn?.Invoke($"warning: --arch {options.Arch} ignored: {Spec} carries its own architecture (VitSparse metadata)");
    }
}
