namespace VitSparse.Runtime.Models;

/// <summary>
/// The timm tensor names and the shapes a config implies (methods.md §4). A pruned model keeps timm's
/// names: its fused qkv simply has rows [Σdqk of q | Σdqk of k | Σdv of v], head-major within each group.
/// </summary>
public static class VitLayout
{
    /// <summary>Whether a tensor name is the weight of a linear layer (the ones a sparse format may store).</summary>
    public static bool IsLinearWeight(string name) => name == "patch_embed.proj.weight" || name == "head.weight" || name == "head_dist.weight" ||
        (name.StartsWith("blocks.", StringComparison.Ordinal) && (name.EndsWith(".attn.qkv.weight", StringComparison.Ordinal) || name.EndsWith(".attn.proj.weight", StringComparison.Ordinal)
            || name.EndsWith(".mlp.fc1.weight", StringComparison.Ordinal) || name.EndsWith(".mlp.fc2.weight", StringComparison.Ordinal)));

    /// <summary>Every tensor the config needs, by timm name, with its shape.</summary>
    public static Dictionary<string, long[]> ExpectedShapes(VitConfig c)
    {
        long e = c.EmbedDim;
        var s = new Dictionary<string, long[]>(StringComparer.Ordinal)
        {
            ["patch_embed.proj.weight"] = [e, c.InChannels, c.PatchSize, c.PatchSize],
            ["patch_embed.proj.bias"] = [e],
            ["cls_token"] = [1, 1, e],
            ["pos_embed"] = [1, c.Tokens, e],
            ["norm.weight"] = [e],
            ["norm.bias"] = [e],
            ["head.weight"] = [c.NumClasses, e],
            ["head.bias"] = [c.NumClasses],
        };
        if (c.Distilled)
        {
            s["dist_token"] = [1, 1, e];
            s["head_dist.weight"] = [c.NumClasses, e];
            s["head_dist.bias"] = [c.NumClasses];
        }
        for (int i = 0; i < c.Depth; i++)
        {
            var b = c.Blocks[i];
            string p = $"blocks.{i}.";
            s[p + "norm1.weight"] = [e]; s[p + "norm1.bias"] = [e];
            s[p + "attn.qkv.weight"] = [b.QkvRows, e]; s[p + "attn.qkv.bias"] = [b.QkvRows];
            s[p + "attn.proj.weight"] = [e, b.VTotal]; s[p + "attn.proj.bias"] = [e];
            s[p + "norm2.weight"] = [e]; s[p + "norm2.bias"] = [e];
            s[p + "mlp.fc1.weight"] = [b.MlpHidden, e]; s[p + "mlp.fc1.bias"] = [b.MlpHidden];
            s[p + "mlp.fc2.weight"] = [e, b.MlpHidden]; s[p + "mlp.fc2.bias"] = [e];
        }
        return s;
    }

    /// <summary>
    /// A config for a checkpoint without our metadata (a plain timm DeiT), from its tensor shapes. Head count
    /// cannot be read from a fused qkv, so it comes from a named architecture when given, else from the DeiT
    /// convention of 64-wide heads.
    /// </summary>
    public static VitConfig Infer(ITensorSource src, VitConfig? arch)
    {
        long[] Need(string name, int rank)
        {
            if (!src.Contains(name)) throw new ModelException($"{src.Description}: missing tensor '{name}' (cannot infer the architecture)", name);
            var sh = src.Shape(name);
            if (sh.Length != rank) throw new ModelException($"{src.Description}: tensor '{name}' has shape [{string.Join(",", sh)}], expected rank {rank}", name);
            return sh;
        }
        // Shapes are 64-bit in the file; anything past the config limits is refused here, before a narrowing cast.
        int Dim(string name, long[] shape, int axis, int max)
        {
            long v = shape[axis];
            return v >= 1 && v <= max ? (int)v
                : throw new ModelException($"{src.Description}: tensor '{name}' has shape [{string.Join(",", shape)}]: dimension {axis} = {v} is outside [1, {max}]", name);
        }
        var pe = Need("patch_embed.proj.weight", 4);
        int embed = Dim("patch_embed.proj.weight", pe, 0, ConfigLimits.MaxEmbedDim);
        int inCh = Dim("patch_embed.proj.weight", pe, 1, ConfigLimits.MaxInChannels);
        int patch = Dim("patch_embed.proj.weight", pe, 2, ConfigLimits.MaxPatchSize);
        bool distilled = src.Contains("dist_token");
        int tokens = Dim("pos_embed", Need("pos_embed", 3), 1, ConfigLimits.MaxTokens);
        int patchTokens = tokens - (distilled ? 2 : 1);
        int grid = (int)Math.Round(Math.Sqrt(Math.Max(patchTokens, 0)));
        if (grid * grid != patchTokens)
            throw new ModelException($"{src.Description}: pos_embed has {tokens} tokens, which is not a square patch grid plus {(distilled ? 2 : 1)}", "pos_embed");
        int classes = Dim("head.weight", Need("head.weight", 2), 0, ConfigLimits.MaxClasses);
        int depth = 0;
        while (depth < ConfigLimits.MaxDepth && src.Contains($"blocks.{depth}.attn.qkv.weight")) depth++;
        if (depth == 0) throw new ModelException($"{src.Description}: no transformer blocks (blocks.0.attn.qkv.weight missing)", "blocks.0.attn.qkv.weight");
        var blocks = new List<BlockConfig>();
        for (int i = 0; i < depth; i++)
        {
            int rows = Dim($"blocks.{i}.attn.qkv.weight", Need($"blocks.{i}.attn.qkv.weight", 2), 0, 3 * ConfigLimits.MaxHeads * ConfigLimits.MaxHeadWidth);
            int hidden = Dim($"blocks.{i}.mlp.fc1.weight", Need($"blocks.{i}.mlp.fc1.weight", 2), 0, ConfigLimits.MaxMlpHidden);
            if (rows % 3 != 0) throw new ModelException($"{src.Description}: blocks.{i}.attn.qkv.weight has {rows} rows; a checkpoint without '{VitConfig.MetadataKey}' metadata must have equal q, k and v widths", $"blocks.{i}.attn.qkv.weight");
            int width = rows / 3;
            int heads = arch != null && i < arch.Depth ? arch.Blocks[i].Heads : Math.Max(1, width / 64);
            if (width % heads != 0) throw new ModelException($"{src.Description}: blocks.{i} attention width {width} does not split into {heads} equal heads; pass --arch", $"blocks.{i}.attn.qkv.weight");
            float scale = arch != null && i < arch.Depth ? arch.Blocks[i].AttnScale : 1f / MathF.Sqrt(width / heads);
            blocks.Add(new BlockConfig(Enumerable.Repeat(width / heads, heads).ToArray(), Enumerable.Repeat(width / heads, heads).ToArray(), hidden, scale));
        }
        var config = new VitConfig(arch?.Name ?? "vit", grid * patch, patch, inCh, embed, classes, distilled, arch?.LayerNormEps ?? 1e-6f, blocks,
            arch?.Mean ?? VitConfig.ImageNetMean, arch?.Std ?? VitConfig.ImageNetStd, arch?.CropPct ?? 0.875f);
        try { return config.Validate(); }
        catch (ModelException e) { throw new ModelException($"{src.Description}: {e.Message} (inferred from tensor shapes)", e.Tensor); }
    }
}
