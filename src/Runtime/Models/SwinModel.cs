using VitSparse.Kernels;
using VitSparse.Runtime.Formats;

namespace VitSparse.Runtime.Models;

/// <summary>One Swin block, packed: pre-norm window attention and MLP, with its bias expanded once for the window.</summary>
internal sealed class SwinBlock
{
    public required float[] Norm1W, Norm1B, Norm2W, Norm2B;
    public required ILinear Qkv, Proj, Fc1, Fc2;
    /// <summary>The qkv bias: the q, k and v of a zero-padded token.</summary>
    public required float[] QkvBias;
    /// <summary>Relative position bias as [heads][N][stride] (<see cref="WindowAttention.ExpandBias"/>).</summary>
    public required float[] Bias;
    public required WindowGeometry Geometry;
}

/// <summary>A stage: the patch merging that feeds it (none for stage 0), then its blocks.</summary>
internal sealed class SwinStageWeights
{
    public float[]? MergeNormW, MergeNormB;
    public ILinear? Reduction;
    public required SwinBlock[] Blocks;
    /// <summary>Shift masks of the odd blocks (<see cref="WindowAttention.ShiftMasks"/>); empty when the stage does not shift.</summary>
    public required float[] Masks;
}

/// <summary>
/// A loaded Swin Transformer (timm `SwinTransformer`, either key layout), immutable and safe to share between
/// sessions; weights are packed once here (each linear layer in the format <see cref="LinearFormats"/> picks), and a
/// <see cref="SwinSession"/> holds the per-inference buffers.
/// </summary>
public sealed class SwinModel
{
    /// <summary>The architecture.</summary>
    public SwinConfig Config { get; }
    /// <summary>Where the weights came from (file path or seeded).</summary>
    public string Source { get; }
    /// <summary>Each linear layer's format, density and kernel MACs, in execution order.</summary>
    public IReadOnlyList<LayerFormat> LinearLayers => _linearLayers;
    readonly List<LayerFormat> _linearLayers = [];
    internal ILinear PatchEmbed { get; }
    internal float[] PatchNormW { get; }
    internal float[] PatchNormB { get; }
    internal SwinStageWeights[] Stages { get; }
    internal float[] NormW { get; }
    internal float[] NormB { get; }
    internal ILinear Head { get; }
    internal SimdWidth Simd { get; }

