using VitSparse.Runtime.Models;

namespace VitSparse.Fuzz;

/// <summary>
/// The fuzzer's own, independent size arithmetic for a config (128-bit, cannot overflow): a config the
/// parser accepted whose sizes do not fit the runtime's int indices is a finding, and only small configs
/// are run through the kernels.
/// </summary>
public static class ConfigSizes
{
    public static void RequireSafe(VitConfig c)
    {
        Int128 grid = c.PatchSize > 0 ? c.ImageSize / c.PatchSize : 0;
        Int128 tokens = grid * grid + (c.Distilled ? 2 : 1);
        Check(tokens, "tokens");
        Check((Int128)c.InChannels * c.PatchSize * c.PatchSize, "in_chans·patch_size²");
        Check((Int128)c.InChannels * c.ImageSize * c.ImageSize, "in_chans·image_size²");
        for (int i = 0; i < c.Blocks.Count; i++)
        {
            var b = c.Blocks[i];
            Int128 qk = Sum(b.QkWidths), v = Sum(b.VWidths), qkv = 2 * qk + v;
            Check(qkv, $"blocks[{i}] 2·Σqk+Σv");
            Check(tokens * Max(qkv, b.MlpHidden, c.EmbedDim), $"blocks[{i}] activations per image");
            Check((Int128)c.EmbedDim * Max(qkv, b.MlpHidden), $"blocks[{i}] weights");
        }
    }

    /// <summary>
    /// Small enough to build from seeded weights and run in milliseconds even on a busy machine: at most
    /// 2^18 parameters and 2^24 multiply-adds (the tiny fixtures have about 10^5 and 2·10^6).
    /// </summary>
    public static bool IsTiny(VitConfig c)
    {
        if (c.PatchSize <= 0 || c.ImageSize > 512 || c.Blocks.Count > 16 || c.NumClasses > 4096) return false;
        Int128 grid = c.ImageSize / c.PatchSize, tokens = grid * grid + 2;
        Int128 parameters = (Int128)c.EmbedDim * (c.NumClasses + (Int128)c.InChannels * c.PatchSize * c.PatchSize), attention = 0;
        foreach (var b in c.Blocks)
        {
            Int128 qk = Sum(b.QkWidths), v = Sum(b.VWidths);
            parameters += (Int128)c.EmbedDim * (2 * qk + 2 * v + 2 * (Int128)b.MlpHidden);
            attention += tokens * tokens * (qk + v);
        }
        return tokens <= 4096 && parameters <= 1 << 18 && tokens * parameters + attention <= 1 << 24;
    }

    static Int128 Sum(int[] widths)
    {
        Int128 s = 0;
        foreach (int w in widths) s += w;
        return s;
    }

    static Int128 Max(Int128 a, Int128 b, Int128 c = default) => Int128.Max(a, Int128.Max(b, c));

    static void Check(Int128 value, string what)
    {
        if (value > int.MaxValue || value < 0)
            throw new FuzzFinding($"config accepted although {what} = {value} does not fit the runtime's int sizes");
    }
}
