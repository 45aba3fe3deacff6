namespace VitSparse.Runtime.Models;

/// <summary>
/// The documented range of every config field (README, "Limits"), and the one validation that makes every
/// later size computation safe. Ranges are far beyond any real ViT (ViT-22B: embed 6144, MLP 24576, 48
/// heads) yet small enough that, once each value is in range, every sum of widths and every tensor or
/// per-image activation element count is computed in checked 64-bit arithmetic and bounded by
/// <see cref="MaxElements"/>, so int-indexed buffers and unsafe kernels never see a wrapped size.
/// </summary>
public static class ConfigLimits
{
    /// <summary>Largest image_size.</summary>
    public const int MaxImageSize = 8192;
    /// <summary>Largest patch_size.</summary>
    public const int MaxPatchSize = 1024;
    /// <summary>Most input channels.</summary>
    public const int MaxInChannels = 16;
    /// <summary>Most tokens (patches plus class and distillation tokens).</summary>
    public const int MaxTokens = 16384;
    /// <summary>Widest residual stream.</summary>
    public const int MaxEmbedDim = 16384;
    /// <summary>Most blocks.</summary>
    public const int MaxDepth = 1024;
    /// <summary>Most heads per block.</summary>
    public const int MaxHeads = 1024;
    /// <summary>Widest Q/K or V head.</summary>
    public const int MaxHeadWidth = 4096;
    /// <summary>Widest FFN hidden layer.</summary>
    public const int MaxMlpHidden = 131072;
    /// <summary>Most classes.</summary>
    public const int MaxClasses = 1 << 20;
    /// <summary>Largest weight tensor in floats (8 GiB of F32); its bytes must be in the file anyway.</summary>
    public const long MaxElements = int.MaxValue;
    /// <summary>
    /// Largest activation of one image in floats (256 MiB of F32; SAM's ViT-H at 1024 px needs 21 M). The
    /// weights' memory is bounded by the file's size, but activations are not: without this, a 1 MB file
    /// (embed 1, FFN 131071, 16k tokens) would make a session allocate 8 GiB.
    /// </summary>
    public const long MaxActivationElements = 1 << 26;
    /// <summary>Range of crop_pct.</summary>
    public const float MinCropPct = 0.05f, MaxCropPct = 1f;
    /// <summary>Largest ln_eps (it must also be positive).</summary>
    public const float MaxLayerNormEps = 1f;
    /// <summary>Largest attention scale (it must also be positive).</summary>
    public const float MaxAttnScale = 1000f;
    /// <summary>Range of std, and largest |mean|.</summary>
    public const float MinStd = 1e-6f, MaxStd = 1e6f, MaxAbsMean = 1e6f;

    /// <summary>Σ widths of a block's heads, refused (not wrapped) when it does not fit an int.</summary>
    public static int Sum(ReadOnlySpan<int> widths, string field)
    {
        long s = 0;
        foreach (int w in widths) s += w;
        return ToInt(s, $"Σ{field}");
    }

    /// <summary>A checked 64-bit size as int; past int range it is a <see cref="ModelException"/> naming <paramref name="what"/>.</summary>
    public static int ToInt(long value, string what) =>
        value is >= int.MinValue and <= int.MaxValue ? (int)value : throw new ModelException($"config: {what} = {value} does not fit a 32-bit size");

    internal static void Check(bool ok, string field, string problem)
    {
        if (!ok) throw new ModelException($"config field '{field}': {problem}");
    }

    internal static void Range(long value, long min, long max, string field) =>
        Check(value >= min && value <= max, field, $"{value} is outside [{min}, {max}]");

    internal static void Range(float value, float min, float max, string field, bool minExclusive = false) =>
        Check(float.IsFinite(value) && (minExclusive ? value > min : value >= min) && value <= max, field,
            $"{value} is outside {(minExclusive ? "(" : "[")}{min}, {max}]");

    internal static VitConfig Validate(VitConfig c)
    {
        Range(c.PatchSize, 1, MaxPatchSize, "patch_size");
        Range(c.ImageSize, 1, MaxImageSize, "image_size");
        Check(c.ImageSize % c.PatchSize == 0, "image_size", $"{c.ImageSize} is not a multiple of patch_size {c.PatchSize}");
        Range(c.InChannels, 1, MaxInChannels, "in_chans");
        Range(c.EmbedDim, 1, MaxEmbedDim, "embed_dim");
        Range(c.NumClasses, 1, MaxClasses, "num_classes");
        Range(c.LayerNormEps, 0f, MaxLayerNormEps, "ln_eps", minExclusive: true);
        Range(c.CropPct, MinCropPct, MaxCropPct, "crop_pct");
        Check(c.Mean.Length == c.InChannels, "mean", $"needs {c.InChannels} values (one per input channel), got {c.Mean.Length}");
        Check(c.Std.Length == c.InChannels, "std", $"needs {c.InChannels} values (one per input channel), got {c.Std.Length}");
        for (int i = 0; i < c.InChannels; i++)
        {
            Range(c.Mean[i], -MaxAbsMean, MaxAbsMean, $"mean[{i}]");
            Range(c.Std[i], MinStd, MaxStd, $"std[{i}]");
        }
        long grid = c.ImageSize / c.PatchSize, tokens = grid * grid + (c.Distilled ? 2 : 1);
        Check(tokens <= MaxTokens, "image_size", $"{c.ImageSize}/{c.PatchSize} gives {tokens} tokens, more than the {MaxTokens} supported");
        Range(c.Blocks.Count, 1, MaxDepth, "blocks");

        long e = c.EmbedDim;
        Elements((long)c.EmbedDim * c.InChannels * c.PatchSize * c.PatchSize, "patch_embed.proj.weight");
        Activation(grid * grid * c.InChannels * c.PatchSize * c.PatchSize, "image_size");
        Activation(tokens * e, "embed_dim");
        Elements((long)c.NumClasses * e, "num_classes");
        for (int i = 0; i < c.Blocks.Count; i++)
        {
            var b = c.Blocks[i];
            string f = $"blocks[{i}]";
            Range(b.QkWidths.Length, 1, MaxHeads, $"{f}.qk");
            Check(b.VWidths.Length == b.QkWidths.Length, $"{f}.v", $"has {b.VWidths.Length} heads, qk has {b.QkWidths.Length}");
            for (int h = 0; h < b.QkWidths.Length; h++)
            {
                Range(b.QkWidths[h], 1, MaxHeadWidth, $"{f}.qk");
                Range(b.VWidths[h], 1, MaxHeadWidth, $"{f}.v");
            }
            Range(b.MlpHidden, 1, MaxMlpHidden, $"{f}.mlp");
            Range(b.AttnScale, 0f, MaxAttnScale, $"{f}.scale", minExclusive: true);
            // In range per head, so these sums are at most 2·1024·4096 + 1024·4096: no overflow from here on.
            long qkv = 2L * b.QkTotal + b.VTotal;
            Elements(qkv * e, $"{f}.qk");
            Activation(qkv * tokens, $"{f}.qk");
            Elements((long)b.VTotal * e, $"{f}.v");
            Elements((long)b.MlpHidden * e, $"{f}.mlp");
            Activation((long)b.MlpHidden * tokens, $"{f}.mlp");
        }
        return c;

        static void Elements(long n, string field) =>
            Check(n <= MaxElements, field, $"implies a tensor of {n} elements, more than the {MaxElements} supported");
        static void Activation(long n, string field) =>
            Check(n <= MaxActivationElements, field, $"implies an activation of {n} floats per image, more than the {MaxActivationElements} supported");
    }
}
