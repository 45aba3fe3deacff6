using VitSparse.Kernels;
using VitSparse.Runtime.Formats;

namespace VitSparse.Runtime.Models;

/// <summary>What to do with NaN/Inf values in weights or inputs.</summary>
public enum NonFinitePolicy
{
    /// <summary>Refuse them with an error naming the tensor or file (the default).</summary>
    Refuse,
    /// <summary>Go on, after a warning.</summary>
    Warn,
    /// <summary>Go on silently.</summary>
    Allow,
}

/// <summary>How a model is loaded.</summary>
public sealed record LoadOptions
{
    /// <summary>Architecture name for checkpoints without our metadata (head counts, eps, scale).</summary>
    public string? Arch { get; init; }
    /// <summary>What to do with NaN/Inf weights (default: refuse).</summary>
    public NonFinitePolicy NonFinite { get; init; } = NonFinitePolicy.Refuse;
    /// <summary>Vector width of the packed weights; default is the machine's best.</summary>
    public SimdWidth Simd { get; init; }
    /// <summary>Receives warnings (NaN/Inf under <see cref="NonFinitePolicy.Warn"/>).</summary>
    public Action<string>? Warn { get; init; }
    /// <summary>How linear layers with zeros (or stored sparse) run: per-layer choice by default.</summary>
    public SparseMode Sparse { get; init; } = SparseMode.Auto;
    /// <summary>Relative kernel costs for <see cref="SparseMode.Auto"/>; default: the measured ones.</summary>
    public SparseCostModel? CostModel { get; init; }
}

/// <summary>One pre-norm transformer block with its weights packed for the kernels.</summary>
internal sealed class VitBlock
{
    public required float[] Norm1W, Norm1B, Norm2W, Norm2B;
    public required ILinear Qkv, Proj, Fc1, Fc2;
    public required HeadLayout Heads;
    public required float Scale;
}

/// <summary>
/// A loaded DeiT (dense or ragged), immutable and safe to share between sessions on many threads.
/// Weights are packed once here; a <see cref="InferenceSession"/> holds the per-inference buffers.
/// </summary>
public sealed class VitModel
{
    /// <summary>The architecture.</summary>
    public VitConfig Config { get; }
    /// <summary>Where the weights came from (file path or seeded).</summary>
    public string Source { get; }
    internal ILinear PatchEmbed { get; }
    internal float[] ClsToken { get; }
    internal float[]? DistToken { get; }
    internal float[] PosEmbed { get; }
    internal VitBlock[] Blocks { get; }
    internal float[] NormW { get; }
    internal float[] NormB { get; }
    internal ILinear Head { get; }
    internal ILinear? HeadDist { get; }
    /// <summary>Each linear layer's format, density and kernel MACs, in execution order.</summary>
    public IReadOnlyList<LayerFormat> LinearLayers => _linearLayers;
    readonly List<LayerFormat> _linearLayers = [];
    internal SimdWidth Simd { get; }

    VitModel(ITensorSource src, VitConfig config, LoadOptions o)
    {
        try { Config = config.Validate(); }
        catch (ModelException bad) { throw new ModelException($"{src.Description}: {bad.Message}", bad.Tensor); }
        Source = src.Description;
        Simd = o.Simd;
        var expected = VitLayout.ExpectedShapes(config);
        var stored = (src as SafeTensorsSource)?.Stored ?? new Dictionary<string, StoredLayout>();
        foreach (var name in stored.Keys)
            if (!VitLayout.IsLinearWeight(name) || !expected.ContainsKey(name))
                throw new ModelException($"{src.Description}: sparse tensors for '{name}', which is not a linear weight of the architecture '{config.Name}'", name);
        foreach (var (name, shape) in expected)
        {
            if (!src.Contains(name)) throw new ModelException($"{src.Description}: missing tensor '{name}' (architecture '{config.Name}')", name);
            var actual = src.Shape(name);
            // A weight stored sparse has its matrix shape: a conv patch embedding flattened to [out, in·p·p].
            if (stored.ContainsKey(name) && actual.Length == 2 && actual[0] == shape[0] && actual[1] == shape.Skip(1).Aggregate(1L, (a, b) => a * b)) continue;
            if (!actual.SequenceEqual(shape))
                throw new ModelException($"{src.Description}: tensor '{name}' has shape [{string.Join(",", actual)}], but the architecture '{config.Name}' needs [{string.Join(",", shape)}]", name);
        }
        float[] Vec(string name) => Checked(src, name, o).ToArray();
        ILinear Lin(string prefix, int n, int k)
        {
            var (linear, format) = LinearFormats.Build(prefix, Checked(src, prefix + ".weight", o), n, k, Checked(src, prefix + ".bias", o),
                o.Sparse, o.Simd, o.CostModel, stored.GetValueOrDefault(prefix + ".weight"));
            _linearLayers.Add(format);
            return linear;
        }

        int e = config.EmbedDim;
        PatchEmbed = Lin("patch_embed.proj", e, config.PatchDim);
        ClsToken = Vec("cls_token");
        DistToken = config.Distilled ? Vec("dist_token") : null;
        PosEmbed = Vec("pos_embed");
        Blocks = new VitBlock[config.Depth];
        for (int i = 0; i < config.Depth; i++)
        {
            var b = config.Blocks[i];
            string p = $"blocks.{i}.";
            Blocks[i] = new VitBlock
            {
                Norm1W = Vec(p + "norm1.weight"), Norm1B = Vec(p + "norm1.bias"),
                Norm2W = Vec(p + "norm2.weight"), Norm2B = Vec(p + "norm2.bias"),
                Qkv = Lin(p + "attn.qkv", b.QkvRows, e),
                Proj = Lin(p + "attn.proj", e, b.VTotal),
                Fc1 = Lin(p + "mlp.fc1", b.MlpHidden, e),
                Fc2 = Lin(p + "mlp.fc2", e, b.MlpHidden),
                Heads = new HeadLayout(b.QkWidths, b.VWidths),
                Scale = b.AttnScale,
            };
        }
        NormW = Vec("norm.weight");
        NormB = Vec("norm.bias");
        Head = Lin("head", config.NumClasses, e);
        HeadDist = config.Distilled ? Lin("head_dist", config.NumClasses, e) : null;
    }

