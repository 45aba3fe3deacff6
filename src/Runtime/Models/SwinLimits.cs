using static VitSparse.Runtime.Models.ConfigLimits;

namespace VitSparse.Runtime.Models;

/// <summary>
/// The documented range of every Swin config field (the DeiT ranges of <see cref="ConfigLimits"/> plus the
/// stage and window limits below). Once a config passes, every tensor and per-image activation size is
/// computed in checked 64-bit arithmetic and bounded, so int-indexed buffers and kernels never see a wrapped size.
/// </summary>
public static class SwinLimits
{
    /// <summary>Most stages (each halves the map).</summary>
    public const int MaxStages = 8;
    /// <summary>Widest window side.</summary>
    public const int MaxWindow = 64;

    internal static SwinConfig Validate(SwinConfig c)
    {
        Range(c.PatchSize, 1, ConfigLimits.MaxPatchSize, "patch_size");
        Range(c.ImageSize, 1, ConfigLimits.MaxImageSize, "image_size");
        Range(c.InChannels, 1, ConfigLimits.MaxInChannels, "in_chans");
        Range(c.NumClasses, 1, ConfigLimits.MaxClasses, "num_classes");
        Range(c.Window, 1, MaxWindow, "window");
        Range(c.LayerNormEps, 0f, ConfigLimits.MaxLayerNormEps, "ln_eps", minExclusive: true);
        Range(c.CropPct, ConfigLimits.MinCropPct, ConfigLimits.MaxCropPct, "crop_pct");
        Check(c.Mean.Length == c.InChannels, "mean", $"needs {c.InChannels} values (one per input channel), got {c.Mean.Length}");
        Check(c.Std.Length == c.InChannels, "std", $"needs {c.InChannels} values (one per input channel), got {c.Std.Length}");
        for (int i = 0; i < c.InChannels; i++)
        {
            Range(c.Mean[i], -ConfigLimits.MaxAbsMean, ConfigLimits.MaxAbsMean, $"mean[{i}]");
            Range(c.Std[i], ConfigLimits.MinStd, ConfigLimits.MaxStd, $"std[{i}]");
        }
        Range(c.Stages.Count, 1, MaxStages, "stages");
        // Every stage after the first merges 2×2 tokens, so the image must divide by patch·2^(stages−1).
        long factor = (long)c.PatchSize << (c.Stages.Count - 1);
        Check(c.ImageSize % factor == 0, "image_size",
            $"{c.ImageSize} is not divisible by patch_size × 2^(stages−1) = {c.PatchSize}×{1L << (c.Stages.Count - 1)} = {factor} (the patch and merge factors)");
        long res0 = c.ImageSize / c.PatchSize;
        Check(res0 * res0 <= ConfigLimits.MaxActivationElements, "image_size", $"{c.ImageSize}/{c.PatchSize} gives {res0 * res0} tokens, too many");
        Activation(res0 * res0 * c.PatchDim, "image_size");
        Elements((long)c.EmbedDim * c.PatchDim, "patch_embed.proj.weight");
        long blocks = 0;
        for (int s = 0; s < c.Stages.Count; s++)
        {
            var st = c.Stages[s];
            string f = $"stages[{s}]";
            Range(st.Depth, 1, ConfigLimits.MaxDepth, $"{f}.depth");
            Range(st.Dim, 1, ConfigLimits.MaxEmbedDim, $"{f}.dim");
            Range(st.Heads, 1, ConfigLimits.MaxHeads, $"{f}.heads");
            Check(st.Dim % st.Heads == 0, $"{f}.heads", $"{st.Heads} heads do not divide width {st.Dim} into equal heads");
            Range(st.MlpHidden, 1, ConfigLimits.MaxMlpHidden, $"{f}.mlp");
            blocks += st.Depth;
            long padded = c.PaddedResolution(s), tokens = padded * padded, d = st.Dim;
            Elements(3 * d * d, $"{f}.dim");
            Elements(st.MlpHidden * d, $"{f}.mlp");
            Elements((long)c.BiasTableRows(s) * st.Heads, $"{f}.heads");
            Activation(3 * d * tokens, $"{f}.dim");
            Activation(st.MlpHidden * tokens, $"{f}.mlp");
            if (s > 0)
            {
                long prev = c.Stages[s - 1].Dim, prevRes = c.Resolution(s - 1);
                Elements(4 * prev * d, $"{f}.dim");
                Activation(4 * prev * prevRes * prevRes / 4, $"{f}.dim");
            }
        }
        Range(blocks, 1, ConfigLimits.MaxDepth, "stages (total depth)");
        Elements((long)c.NumClasses * c.NumFeatures, "num_classes");
        return c;

        static void Elements(long n, string field) =>
            Check(n <= ConfigLimits.MaxElements, field, $"implies a tensor of {n} elements, more than the {ConfigLimits.MaxElements} supported");
        static void Activation(long n, string field) =>
            Check(n <= ConfigLimits.MaxActivationElements, field, $"implies an activation of {n} floats per image, more than the {ConfigLimits.MaxActivationElements} supported");
    }
}
