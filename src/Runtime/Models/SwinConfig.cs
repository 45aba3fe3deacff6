using System.Text.Json;

namespace VitSparse.Runtime.Models;

/// <summary>Which timm tensor names a Swin checkpoint uses (methods.md §4); the forward is the same for both.</summary>
public enum SwinKeyLayout
{
    /// <summary>timm ≥ 0.9 (HF `timm/*`): `layers.{s}.downsample` for s ≥ 1, at the start of stage s; `head.fc.*`.</summary>
    Timm09,
    /// <summary>Original MS / timm 0.6: `layers.{s}.downsample` for s ≤ stages−2, at the end of stage s; `head.*`.</summary>
    Legacy,
}

/// <summary>One Swin stage: its blocks, residual width, heads (of equal width) and MLP hidden width.</summary>
public sealed record SwinStage(int Depth, int Dim, int Heads, int MlpHidden)
{
    /// <summary>Width of one head.</summary>
    public int HeadDim => Dim / Heads;
}

/// <summary>
/// Everything that shapes a Swin Transformer (timm `SwinTransformer`): per stage depth, width, heads and MLP
/// width; the window; the image and patch size. Stored as JSON in the safetensors `__metadata__` under
/// <see cref="VitConfig.MetadataKey"/> with `"family": "swin"`, so a pruned Swin (its per-layer sparse formats
/// are in <see cref="SparseStorage"/>) round-trips. Each stage's window and shift follow timm: a map no larger
/// than the window shrinks the window to the map and is not shifted.
/// </summary>
public sealed record SwinConfig(
    string Name,
    int ImageSize,
    int PatchSize,
    int InChannels,
    int NumClasses,
    int Window,
    IReadOnlyList<SwinStage> Stages,
    SwinKeyLayout Layout,
    float LayerNormEps,
    float[] Mean,
    float[] Std,
    float CropPct) : IImageModelConfig
{
    /// <summary>The `family` value of a Swin config in the metadata.</summary>
    public const string Family = "swin";

    /// <summary>Width after the patch embedding (stage 0).</summary>
    public int EmbedDim => Stages[0].Dim;
    /// <summary>Width the head sees (last stage).</summary>
    public int NumFeatures => Stages[^1].Dim;
    /// <summary>Values per patch: channels × patch².</summary>
    public int PatchDim => InChannels * PatchSize * PatchSize;
    /// <summary>Floats per preprocessed image: channels × size².</summary>
    public int ImageElements => InChannels * ImageSize * ImageSize;
    /// <summary>Side of the token map of stage <paramref name="s"/> (each stage after the first halves it).</summary>
    public int Resolution(int s) => ImageSize / PatchSize >> s;
    /// <summary>Window side in stage s: the configured window, or the whole map where the map is smaller.</summary>
    public int StageWindow(int s) => Math.Min(Window, Resolution(s));
    /// <summary>Shift of the odd blocks of stage s: window/2, or 0 where the map is no larger than the window.</summary>
    public int StageShift(int s) => Resolution(s) <= Window ? 0 : Window / 2;
    /// <summary>Map side of stage s padded up to a multiple of its window (timm pads after norm1 with zeros).</summary>
    public int PaddedResolution(int s) => (Resolution(s) + StageWindow(s) - 1) / StageWindow(s) * StageWindow(s);
    /// <summary>Rows of stage s's relative position bias table: (2w − 1)².</summary>
    public int BiasTableRows(int s) => (2 * StageWindow(s) - 1) * (2 * StageWindow(s) - 1);
    /// <summary>Attention scale of stage s: head_dim^-0.5.</summary>
    public float AttnScale(int s) => 1f / MathF.Sqrt(Stages[s].HeadDim);
    /// <summary>All blocks over all stages.</summary>
    public int TotalBlocks => Stages.Sum(st => st.Depth);

    /// <summary>A dense timm Swin: widths embed·2^s, heads as given, MLP mlpRatio× wide.</summary>
    public static SwinConfig Uniform(string name, int embed, int[] depths, int[] heads, int window = 7, int classes = 1000,
        int imageSize = 224, int patchSize = 4, int inChannels = 3, int mlpRatio = 4, SwinKeyLayout layout = SwinKeyLayout.Timm09)
    {
        if (depths.Length != heads.Length) throw new ArgumentException($"{depths.Length} depths but {heads.Length} head counts");
        var stages = new SwinStage[depths.Length];
        for (int s = 0; s < depths.Length; s++)
        {
            int dim = checked(embed << s);
            stages[s] = new SwinStage(depths[s], dim, heads[s], checked(dim * mlpRatio));
        }
        return new SwinConfig(name, imageSize, patchSize, inChannels, classes, window, stages, layout, 1e-5f,
            VitConfig.ImageNetMean, VitConfig.ImageNetStd, 0.9f);
    }

    /// <summary>Throws <see cref="ModelException"/> naming the field when a value is outside its range (<see cref="SwinLimits"/>).</summary>
    public SwinConfig Validate() => SwinLimits.Validate(this);

    /// <summary>The config as the metadata JSON.</summary>
    public string ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("family", Family);
            w.WriteString("name", Name);
            w.WriteNumber("image_size", ImageSize);
            w.WriteNumber("patch_size", PatchSize);
            w.WriteNumber("in_chans", InChannels);
            w.WriteNumber("num_classes", NumClasses);
            w.WriteNumber("window", Window);
            w.WriteString("key_layout", Layout == SwinKeyLayout.Legacy ? "legacy" : "timm09");
            w.WriteNumber("ln_eps", LayerNormEps);
            w.WriteStartArray("mean"); foreach (float v in Mean) w.WriteNumberValue(v); w.WriteEndArray();
            w.WriteStartArray("std"); foreach (float v in Std) w.WriteNumberValue(v); w.WriteEndArray();
            w.WriteNumber("crop_pct", CropPct);
            w.WriteStartArray("stages");
            foreach (var st in Stages)
            {
                w.WriteStartObject();
                w.WriteNumber("depth", st.Depth);
                w.WriteNumber("dim", st.Dim);
                w.WriteNumber("heads", st.Heads);
                w.WriteNumber("mlp", st.MlpHidden);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>Whether a metadata config JSON names the Swin family (without validating the rest).</summary>
    public static bool IsSwinJson(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("family", out var f)
                && f.ValueKind == JsonValueKind.String && f.GetString() == Family;
        }
        catch (JsonException) { return false; }
    }

    /// <summary>Parses and validates the metadata JSON; every field is range-checked.</summary>
    public static SwinConfig FromJson(string json)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new ModelException($"config metadata '{VitConfig.MetadataKey}' is not valid JSON: {e.Message}"); }
        using (doc)
        {
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object) throw new ModelException($"config metadata '{VitConfig.MetadataKey}' must be a JSON object");
            if (!r.TryGetProperty("family", out var fam) || fam.ValueKind != JsonValueKind.String || fam.GetString() != Family)
                throw new ModelException($"config metadata '{VitConfig.MetadataKey}' is not a Swin config (field 'family' must be \"{Family}\")");
            var stagesEl = VitConfig.Prop(r, "stages");
            if (stagesEl.ValueKind != JsonValueKind.Array) throw new ModelException("config field 'stages' must be an array");
            var stages = new List<SwinStage>();
            int i = 0;
            foreach (var st in stagesEl.EnumerateArray())
            {
                if (st.ValueKind != JsonValueKind.Object) throw new ModelException($"config field 'stages[{i}]' must be an object");
                stages.Add(new SwinStage(VitConfig.Int(st, "depth", null, $"stages[{i}].depth"), VitConfig.Int(st, "dim", null, $"stages[{i}].dim"),
                    VitConfig.Int(st, "heads", null, $"stages[{i}].heads"), VitConfig.Int(st, "mlp", null, $"stages[{i}].mlp")));
                i++;
            }
            var layout = r.TryGetProperty("key_layout", out var kl) ? kl.ValueKind == JsonValueKind.String ? kl.GetString() switch
            {
                "timm09" => SwinKeyLayout.Timm09,
                "legacy" => SwinKeyLayout.Legacy,
                var other => throw new ModelException($"config field 'key_layout' is '{other}'; expected \"timm09\" or \"legacy\""),
            } : throw new ModelException("config field 'key_layout' must be a string") : SwinKeyLayout.Timm09;
            return new SwinConfig(
                r.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : "swin",
                VitConfig.Int(r, "image_size"), VitConfig.Int(r, "patch_size"), VitConfig.Int(r, "in_chans", 3), VitConfig.Int(r, "num_classes"),
                VitConfig.Int(r, "window"), stages, layout, VitConfig.Float(r, "ln_eps", 1e-5f),
                r.TryGetProperty("mean", out _) ? VitConfig.Floats(r, "mean") : VitConfig.ImageNetMean,
                r.TryGetProperty("std", out _) ? VitConfig.Floats(r, "std") : VitConfig.ImageNetStd,
                VitConfig.Float(r, "crop_pct", 0.9f)).Validate();
        }
    }
}
