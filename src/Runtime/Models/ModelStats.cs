namespace VitSparse.Runtime.Models;

/// <summary>Multiply-accumulates and parameters of one layer for one image.</summary>
public sealed record LayerStat(string Name, string Shape, long Macs, long Params);

/// <summary>
/// MACs and parameters of a (ragged) DeiT, counted the way timm/fvcore and the SNP paper count them:
/// the patch embedding, every linear, both attention matmuls (Q·Kᵀ and A·V) and the head(s); norms,
/// softmax and GELU are not MACs.
/// </summary>
public static class ModelStats
{
    /// <summary>Parameters and MACs per image of every layer, as timm counts them.</summary>
    public static IReadOnlyList<LayerStat> Layers(VitConfig c)
    {
        long e = c.EmbedDim, n = c.Tokens;
        var list = new List<LayerStat>
        {
            new("patch_embed", $"{c.PatchTokens}×{c.PatchDim}→{e}", (long)c.PatchTokens * c.PatchDim * e, c.PatchDim * e + e),
            new("tokens+pos_embed", $"{c.PrefixTokens}+{n}×{e}", 0, c.PrefixTokens * e + n * e),
        };
        for (int i = 0; i < c.Depth; i++)
        {
            var b = c.Blocks[i];
            long qkv = b.QkvRows, qk = b.QkTotal, v = b.VTotal, f = b.MlpHidden;
            list.Add(new($"blocks.{i}.norm1", $"{e}", 0, 2 * e));
            list.Add(new($"blocks.{i}.attn.qkv", $"{n}×{e}→{qkv}", n * e * qkv, e * qkv + qkv));
            list.Add(new($"blocks.{i}.attn.qk", $"{b.Heads}h·{n}×[{Widths(b.QkWidths)}]×{n}", n * n * qk, 0));
            list.Add(new($"blocks.{i}.attn.av", $"{b.Heads}h·{n}×{n}×[{Widths(b.VWidths)}]", n * n * v, 0));
            list.Add(new($"blocks.{i}.attn.proj", $"{n}×{v}→{e}", n * v * e, v * e + e));
            list.Add(new($"blocks.{i}.norm2", $"{e}", 0, 2 * e));
            list.Add(new($"blocks.{i}.mlp.fc1", $"{n}×{e}→{f}", n * e * f, e * f + f));
            list.Add(new($"blocks.{i}.mlp.fc2", $"{n}×{f}→{e}", n * f * e, f * e + e));
        }
        list.Add(new("norm", $"{e}", 0, 2 * e));
        list.Add(new("head", $"{e}→{c.NumClasses}", e * c.NumClasses, e * c.NumClasses + c.NumClasses));
        if (c.Distilled) list.Add(new("head_dist", $"{e}→{c.NumClasses}", e * c.NumClasses, e * c.NumClasses + c.NumClasses));
        return list;
    }

    static string Widths(int[] w) => w.Distinct().Count() == 1 ? $"{w.Length}×{w[0]}" : string.Join(",", w);

    /// <summary>MACs per image of the whole model.</summary>
    public static long Macs(VitConfig c) => Layers(c).Sum(l => l.Macs);
    /// <summary>Parameters of the whole model.</summary>
    public static long Params(VitConfig c) => Layers(c).Sum(l => l.Params);
}
