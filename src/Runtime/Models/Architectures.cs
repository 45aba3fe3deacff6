namespace VitSparse.Runtime.Models;

/// <summary>
/// Named architectures: the timm DeiT family, and the released SNP structures (methods.md §1.4, derived from
/// the official per-layer ratio JSONs as kept = width − round(ratio·width), which reproduces the paper's GMACs).
/// </summary>
public static class Architectures
{
    static readonly Dictionary<string, Func<VitConfig>> Known = new(StringComparer.OrdinalIgnoreCase)
    {
        ["deit_tiny_patch16_224"] = () => VitConfig.Uniform("deit_tiny_patch16_224", 192, 12, 3),
        ["deit_small_patch16_224"] = () => VitConfig.Uniform("deit_small_patch16_224", 384, 12, 6),
        ["deit_base_patch16_224"] = () => VitConfig.Uniform("deit_base_patch16_224", 768, 12, 12),
        ["deit_tiny_distilled_patch16_224"] = () => VitConfig.Uniform("deit_tiny_distilled_patch16_224", 192, 12, 3, distilled: true),
        ["deit_small_distilled_patch16_224"] = () => VitConfig.Uniform("deit_small_distilled_patch16_224", 384, 12, 6, distilled: true),
        ["deit_base_distilled_patch16_224"] = () => VitConfig.Uniform("deit_base_distilled_patch16_224", 768, 12, 12, distilled: true),
        ["deit_t_snp"] = () => Snp("deit_t_snp", 153, 3,
            qk: [39, 39, 39, 32, 26, 32, 26, 20, 20, 20, 20, 20],
            v: [51, 51, 38, 31, 38, 19, 38, 38, 31, 25, 19, 19],
            ffn: [614, 614, 614, 614, 614, 460, 537, 537, 614, 537, 460, 383]),
        ["deit_s_snp"] = () => Snp("deit_s_snp", 307, 6,
            qk: [25, 25, 25, 25, 25, 25, 25, 13, 13, 13, 13, 13],
            v: [51, 38, 38, 38, 31, 31, 31, 25, 19, 19, 12, 12],
            ffn: [1228, 1228, 1228, 1228, 1228, 1075, 1228, 921, 921, 921, 307, 307]),
        ["deit_s_snp_1.3g"] = () => Snp("deit_s_snp_1.3g", 345, 6,
            qk: [26, 20, 20, 13, 13, 13, 13, 13, 13, 13, 13, 13],
            v: [12, 19, 19, 12, 12, 12, 12, 12, 12, 12, 12, 12],
            ffn: [1382, 1075, 1075, 307, 307, 307, 307, 307, 307, 307, 307, 307]),
        ["deit_b_snp"] = () => Snp("deit_b_snp", 538, 12,
            qk: [19, 19, 19, 19, 19, 26, 19, 19, 19, 19, 26, 19],
            v: [19, 19, 19, 19, 19, 26, 19, 26, 19, 19, 38, 32],
            ffn: [2150, 1229, 2150, 2150, 2150, 1536, 2150, 1843, 2150, 1843, 1843, 922]),
    };

    static readonly Dictionary<string, string> Aliases = new(StringComparer.OrdinalIgnoreCase)
    {
        ["deit_t"] = "deit_tiny_patch16_224", ["deit_tiny"] = "deit_tiny_patch16_224",
        ["deit_s"] = "deit_small_patch16_224", ["deit_small"] = "deit_small_patch16_224",
        ["deit_b"] = "deit_base_patch16_224", ["deit_base"] = "deit_base_patch16_224",
        ["deit_t_distilled"] = "deit_tiny_distilled_patch16_224",
        ["deit_s_distilled"] = "deit_small_distilled_patch16_224",
        ["deit_b_distilled"] = "deit_base_distilled_patch16_224",
        ["deit_t_0.6g"] = "deit_t_snp", ["deit_s_2.0g"] = "deit_s_snp", ["deit_s_1.3g"] = "deit_s_snp_1.3g", ["deit_b_6.4g"] = "deit_b_snp",
    };

    /// <summary>Every known name and alias, sorted.</summary>
    public static IEnumerable<string> Names => Known.Keys.Concat(Aliases.Keys).Order(StringComparer.Ordinal);

    /// <summary>The architecture called <paramref name="name"/> (or an alias), if known.</summary>
    public static bool TryGet(string name, out VitConfig config)
    {
        if (Aliases.TryGetValue(name, out var canonical)) name = canonical;
        if (Known.TryGetValue(name, out var make)) { config = make(); return true; }
        config = null!;
        return false;
    }

    /// <summary>
    /// The architecture called <paramref name="name"/> (or an alias); an unknown name is an <see cref="InputException"/>
    /// on <paramref name="argument"/> (the option that gave it) with the closest known name suggested.
    /// </summary>
    public static VitConfig Get(string name, string argument = "--arch") => TryGet(name, out var c) ? c
        : throw new InputException(argument, $"unknown architecture '{name}'{Text.DidYouMean.Hint(name, Names)}; known: {string.Join(", ", Names)}");

    /// <summary>SNP keeps every head of a block at the same widths (the released ratios are multiples of 1/64 per head).</summary>
    static VitConfig Snp(string name, int embed, int heads, int[] qk, int[] v, int[] ffn) =>
        new(name, 224, 16, 3, embed, 1000, false, 1e-6f,
            Enumerable.Range(0, qk.Length).Select(i => new BlockConfig(
                Enumerable.Repeat(qk[i], heads).ToArray(), Enumerable.Repeat(v[i], heads).ToArray(), ffn[i], 0.125f)).ToArray(),
            VitConfig.ImageNetMean, VitConfig.ImageNetStd, 0.875f);
}