    SwinModel(ITensorSource src, SwinConfig config, LoadOptions o)
    {
        try { Config = config.Validate(); }
        catch (ModelException bad) { throw new ModelException($"{src.Description}: {bad.Message}", bad.Tensor); }
        Source = src.Description;
        Simd = o.Simd;
        var expected = SwinLayout.ExpectedShapes(config);
        var stored = (src as SafeTensorsSource)?.Stored ?? new Dictionary<string, StoredLayout>();
        foreach (var name in stored.Keys)
            if (!SwinLayout.IsLinearWeight(name) || !expected.ContainsKey(name))
                throw new ModelException($"{src.Description}: sparse tensors for '{name}', which is not a linear weight of the architecture '{config.Name}'", name);
        CheckShapes(src, config, expected, stored);

        float[] Vec(string name) => VitModel.Checked(src, name, o).ToArray();
        ILinear Lin(string prefix, int n, int k, bool bias = true)
        {
            var (linear, format) = LinearFormats.Build(prefix, VitModel.Checked(src, prefix + ".weight", o), n, k, bias ? VitModel.Checked(src, prefix + ".bias", o) : default,
                o.Sparse, o.Simd, o.CostModel, stored.GetValueOrDefault(prefix + ".weight"));
            _linearLayers.Add(format);
            return linear;
        }

        PatchEmbed = Lin("patch_embed.proj", config.EmbedDim, config.PatchDim);
        PatchNormW = Vec("patch_embed.norm.weight");
        PatchNormB = Vec("patch_embed.norm.bias");
        Stages = new SwinStageWeights[config.Stages.Count];
        for (int s = 0; s < Stages.Length; s++)
        {
            var st = config.Stages[s];
            int d = st.Dim, res = config.Resolution(s);
            var geometry = new WindowGeometry(res, res, config.StageWindow(s), 0);
            float[]? mergeW = null, mergeB = null;
            ILinear? reduction = null;
            if (s > 0)
            {
                string m = SwinLayout.Merge(config, s);
                mergeW = Vec(m + "norm.weight");
                mergeB = Vec(m + "norm.bias");
                reduction = Lin(m + "reduction", d, 4 * config.Stages[s - 1].Dim, bias: false);
            }
            var blocks = new SwinBlock[st.Depth];
            for (int b = 0; b < st.Depth; b++)
            {
                string p = SwinLayout.Block(s, b);
                var bias = new float[st.Heads * geometry.Tokens * geometry.Stride];
                WindowAttention.ExpandBias(VitModel.Checked(src, p + "attn.relative_position_bias_table", o), geometry.Window, st.Heads, bias);
                blocks[b] = new SwinBlock
                {
                    Norm1W = Vec(p + "norm1.weight"), Norm1B = Vec(p + "norm1.bias"),
                    Norm2W = Vec(p + "norm2.weight"), Norm2B = Vec(p + "norm2.bias"),
                    Qkv = Lin(p + "attn.qkv", 3 * d, d),
                    QkvBias = Vec(p + "attn.qkv.bias"),
                    Bias = bias,
                    Proj = Lin(p + "attn.proj", d, d),
                    Fc1 = Lin(p + "mlp.fc1", st.MlpHidden, d),
                    Fc2 = Lin(p + "mlp.fc2", d, st.MlpHidden),
                    Geometry = geometry with { Shift = b % 2 == 1 ? config.StageShift(s) : 0 },
                };
            }
            float[] masks = [];
            if (config.StageShift(s) > 0 && st.Depth > 1)
            {
                var shifted = geometry with { Shift = config.StageShift(s) };
                masks = new float[4 * shifted.Tokens * shifted.Stride];
                WindowAttention.ShiftMasks(shifted, masks);
            }
            Stages[s] = new SwinStageWeights { MergeNormW = mergeW, MergeNormB = mergeB, Reduction = reduction, Blocks = blocks, Masks = masks };
        }
        NormW = Vec("norm.weight");
        NormB = Vec("norm.bias");
        Head = Lin(SwinLayout.Head(config), config.NumClasses, config.NumFeatures);
    }

    /// <summary>Every tensor present with its shape; a bias table sized for the unshrunk window says why it is wrong.</summary>
    static void CheckShapes(ITensorSource src, SwinConfig config, Dictionary<string, long[]> expected, IReadOnlyDictionary<string, StoredLayout> stored)
    {
        foreach (var (name, shape) in expected)
        {
            if (!src.Contains(name))
            {
                string hint = name.StartsWith("head", StringComparison.Ordinal) || name.Contains(".downsample.", StringComparison.Ordinal)
                    ? $" (the config's key layout is {(config.Layout == SwinKeyLayout.Legacy ? "timm 0.6/MS" : "timm ≥ 0.9")})" : "";
                throw new ModelException($"{src.Description}: missing tensor '{name}' (architecture '{config.Name}'){hint}", name);
            }
            var actual = src.Shape(name);
            if (stored.ContainsKey(name) && actual.Length == 2 && actual[0] == shape[0] && actual[1] == shape.Skip(1).Aggregate(1L, (a, b) => a * b)) continue;
            if (actual.SequenceEqual(shape)) continue;
            if (name.EndsWith(".relative_position_bias_table", StringComparison.Ordinal))
            {
                int s = int.Parse(name.AsSpan(7, name.IndexOf('.', 7) - 7), System.Globalization.CultureInfo.InvariantCulture);
                int res = config.Resolution(s), w = config.Window;
                string why = res < w && actual.Length == 2 && actual[0] == (2L * w - 1) * (2L * w - 1)
                    ? $": window {w} is larger than stage {s}'s {res}×{res} map at image size {config.ImageSize}, so timm shrinks the window to {res} and the table needs {(2 * res - 1) * (2 * res - 1)} rows"
                    : $": a window of {config.StageWindow(s)} needs (2·{config.StageWindow(s)} − 1)² = {shape[0]} rows of {shape[1]} heads";
                throw new ModelException($"{src.Description}: tensor '{name}' has shape [{string.Join(",", actual)}]{why}", name);
            }
            throw new ModelException($"{src.Description}: tensor '{name}' has shape [{string.Join(",", actual)}], but the architecture '{config.Name}' needs [{string.Join(",", shape)}]", name);
        }
    }

