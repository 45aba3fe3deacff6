using System.Text.Json;

namespace VitSparse.Runtime.Models;

/// <summary>
/// One transformer block's widths. Q/K width and V width are per head and independent; the attention
/// scale is kept from the unpruned head dim (64^-0.5 for DeiT), not recomputed from pruned widths,
/// because pruning removes terms from Q·Kᵀ without changing what the remaining ones were trained for.
/// </summary>
public sealed record BlockConfig(int[] QkWidths, int[] VWidths, int MlpHidden, float AttnScale)
{
    /// <summary>Number of heads.</summary>
    public int Heads => QkWidths.Length;
    /// <summary>Q (or K) width summed over heads.</summary>
    public int QkTotal => ConfigLimits.Sum(QkWidths, "qk");
    /// <summary>V width summed over heads.</summary>
    public int VTotal => ConfigLimits.Sum(VWidths, "v");
    /// <summary>Rows of the fused qkv weight: Q, K and V of every head.</summary>
    public int QkvRows => ConfigLimits.ToInt(2L * QkTotal + VTotal, "2·Σqk + Σv");

    /// <summary>Column of head h's first Q feature in the fused QKV row (its K feature is QkTotal further on).</summary>
    public int QkOffset(int head) => ConfigLimits.Sum(QkWidths.AsSpan(0, head), "qk");

    /// <summary>A dense block: every head <paramref name="headDim"/> wide, scale headDim^-0.5.</summary>
    public static BlockConfig Uniform(int heads, int headDim, int mlpHidden) =>
        new(Enumerable.Repeat(headDim, heads).ToArray(), Enumerable.Repeat(headDim, heads).ToArray(), mlpHidden, 1f / MathF.Sqrt(headDim));
}

