namespace VitSparse.Runtime.Models;

/// <summary>Named Swin architectures: timm's `swin_{tiny,small,base}_patch4_window7_224` (methods.md §4).</summary>
public static class SwinArchitectures
{
    static readonly Dictionary<string, Func<SwinConfig>> Known = new(StringComparer.OrdinalIgnoreCase)
    {
        ["swin_tiny_patch4_window7_224"] = () => SwinConfig.Uniform("swin_tiny_patch4_window7_224", 96, [2, 2, 6, 2], [3, 6, 12, 24]),
        ["swin_small_patch4_window7_224"] = () => SwinConfig.Uniform("swin_small_patch4_window7_224", 96, [2, 2, 18, 2], [3, 6, 12, 24]),
        ["swin_base_patch4_window7_224"] = () => SwinConfig.Uniform("swin_base_patch4_window7_224", 128, [2, 2, 18, 2], [4, 8, 16, 32]),
    };

    static readonly Dictionary<string, string> Aliases = new(StringComparer.OrdinalIgnoreCase)
    {
        ["swin_t"] = "swin_tiny_patch4_window7_224", ["swin_tiny"] = "swin_tiny_patch4_window7_224",
        ["swin_s"] = "swin_small_patch4_window7_224", ["swin_small"] = "swin_small_patch4_window7_224",
        ["swin_b"] = "swin_base_patch4_window7_224", ["swin_base"] = "swin_base_patch4_window7_224",
    };

    /// <summary>Every known name and alias, sorted.</summary>
    public static IEnumerable<string> Names => Known.Keys.Concat(Aliases.Keys).Order(StringComparer.Ordinal);

    /// <summary>Whether <paramref name="name"/> (or an alias) is a known Swin; <paramref name="config"/> is then its config.</summary>
    public static bool TryGet(string name, out SwinConfig config)
    {
        if (Aliases.TryGetValue(name, out var canonical)) name = canonical;
        if (Known.TryGetValue(name, out var make)) { config = make(); return true; }
        config = null!;
        return false;
    }

    /// <summary>The Swin called <paramref name="name"/>; an unknown name is an <see cref="InputException"/> on <paramref name="argument"/>.</summary>
    public static SwinConfig Get(string name, string argument = "--arch") => TryGet(name, out var c) ? c
        : throw new InputException(argument, $"unknown Swin architecture '{name}'{Text.DidYouMean.Hint(name, Names)}; known: {string.Join(", ", Names)}");
}

/// <summary>
/// Deterministic synthetic weights for a Swin config, value by value the same generator as <see cref="SeededWeights"/>
/// (so tools/ can reproduce them): LayerNorm weights near 1, linears U(±1/√fan_in), small biases and bias tables.
/// </summary>
public sealed class SeededSwinWeights(SwinConfig config, ulong seed = 0) : ITensorSource
{
    readonly Dictionary<string, long[]> _shapes = SwinLayout.ExpectedShapes(config);

    /// <inheritdoc/>
    public string Description => $"seeded weights (seed {seed})";
    /// <inheritdoc/>
    public bool Contains(string name) => _shapes.ContainsKey(name);
    /// <inheritdoc/>
    public long[] Shape(string name) => _shapes[name];

    /// <inheritdoc/>
    public ReadOnlySpan<float> Floats(string name)
    {
        var shape = _shapes[name];
        var data = new float[shape.Aggregate(1L, (a, b) => a * b)];
        SeededWeights.Fill(name, shape, seed, data);
        return data;
    }
}
