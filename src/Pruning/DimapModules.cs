using VitSparse.Runtime;

namespace VitSparse.Pruning;

/// <summary>DIMAP's modules (methods.md §2.1): the three that are pruned, and AUX, which is kept whole.</summary>
public enum DimapModule
{
    /// <summary>Patch embedding, norms, patch merging, head, biases, relative position bias tables: never pruned.</summary>
    Aux,
    /// <summary>Every `layers.*.blocks.*.attn.qkv.weight`.</summary>
    Qkv,
    /// <summary>Every `layers.*.blocks.*.attn.proj.weight`.</summary>
    Proj,
    /// <summary>Every `layers.*.blocks.*.mlp.fc1.weight` and `mlp.fc2.weight`: one module, as in the paper.</summary>
    Mlp,
}

/// <summary>How DIMAP ranks and allocates (`--method dimap|magnitude`, `--single-module`).</summary>
public enum DimapMethod
{
    /// <summary>LAMP scores, one threshold per module, every module pruned to the same fraction of its weights.</summary>
    Dimap,
    /// <summary>The paper's "Model as Module" ablation: LAMP scores, one threshold over all prunable weights.</summary>
    SingleModule,
    /// <summary>The paper's uniform baseline: every prunable layer loses the same fraction, smallest |w| first.</summary>
    Magnitude,
}

/// <summary>What one ranked unit is: a single weight, or a block of BH×BW weights (edge blocks are cut short).</summary>
public readonly record struct Granularity(int BlockHeight, int BlockWidth)
{
    /// <summary>Single weights (stored CSR).</summary>
    public static Granularity Unstructured { get; } = new(1, 1);
    /// <summary>True for single weights.</summary>
    public bool IsUnstructured => BlockHeight == 1 && BlockWidth == 1;

    /// <summary>"unstructured" or "block:32x32".</summary>
    public override string ToString() => IsUnstructured ? "unstructured" : $"block:{BlockHeight}x{BlockWidth}";

    /// <summary>Parses "unstructured" or "block:BHxBW" (sides 1 to 1024); a bad value is an <see cref="InputException"/> on <paramref name="argument"/>.</summary>
    public static Granularity Parse(string text, string argument = "--granularity")
    {
        if (text == "unstructured") return Unstructured;
        var bad = new InputException(argument, $"'{text}' is not 'unstructured' or 'block:BHxBW' (e.g. block:32x32, sides 1 to 1024)");
        if (!text.StartsWith("block:", StringComparison.Ordinal)) throw bad;
        var parts = text["block:".Length..].Split('x');
        if (parts.Length != 2 || !int.TryParse(parts[0], System.Globalization.NumberStyles.None, null, out int h)
            || !int.TryParse(parts[1], System.Globalization.NumberStyles.None, null, out int w) || h < 1 || w < 1 || h > 1024 || w > 1024) throw bad;
        return new Granularity(h, w);
    }
}

/// <summary>Which module a tensor belongs to, and the paper's DIMAP levels.</summary>
public static class DimapModules
{
    /// <summary>The module of a timm Swin key; anything that is not a block's qkv, proj, fc1 or fc2 weight is AUX.</summary>
    public static DimapModule Of(string name)
    {
        if (!name.StartsWith("layers.", StringComparison.Ordinal) || !name.Contains(".blocks.", StringComparison.Ordinal)) return DimapModule.Aux;
        if (name.EndsWith(".attn.qkv.weight", StringComparison.Ordinal)) return DimapModule.Qkv;
        if (name.EndsWith(".attn.proj.weight", StringComparison.Ordinal)) return DimapModule.Proj;
        if (name.EndsWith(".mlp.fc1.weight", StringComparison.Ordinal) || name.EndsWith(".mlp.fc2.weight", StringComparison.Ordinal)) return DimapModule.Mlp;
        return DimapModule.Aux;
    }

    /// <summary>
    /// The fraction of all parameters DIMAP level 1, 2 or 3 removes: Table 1's "Para.↓" for Swin-T/S/B (they differ
    /// per model, and only the per-model values reproduce its parameter counts within 1 %), ≈14/33/52 % for any other Swin.
    /// </summary>
    public static double LevelRatio(string arch, int level, string argument = "--level")
    {
        if (level is < 1 or > 3) throw new InputException(argument, $"{level} is not a DIMAP level (1, 2 or 3: ≈14, 33 or 52 % of parameters removed)");
        double[] table = Canonical(arch) switch
        {
            "swin_t" => [0.137, 0.320, 0.503],
            "swin_s" => [0.142, 0.332, 0.522],
            "swin_b" => [0.143, 0.334, 0.525],
            _ => [0.14, 0.33, 0.52],
        };
        return table[level - 1];
    }

    static string Canonical(string arch) => arch.ToLowerInvariant() switch
    {
        "swin_t" or "swin_tiny" or "swin_tiny_patch4_window7_224" => "swin_t",
        "swin_s" or "swin_small" or "swin_small_patch4_window7_224" => "swin_s",
        "swin_b" or "swin_base" or "swin_base_patch4_window7_224" => "swin_b",
        var other => other,
    };
}