/// <summary>
/// Everything that shapes a (possibly pruned) DeiT: one global residual width, and per block the
/// per-head widths and FFN width. Stored as JSON in the safetensors `__metadata__` under <see cref="MetadataKey"/>.
/// </summary>
public sealed record VitConfig(
    string Name,
    int ImageSize,
    int PatchSize,
    int InChannels,
    int EmbedDim,
    int NumClasses,
    bool Distilled,
    float LayerNormEps,
    IReadOnlyList<BlockConfig> Blocks,
    float[] Mean,
    float[] Std,
    float CropPct) : IImageModelConfig
{
    /// <summary>safetensors metadata key of the config JSON.</summary>
    public const string MetadataKey = "vitsparse.config";
    /// <summary>ImageNet mean per channel (timm's default).</summary>
    public static readonly float[] ImageNetMean = [0.485f, 0.456f, 0.406f];
    /// <summary>ImageNet std per channel (timm's default).</summary>
    public static readonly float[] ImageNetStd = [0.229f, 0.224f, 0.225f];

    /// <summary>Patches per side.</summary>
    public int Grid => ImageSize / PatchSize;
    /// <summary>Patch tokens.</summary>
    public int PatchTokens => Grid * Grid;
    /// <summary>Class token, plus the distillation token when distilled.</summary>
    public int PrefixTokens => Distilled ? 2 : 1;
    /// <summary>All tokens.</summary>
    public int Tokens => PatchTokens + PrefixTokens;
    /// <summary>Number of blocks.</summary>
    public int Depth => Blocks.Count;
    /// <summary>Values per patch: channels × patch².</summary>
    public int PatchDim => InChannels * PatchSize * PatchSize;
    /// <summary>Floats per preprocessed image: channels × size².</summary>
    public int ImageElements => InChannels * ImageSize * ImageSize;

    /// <summary>A dense DeiT: every block with <paramref name="heads"/> heads of width embed/heads.</summary>
    public static VitConfig Uniform(string name, int embed, int depth, int heads, int classes = 1000, bool distilled = false,
        int imageSize = 224, int patchSize = 16, int inChannels = 3, int mlpRatio = 4) =>
        new(name, imageSize, patchSize, inChannels, embed, classes, distilled, 1e-6f,
            Enumerable.Range(0, depth).Select(_ => BlockConfig.Uniform(heads, embed / heads, embed * mlpRatio)).ToArray(),
            ImageNetMean, ImageNetStd, 0.875f);

    /// <summary>
    /// Throws <see cref="ModelException"/> naming the field when a value is outside its documented range
    /// (<see cref="ConfigLimits"/>). Every later size computation (tensor shapes, activation buffers, kernel
    /// strides) relies on this: once it passes, every width sum and every tensor and activation element
    /// count of one image fits in an int, so nothing downstream can overflow or wrap.
    /// </summary>
    public VitConfig Validate() => ConfigLimits.Validate(this);

    /// <summary>The config as the JSON the metadata holds.</summary>
    public string ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("name", Name);
            w.WriteNumber("image_size", ImageSize);
            w.WriteNumber("patch_size", PatchSize);
            w.WriteNumber("in_chans", InChannels);
            w.WriteNumber("embed_dim", EmbedDim);
            w.WriteNumber("num_classes", NumClasses);
            w.WriteBoolean("distilled", Distilled);
            w.WriteNumber("ln_eps", LayerNormEps);
            WriteArray(w, "mean", Mean);
            WriteArray(w, "std", Std);
            w.WriteNumber("crop_pct", CropPct);
            w.WriteStartArray("blocks");
            foreach (var b in Blocks)
            {
                w.WriteStartObject();
                w.WriteStartArray("qk"); foreach (int v in b.QkWidths) w.WriteNumberValue(v); w.WriteEndArray();
                w.WriteStartArray("v"); foreach (int v in b.VWidths) w.WriteNumberValue(v); w.WriteEndArray();
                w.WriteNumber("mlp", b.MlpHidden);
                w.WriteNumber("scale", b.AttnScale);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    static void WriteArray(Utf8JsonWriter w, string name, float[] values)
    {
        w.WriteStartArray(name);
        foreach (float v in values) w.WriteNumberValue(v);
        w.WriteEndArray();
    }

    /// <summary>Parses and validates the metadata JSON; every field is range-checked.</summary>
    public static VitConfig FromJson(string json)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new ModelException($"config metadata '{MetadataKey}' is not valid JSON: {e.Message}"); }
        using (doc)
        {
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object) throw new ModelException($"config metadata '{MetadataKey}' must be a JSON object");
            if (r.TryGetProperty("family", out var fam) && fam.ValueKind == JsonValueKind.String && fam.GetString() != "deit")
                throw new ModelException($"config metadata '{MetadataKey}' describes a '{fam.GetString()}' model, not a DeiT; load it as that family (e.g. SwinModel)");
            int inChans = Int(r, "in_chans", 3);
            var blocksEl = Prop(r, "blocks");
            if (blocksEl.ValueKind != JsonValueKind.Array) throw new ModelException("config field 'blocks' must be an array");
            var blocks = new List<BlockConfig>();
            int i = 0;
            foreach (var b in blocksEl.EnumerateArray())
            {
                if (b.ValueKind != JsonValueKind.Object) throw new ModelException($"config field 'blocks[{i}]' must be an object");
                blocks.Add(new BlockConfig(Ints(b, "qk", $"blocks[{i}].qk"), Ints(b, "v", $"blocks[{i}].v"),
                    Int(b, "mlp", null, $"blocks[{i}].mlp"), Float(b, "scale", null, $"blocks[{i}].scale")));
                i++;
            }
            return new VitConfig(
                r.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : "vit",
                Int(r, "image_size"), Int(r, "patch_size"), inChans, Int(r, "embed_dim"), Int(r, "num_classes"),
                r.TryGetProperty("distilled", out var d) && d.ValueKind == JsonValueKind.True,
                Float(r, "ln_eps", 1e-6f),
                blocks,
                r.TryGetProperty("mean", out _) ? Floats(r, "mean") : ImageNetMean,
                r.TryGetProperty("std", out _) ? Floats(r, "std") : ImageNetStd,
                Float(r, "crop_pct", 0.875f)).Validate();
        }
    }

    internal static JsonElement Prop(JsonElement e, string name, string? field = null) =>
        e.TryGetProperty(name, out var v) ? v : throw new ModelException($"config field '{field ?? name}' is missing");

    internal static int Int(JsonElement e, string name, int? fallback = null, string? field = null)
    {
        if (!e.TryGetProperty(name, out var v))
            return fallback ?? throw new ModelException($"config field '{field ?? name}' is missing");
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int x) ? x : throw new ModelException($"config field '{field ?? name}' must be an integer");
    }

    internal static float Float(JsonElement e, string name, float? fallback = null, string? field = null)
    {
        if (!e.TryGetProperty(name, out var v))
            return fallback ?? throw new ModelException($"config field '{field ?? name}' is missing");
        return v.ValueKind == JsonValueKind.Number ? v.GetSingle() : throw new ModelException($"config field '{field ?? name}' must be a number");
    }

    internal static int[] Ints(JsonElement e, string name, string field)
    {
        var a = Prop(e, name, field);
        if (a.ValueKind != JsonValueKind.Array) throw new ModelException($"config field '{field}' must be an array of integers");
        return a.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int x) ? x
            : throw new ModelException($"config field '{field}' must be an array of integers")).ToArray();
    }

    internal static float[] Floats(JsonElement e, string name)
    {
        var a = Prop(e, name);
        if (a.ValueKind != JsonValueKind.Array) throw new ModelException($"config field '{name}' must be an array of numbers");
        return a.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.Number ? v.GetSingle()
            : throw new ModelException($"config field '{name}' must be an array of numbers")).ToArray();
    }
}