    /// <summary>A weight tensor's floats, with its NaN/Inf values handled as <see cref="LoadOptions.NonFinite"/> says (every model family loads through this).</summary>
    internal static ReadOnlySpan<float> Checked(ITensorSource src, string name, LoadOptions o)
    {
        var data = src.Floats(name);
        if (o.NonFinite == NonFinitePolicy.Allow) return data;
        var (bad, first) = NonFinite.Count(data);
        if (bad == 0) return data;
        string msg = $"{src.Description}: tensor '{name}' has {bad} NaN/Inf values (first at flat index {first})";
        if (o.NonFinite == NonFinitePolicy.Refuse) throw new ModelException(msg + "; refusing to load (allow with NonFinitePolicy.Warn or --nonfinite warn)", name);
        o.Warn?.Invoke("warning: " + msg);
        return data;
    }

    /// <summary>Loads and packs the tensors of any source for <paramref name="config"/>.</summary>
    public static VitModel FromSource(ITensorSource src, VitConfig config, LoadOptions? options = null) => new(src, config, options ?? new LoadOptions());

    /// <summary>MACs per image as this model runs them: <see cref="ModelStats.Macs"/> with each linear layer's kernel MACs (kept weights for sparse layers).</summary>
    public long KernelMacs()
    {
        var c = Config;
        long saved = 0;
        foreach (var l in _linearLayers)
        {
            long rows = l.Layer.StartsWith("patch_embed", StringComparison.Ordinal) ? c.PatchTokens : l.Layer.StartsWith("head", StringComparison.Ordinal) ? 1 : c.Tokens;
            saved += rows * ((long)l.N * l.K - l.KernelMacsPerRow);
        }
        return ModelStats.Macs(c) - saved;
    }

    /// <summary>The sparse layouts of this model's layers as loaded, for <see cref="Save"/> to keep them.</summary>
    public IReadOnlyDictionary<string, StoredLayout> SparseLayouts() => _linearLayers.Where(l => l.Format != WeightFormat.Dense)
        .ToDictionary(l => l.Layer + ".weight", l => new StoredLayout(l.Format, l.BlockHeight, l.BlockWidth, l.N, l.K, l.Density));

    /// <summary>
    /// Loads a safetensors checkpoint: our compact format (config in metadata) or a plain timm DeiT, whose
    /// config is inferred from tensor shapes (with <see cref="LoadOptions.Arch"/> supplying head counts).
    /// </summary>
    public static VitModel Load(string path, LoadOptions? options = null)
    {
        options ??= new LoadOptions();
        using var file = new SafeTensorsFile(path);
        var src = new SafeTensorsSource(file);
        return new VitModel(src, ReadConfig(file, options.Arch), options);
    }

    /// <summary>The config of a file: its VitSparse metadata, else inferred from tensor shapes (<paramref name="arch"/> supplies head counts).</summary>
    public static VitConfig ReadConfig(SafeTensorsFile file, string? arch)
    {
        if (file.Metadata.TryGetValue(VitConfig.MetadataKey, out var json))
        {
            try { return VitConfig.FromJson(json); }
            catch (ModelException e) { throw new ModelException($"{file.Path}: {e.Message}", e.Tensor); }
        }
        return VitLayout.Infer(new SafeTensorsSource(file), arch == null ? null : Architectures.Get(arch));
    }

    /// <summary>
    /// Writes the model's config and the given tensors as our compact safetensors, with the class names
    /// (one per output) when given, so a pruned model still prints them, and any further string metadata.
    /// </summary>
    /// <param name="path">the file to write (atomically).</param>
    /// <param name="config">the architecture, written as metadata.</param>
    /// <param name="src">where the tensors come from.</param>
    /// <param name="dtype">F32, F16 or BF16 for the float tensors.</param>
    /// <param name="classNames">one name per class, or null.</param>
    /// <param name="metadata">further string metadata to keep.</param>
    /// <param name="sparse">linear weights to store sparse (format and block shape per weight name); the rest are dense.</param>
    public static void Save(string path, VitConfig config, ITensorSource src, DType dtype = DType.F32, string[]? classNames = null,
        IReadOnlyDictionary<string, string>? metadata = null, IReadOnlyDictionary<string, StoredLayout>? sparse = null)
    {
        var c = config.Validate();
        CompactFile.Write(path, c.ToJson(), c.NumClasses, VitLayout.ExpectedShapes(c), VitLayout.IsLinearWeight, src, dtype, classNames, metadata, sparse);
    }
}