    /// <summary>Loads and packs the tensors of any source for <paramref name="config"/>.</summary>
    public static SwinModel FromSource(ITensorSource src, SwinConfig config, LoadOptions? options = null) => new(src, config, options ?? new LoadOptions());

    /// <summary>
    /// Loads a safetensors Swin: our compact format (config in metadata) or a plain timm checkpoint of either key
    /// layout, whose config is inferred from tensor shapes (<see cref="LoadOptions.Arch"/> supplies the image size).
    /// </summary>
    public static SwinModel Load(string path, LoadOptions? options = null)
    {
        options ??= new LoadOptions();
        using var file = new SafeTensorsFile(path);
        return new SwinModel(new SafeTensorsSource(file), SwinFile.ReadConfig(file, options.Arch), options);
    }

    /// <summary>Rows of X a linear layer sees per image: patches, the stage's tokens, or one pooled row for the head.</summary>
    public long RowsPerImage(LayerFormat layer)
    {
        string name = layer.Layer;
        if (name.StartsWith("head", StringComparison.Ordinal)) return 1;
        if (name.StartsWith("patch_embed", StringComparison.Ordinal)) return (long)Config.Resolution(0) * Config.Resolution(0);
        // "layers.{s}.blocks…" runs on stage s's map; a merge "layers.{s}.downsample" on the map after it.
        int s = int.Parse(name.AsSpan(7, name.IndexOf('.', 7) - 7), System.Globalization.CultureInfo.InvariantCulture);
        if (name.Contains(".downsample.", StringComparison.Ordinal) && Config.Layout == SwinKeyLayout.Legacy) s++;
        return (long)Config.Resolution(s) * Config.Resolution(s);
    }

    /// <summary>Multiply-adds per image of the linear layers as this model runs them (kept weights for sparse layers), plus window attention.</summary>
    public long KernelMacs() => _linearLayers.Sum(l => RowsPerImage(l) * l.KernelMacsPerRow) + AttentionMacs(Config);

    /// <summary>Dense multiply-adds per image: every linear layer in full, plus window attention (padded windows, as timm computes them).</summary>
    public long DenseMacs() => _linearLayers.Sum(l => RowsPerImage(l) * l.N * (long)l.K) + AttentionMacs(Config);

    /// <summary>Window attention's two products: per block, padded tokens × window tokens × width, twice.</summary>
    public static long AttentionMacs(SwinConfig c)
    {
        long macs = 0;
        for (int s = 0; s < c.Stages.Count; s++)
        {
            long padded = c.PaddedResolution(s), w = c.StageWindow(s);
            macs += c.Stages[s].Depth * 2L * padded * padded * w * w * c.Stages[s].Dim;
        }
        return macs;
    }

    /// <summary>The sparse layouts of this model's layers as loaded, for <see cref="SwinFile.Save"/> to keep them.</summary>
    public IReadOnlyDictionary<string, StoredLayout> SparseLayouts() => _linearLayers.Where(l => l.Format != WeightFormat.Dense)
        .ToDictionary(l => l.Layer + ".weight", l => new StoredLayout(l.Format, l.BlockHeight, l.BlockWidth, l.N, l.K, l.Density));
}
