using System.Text.Json;

namespace VitSparse.Runtime.Models;

/// <summary>
/// One transformer block's widths. Q/K width and V width are per head and independent; the attention
/// scale is kept from the unpruned head dim (64^-0.5 for DeiT), not recomputed from pruned widths,
/// because pruning removes terms from Q·Kᵀ without changing what the remaining ones were trained for.
/// </summary>
public sealed record BlockConfig(int[] QkWidths, int[] VWidths, int MlpHidden, float AttnScale)
{
    public int Heads => QkWidths.Length;
    public int QkTotal => QkWidths.Sum();
    public int VTotal => VWidths.Sum();
    public int QkvRows => 2 * QkTotal + VTotal;

    /// <summary>Column of head h's first Q feature in the fused QKV row (its K feature is QkTotal further on).</summary>
    public int QkOffset(int head) => QkWidths.AsSpan(0, head).ToArray().Sum();

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
    float CropPct)
{
    public const string MetadataKey = "vitsparse.config";
    public static readonly float[] ImageNetMean = [0.485f, 0.456f, 0.406f];
    public static readonly float[] ImageNetStd = [0.229f, 0.224f, 0.225f];

    public int Grid => ImageSize / PatchSize;
    public int PatchTokens => Grid * Grid;
    public int PrefixTokens => Distilled ? 2 : 1;
    public int Tokens => PatchTokens + PrefixTokens;
    public int Depth => Blocks.Count;
    public int PatchDim => InChannels * PatchSize * PatchSize;
    public int ImageElements => InChannels * ImageSize * ImageSize;

    public static VitConfig Uniform(string name, int embed, int depth, int heads, int classes = 1000, bool distilled = false,
        int imageSize = 224, int patchSize = 16, int inChannels = 3, int mlpRatio = 4) =>
        new(name, imageSize, patchSize, inChannels, embed, classes, distilled, 1e-6f,
            Enumerable.Range(0, depth).Select(_ => BlockConfig.Uniform(heads, embed / heads, embed * mlpRatio)).ToArray(),
            ImageNetMean, ImageNetStd, 0.875f);

    /// <summary>Throws <see cref="ModelException"/> naming the field when a width is impossible.</summary>
    public VitConfig Validate()
    {
        static void Check(bool ok, string field, string problem) { if (!ok) throw new ModelException($"config field '{field}': {problem}"); }
        Check(PatchSize > 0, "patch_size", $"must be positive, got {PatchSize}");
        Check(ImageSize > 0 && ImageSize % PatchSize == 0, "image_size", $"{ImageSize} must be a positive multiple of patch_size {PatchSize}");
        Check(InChannels > 0, "in_chans", $"must be positive, got {InChannels}");
        Check(EmbedDim > 0, "embed_dim", $"must be positive, got {EmbedDim}");
        Check(NumClasses > 0, "num_classes", $"must be positive, got {NumClasses}");
        Check(LayerNormEps > 0 && float.IsFinite(LayerNormEps), "ln_eps", $"must be a positive number, got {LayerNormEps}");
        Check(Blocks.Count > 0, "blocks", "a model needs at least one block");
        Check(Mean.Length == InChannels && Std.Length == InChannels, "mean/std", $"need {InChannels} values each");
        Check(Std.All(s => s > 0), "std", "values must be positive");
        for (int i = 0; i < Blocks.Count; i++)
        {
            var b = Blocks[i];
            Check(b.QkWidths.Length > 0 && b.QkWidths.Length == b.VWidths.Length, $"blocks[{i}]", $"needs as many V widths as Q/K widths ({b.QkWidths.Length} vs {b.VWidths.Length}), at least one head");
            Check(b.QkWidths.All(w => w > 0), $"blocks[{i}].qk", "every head keeps at least one Q/K pair");
            Check(b.VWidths.All(w => w > 0), $"blocks[{i}].v", "every head keeps at least one V neuron");
            Check(b.MlpHidden > 0, $"blocks[{i}].mlp", $"must be positive, got {b.MlpHidden}");
            Check(b.AttnScale > 0 && float.IsFinite(b.AttnScale), $"blocks[{i}].scale", $"must be a positive number, got {b.AttnScale}");
        }
        return this;
    }

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

    public static VitConfig FromJson(string json)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new ModelException($"config metadata '{MetadataKey}' is not valid JSON: {e.Message}"); }
        using (doc)
        {
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object) throw new ModelException($"config metadata '{MetadataKey}' must be a JSON object");
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

    static JsonElement Prop(JsonElement e, string name, string? field = null) =>
        e.TryGetProperty(name, out var v) ? v : throw new ModelException($"config field '{field ?? name}' is missing");

    static int Int(JsonElement e, string name, int? fallback = null, string? field = null)
    {
        if (!e.TryGetProperty(name, out var v))
            return fallback ?? throw new ModelException($"config field '{field ?? name}' is missing");
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int x) ? x : throw new ModelException($"config field '{field ?? name}' must be an integer");
    }

    static float Float(JsonElement e, string name, float? fallback = null, string? field = null)
    {
        if (!e.TryGetProperty(name, out var v))
            return fallback ?? throw new ModelException($"config field '{field ?? name}' is missing");
        return v.ValueKind == JsonValueKind.Number ? v.GetSingle() : throw new ModelException($"config field '{field ?? name}' must be a number");
    }

    static int[] Ints(JsonElement e, string name, string field)
    {
        var a = Prop(e, name, field);
        if (a.ValueKind != JsonValueKind.Array) throw new ModelException($"config field '{field}' must be an array of integers");
        return a.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int x) ? x
            : throw new ModelException($"config field '{field}' must be an array of integers")).ToArray();
    }

    static float[] Floats(JsonElement e, string name)
    {
        var a = Prop(e, name);
        if (a.ValueKind != JsonValueKind.Array) throw new ModelException($"config field '{name}' must be an array of numbers");
        return a.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.Number ? v.GetSingle()
            : throw new ModelException($"config field '{name}' must be an array of numbers")).ToArray();
    }
}
