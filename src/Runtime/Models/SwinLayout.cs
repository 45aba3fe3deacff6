namespace VitSparse.Runtime.Models;

/// <summary>
/// The timm tensor names of a Swin and the shapes a config implies, in both checkpoint layouts (methods.md §4).
/// The layouts differ only in names: a merge between stages s−1 and s is `layers.{s}.downsample` (timm ≥ 0.9,
/// start of stage s) or `layers.{s−1}.downsample` (timm 0.6 / MS, end of stage s−1); the head is `head.fc` or `head`.
/// `relative_position_index` and `attn_mask` are recomputed, never read.
/// </summary>
public static class SwinLayout
{
    /// <summary>Prefix of block b of stage s.</summary>
    public static string Block(int s, int b) => $"layers.{s}.blocks.{b}.";

    /// <summary>Prefix of the patch merging that feeds stage <paramref name="s"/> (s ≥ 1) in the config's key layout.</summary>
    public static string Merge(SwinConfig c, int s) => c.Layout == SwinKeyLayout.Legacy ? $"layers.{s - 1}.downsample." : $"layers.{s}.downsample.";

    /// <summary>Prefix of the classifier: "head.fc" or "head".</summary>
    public static string Head(SwinConfig c) => c.Layout == SwinKeyLayout.Legacy ? "head" : "head.fc";

    /// <summary>Whether a tensor name is the weight of a linear layer (the ones a sparse format may store).</summary>
    public static bool IsLinearWeight(string name) => name is "patch_embed.proj.weight" or "head.weight" or "head.fc.weight" ||
        (name.StartsWith("layers.", StringComparison.Ordinal) && (name.EndsWith(".attn.qkv.weight", StringComparison.Ordinal)
            || name.EndsWith(".attn.proj.weight", StringComparison.Ordinal) || name.EndsWith(".mlp.fc1.weight", StringComparison.Ordinal)
            || name.EndsWith(".mlp.fc2.weight", StringComparison.Ordinal) || name.EndsWith(".downsample.reduction.weight", StringComparison.Ordinal)));

    /// <summary>Parameters of the config: every tensor's elements (timm's count; bias tables included).</summary>
    public static long Params(SwinConfig c) => ExpectedShapes(c).Values.Sum(s => s.Aggregate(1L, (a, b) => a * b));

    /// <summary>Every tensor the config needs, by timm name (in the config's key layout), with its shape.</summary>
    public static Dictionary<string, long[]> ExpectedShapes(SwinConfig c)
    {
        long e = c.EmbedDim;
        var s = new Dictionary<string, long[]>(StringComparer.Ordinal)
        {
            ["patch_embed.proj.weight"] = [e, c.InChannels, c.PatchSize, c.PatchSize],
            ["patch_embed.proj.bias"] = [e],
            ["patch_embed.norm.weight"] = [e],
            ["patch_embed.norm.bias"] = [e],
        };
        for (int st = 0; st < c.Stages.Count; st++)
        {
            var stage = c.Stages[st];
            long d = stage.Dim;
            if (st > 0)
            {
                long prev4 = 4L * c.Stages[st - 1].Dim;
                string m = Merge(c, st);
                s[m + "norm.weight"] = [prev4];
                s[m + "norm.bias"] = [prev4];
                s[m + "reduction.weight"] = [d, prev4];
            }
            for (int b = 0; b < stage.Depth; b++)
            {
                string p = Block(st, b);
                s[p + "norm1.weight"] = [d]; s[p + "norm1.bias"] = [d];
                s[p + "attn.relative_position_bias_table"] = [c.BiasTableRows(st), stage.Heads];
                s[p + "attn.qkv.weight"] = [3 * d, d]; s[p + "attn.qkv.bias"] = [3 * d];
                s[p + "attn.proj.weight"] = [d, d]; s[p + "attn.proj.bias"] = [d];
                s[p + "norm2.weight"] = [d]; s[p + "norm2.bias"] = [d];
                s[p + "mlp.fc1.weight"] = [stage.MlpHidden, d]; s[p + "mlp.fc1.bias"] = [stage.MlpHidden];
                s[p + "mlp.fc2.weight"] = [d, stage.MlpHidden]; s[p + "mlp.fc2.bias"] = [d];
            }
        }
        long f = c.NumFeatures;
        s["norm.weight"] = [f];
        s["norm.bias"] = [f];
        s[Head(c) + ".weight"] = [c.NumClasses, f];
        s[Head(c) + ".bias"] = [c.NumClasses];
        return s;
    }

