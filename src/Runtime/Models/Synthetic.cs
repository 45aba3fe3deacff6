using VitSparse.Runtime.Formats;

namespace VitSparse.Runtime.Models;

/// <summary>
/// Synthetic models: "seeded:ARCH" stands for <see cref="SeededWeights"/> of a named architecture (what `bench`
/// measures), and a file written from them carries <see cref="MetadataKey"/>, so that every output computed
/// from it can say its classes and probabilities mean nothing.
/// </summary>
public static class Synthetic
{
    /// <summary>Prefix of a weights argument that names seeded synthetic weights, e.g. "seeded:deit_s".</summary>
    public const string Prefix = "seeded:";

    /// <summary>safetensors metadata key of a model made from synthetic weights; the value says which ("seeded:deit_s").</summary>
    public const string MetadataKey = "vitsparse.synthetic";

    /// <summary>
    /// True when <paramref name="weights"/> is "seeded:ARCH"; <paramref name="config"/> is then ARCH's config. An
    /// unknown ARCH is an <see cref="InputException"/> on <paramref name="argument"/>.
    /// </summary>
    public static bool IsSeeded(string weights, out VitConfig config, string argument = "--weights")
    {
        config = null!;
        if (!weights.StartsWith(Prefix, StringComparison.Ordinal)) return false;
        string arch = weights[Prefix.Length..];
        if (arch.Length == 0) throw new InputException(argument, $"'{weights}' names no architecture; e.g. seeded:deit_s");
        // A Swin name is IsSeededSwin's; an unknown one that looks like a Swin gets the Swin names suggested.
        if (arch.StartsWith("swin", StringComparison.OrdinalIgnoreCase)) SwinArchitectures.Get(arch, argument);
        config = Architectures.Get(arch, argument);
        return true;
    }

    /// <summary>
    /// True when <paramref name="weights"/> is "seeded:ARCH" and ARCH is a Swin (<see cref="SwinArchitectures"/>);
    /// <paramref name="config"/> is then its config. Other "seeded:" names return false (they may be DeiTs).
    /// </summary>
    public static bool IsSeededSwin(string weights, out SwinConfig config)
    {
        config = null!;
        return weights.StartsWith(Prefix, StringComparison.Ordinal) && SwinArchitectures.TryGet(weights[Prefix.Length..], out config);
    }

    /// <summary>Where the synthetic weights of a model file came from ("seeded:deit_s"), or null for a real model.</summary>
    public static string? Origin(SafeTensorsFile file) => file.Metadata.TryGetValue(MetadataKey, out var v) ? v : null;

    /// <summary>The line every output of a synthetic model carries.</summary>
    public static string Notice(string origin) =>
        $"synthetic weights ({origin}): outputs are for structure and speed studies; classes and probabilities mean nothing";
}