    /// <summary>
    /// The key layout of a Swin checkpoint, from its head and merge names; keys of neither layout (or of both)
    /// are a <see cref="ModelException"/> naming the source.
    /// </summary>
    public static SwinKeyLayout DetectLayout(ITensorSource src)
    {
        bool fc = src.Contains("head.fc.weight"), plain = src.Contains("head.weight");
        bool mergeAtEnd0 = src.Contains("layers.0.downsample.reduction.weight");
        bool stage1 = src.Contains("layers.1.blocks.0.attn.qkv.weight");
        string? problem =
            fc && plain ? "both 'head.fc.weight' and 'head.weight'"
            : !fc && !plain ? "neither 'head.fc.weight' nor 'head.weight'"
            : fc && mergeAtEnd0 ? "'head.fc.weight' (timm ≥ 0.9) with 'layers.0.downsample' (a merge at the end of stage 0, timm 0.6)"
            : plain && stage1 && !mergeAtEnd0 ? "'head.weight' (timm 0.6) without 'layers.0.downsample.reduction.weight'"
            : null;
        if (problem == null) return fc ? SwinKeyLayout.Timm09 : SwinKeyLayout.Legacy;
        throw new ModelException($"{src.Description}: keys of neither Swin layout: found {problem}; expected timm ≥ 0.9 ('layers.{{s}}.downsample' for s ≥ 1, 'head.fc.*') or timm 0.6/MS ('layers.{{s}}.downsample' for s < last, 'head.*')",
            fc ? "head.fc.weight" : plain ? "head.weight" : null);
    }

    /// <summary>
    /// A config for a checkpoint without our metadata (a plain timm Swin), from its tensor shapes: widths from the
    /// qkv weights, heads from the bias tables, the window from stage 0's table. The image size (not in the
    /// weights) comes from <paramref name="arch"/> when given, else 224.
    /// </summary>
    public static SwinConfig Infer(ITensorSource src, SwinConfig? arch)
    {
        long[] Need(string name, int rank)
        {
            if (!src.Contains(name)) throw new ModelException($"{src.Description}: missing tensor '{name}' (cannot infer the Swin architecture)", name);
            var sh = src.Shape(name);
            if (sh.Length != rank) throw new ModelException($"{src.Description}: tensor '{name}' has shape [{string.Join(",", sh)}], expected rank {rank}", name);
            return sh;
        }
        int Dim(string name, long[] shape, int axis, int max)
        {
            long v = shape[axis];
            return v >= 1 && v <= max ? (int)v
                : throw new ModelException($"{src.Description}: tensor '{name}' has shape [{string.Join(",", shape)}]: dimension {axis} = {v} is outside [1, {max}]", name);
        }
        var layout = DetectLayout(src);
        var pe = Need("patch_embed.proj.weight", 4);
        int inCh = Dim("patch_embed.proj.weight", pe, 1, ConfigLimits.MaxInChannels);
        int patch = Dim("patch_embed.proj.weight", pe, 2, ConfigLimits.MaxPatchSize);
        var stages = new List<SwinStage>();
        int window = arch?.Window ?? 0;
        for (int s = 0; s < SwinLimits.MaxStages && src.Contains(Block(s, 0) + "attn.qkv.weight"); s++)
        {
            int depth = 0;
            while (depth < ConfigLimits.MaxDepth && src.Contains(Block(s, depth) + "attn.qkv.weight")) depth++;
            string qkv = Block(s, 0) + "attn.qkv.weight", table = Block(s, 0) + "attn.relative_position_bias_table", fc1 = Block(s, 0) + "mlp.fc1.weight";
            int dim = Dim(qkv, Need(qkv, 2), 1, ConfigLimits.MaxEmbedDim);
            var tableShape = Need(table, 2);
            int heads = Dim(table, tableShape, 1, ConfigLimits.MaxHeads);
            int hidden = Dim(fc1, Need(fc1, 2), 0, ConfigLimits.MaxMlpHidden);
            if (s == 0 && window == 0)
            {
                int side = (int)Math.Round(Math.Sqrt(tableShape[0]));
                if (side * side != tableShape[0] || side % 2 == 0)
                    throw new ModelException($"{src.Description}: tensor '{table}' has {tableShape[0]} rows, not (2·window − 1)² for any window", table);
                window = (side + 1) / 2;
            }
            stages.Add(new SwinStage(depth, dim, heads, hidden));
        }
        if (stages.Count == 0) throw new ModelException($"{src.Description}: no Swin blocks ('layers.0.blocks.0.attn.qkv.weight' missing)", "layers.0.blocks.0.attn.qkv.weight");
        string head = layout == SwinKeyLayout.Legacy ? "head.weight" : "head.fc.weight";
        int classes = Dim(head, Need(head, 2), 0, ConfigLimits.MaxClasses);
        var config = new SwinConfig(arch?.Name ?? "swin", arch?.ImageSize ?? 224, patch, inCh, classes, window, stages, layout,
            arch?.LayerNormEps ?? 1e-5f, arch?.Mean ?? VitConfig.ImageNetMean, arch?.Std ?? VitConfig.ImageNetStd, arch?.CropPct ?? 0.9f);
        try { return config.Validate(); }
        catch (ModelException e) { throw new ModelException($"{src.Description}: {e.Message} (inferred from tensor shapes)", e.Tensor); }
    }
}
