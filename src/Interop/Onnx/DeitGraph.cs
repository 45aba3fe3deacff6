using VitSparse.Runtime.Models;
using static VitSparse.Interop.Onnx.OnnxGraphBuilder;

namespace VitSparse.Interop.Onnx;

/// <summary>
/// The DeiT forward pass of <see cref="VitSparse.Runtime.InferenceSession"/> as ONNX nodes, value by value.
/// Shapes in comments: B batch, N tokens, P patch tokens, E embed width.
/// </summary>
internal static class DeitGraph
{
    /// <summary>Writes the graph from "images" to "logits"; returns how many blocks were uniform or sliced, and the sliced heads.</summary>
    public static (int Uniform, int Sliced, int SlicedHeads) Write(OnnxGraphBuilder g, VitConfig c, ITensorSource w)
    {
        int e = c.EmbedDim, prefix = c.PrefixTokens;

        // Patch embedding: a strided convolution [B,E,g,g] → [B,P,E].
        string conv = g.Node("Conv", "patch_embed.conv", ["images",
            g.Floats("patch_embed.proj.weight", w.Floats("patch_embed.proj.weight"), e, c.InChannels, c.PatchSize, c.PatchSize),
            g.Floats("patch_embed.proj.bias", w.Floats("patch_embed.proj.bias"), e)],
            Ints("kernel_shape", c.PatchSize, c.PatchSize), Ints("strides", c.PatchSize, c.PatchSize));
        string flat = g.Node("Reshape", "patch_embed.flat", [conv, g.Int64s("shape_patch_grid", 0, e, c.PatchTokens)]);
        string patches = g.Node("Transpose", "patch_embed.tokens", [flat], Ints("perm", 0, 2, 1));

        // Tokens: class (and distillation) token plus its position, broadcast over the batch; patches plus theirs.
        var pos = w.Floats("pos_embed");
        var prefixTokens = new float[prefix * e];
        var cls = w.Floats("cls_token");
        for (int j = 0; j < e; j++) prefixTokens[j] = cls[j] + pos[j];
        if (c.Distilled)
        {
            var dist = w.Floats("dist_token");
            for (int j = 0; j < e; j++) prefixTokens[e + j] = dist[j] + pos[e + j];
        }
        string batchDim = g.Node("Shape", "batch_dim", ["images"], Int("start", 0), Int("end", 1));
        string prefixShape = g.Node("Concat", "prefix_shape", [batchDim, g.Int64s("prefix_rows", prefix, e)], Int("axis", 0));
        string prefixed = g.Node("Expand", "prefix_tokens", [g.Floats("prefix_tokens_plus_pos", prefixTokens, 1, prefix, e), prefixShape]);
        string patchPos = g.Floats("patch_pos_embed", pos[(prefix * e)..], 1, c.PatchTokens, e);
        string x = g.Node("Concat", "tokens", [prefixed, g.Node("Add", "patch_tokens", [patches, patchPos])], Int("axis", 1));

        int uniform = 0, sliced = 0, slicedHeads = 0;
        for (int i = 0; i < c.Depth; i++)
        {
            var b = c.Blocks[i];
            string p = $"blocks.{i}.";
            string h = LayerNorm(g, w, x, p + "norm1", c.LayerNormEps);
            string qkv = Linear(g, w, h, p + "attn.qkv", b.QkvRows, e);
            bool even = b.QkWidths.All(q => q == b.QkWidths[0]) && b.VWidths.All(v => v == b.VWidths[0]);
            string attn = even ? UniformAttention(g, qkv, b, p) : SlicedAttention(g, qkv, b, p);
            if (even) uniform++; else { sliced++; slicedHeads += b.Heads; }
            x = g.Node("Add", p + "residual1", [x, Linear(g, w, attn, p + "attn.proj", e, b.VTotal)]);
            h = LayerNorm(g, w, x, p + "norm2", c.LayerNormEps);
            string hidden = Gelu(g, Linear(g, w, h, p + "mlp.fc1", b.MlpHidden, e), p + "mlp.gelu");
            x = g.Node("Add", p + "residual2", [x, Linear(g, w, hidden, p + "mlp.fc2", e, b.MlpHidden)]);
        }

        // Only the class (and distillation) tokens reach the heads, as in the runtime: [B,prefix,E] normalised, then one row per head.
        string prefixRows = g.Node("Slice", "prefix_rows_out", [x, g.Int64s("prefix_start", 0), g.Int64s("prefix_end", prefix), g.Int64s("prefix_axis", 1)]);
        string normed = LayerNorm(g, w, prefixRows, "norm", c.LayerNormEps);
        string Row(int index) => g.Node("Gather", index == 0 ? "cls_row" : "dist_row", [normed, g.Int64Scalar(index == 0 ? "index_cls" : "index_dist", index)], Int("axis", 1));
        if (!c.Distilled)
        {
            Linear(g, w, Row(0), "head", c.NumClasses, e, "logits");
            return (uniform, sliced, slicedHeads);
        }
        string head = Linear(g, w, Row(0), "head", c.NumClasses, e);
        string headDist = Linear(g, w, Row(1), "head_dist", c.NumClasses, e);
        // (head + head_dist) / 2, as the runtime averages them.
        g.Node("Mul", "logits", [g.Node("Add", "heads_sum", [head, headDist]), g.Scalar("half", 0.5f)]);
        return (uniform, sliced, slicedHeads);
    }

    /// <summary>x·Wᵀ + b for a timm linear layer (weight [n, k], read dense whatever its storage).</summary>
    static string Linear(OnnxGraphBuilder g, ITensorSource w, string x, string layer, int n, int k, string? output = null)
    {
        string wt = g.Transposed(layer + ".weight_t", w.Floats(layer + ".weight"), n, k);
        string bias = g.Floats(layer + ".bias", w.Floats(layer + ".bias"), n);
        return g.Node("Add", output ?? layer, [g.Node("MatMul", layer + ".matmul", [x, wt]), bias]);
    }

    /// <summary>LayerNormalization over the last axis (opset 17).</summary>
    static string LayerNorm(OnnxGraphBuilder g, ITensorSource w, string x, string norm, float eps)
    {
        var weight = w.Floats(norm + ".weight");
        string scale = g.Floats(norm + ".weight", weight, weight.Length);
        var b = w.Floats(norm + ".bias");
        string bias = g.Floats(norm + ".bias", b, b.Length);
        return g.Node("LayerNormalization", norm, [x, scale, bias], Int("axis", -1), Float("epsilon", eps));
    }

    /// <summary>Exact GELU, x·½·(1 + erf(x/√2)), as the runtime computes it (ONNX Gelu needs opset 20).</summary>
    static string Gelu(OnnxGraphBuilder g, string x, string name)
    {
        string erf = g.Node("Erf", name + ".erf", [g.Node("Div", name + ".scaled", [x, g.Scalar(name + ".sqrt2", MathF.Sqrt(2f))])]);
        string onePlus = g.Node("Add", name + ".one_plus", [erf, g.Scalar(name + ".one", 1f)]);
        return g.Node("Mul", name, [g.Node("Mul", name + ".x_half", [x, g.Scalar(name + ".half", 0.5f)]), onePlus]);
    }

    /// <summary>A block whose heads all have one Q/K width and one V width: [B,N,H·d] → [B,H,N,d], one batched MatMul per side.</summary>
    static string UniformAttention(OnnxGraphBuilder g, string qkv, BlockConfig b, string p)
    {
        int heads = b.Heads, dq = b.QkWidths[0], dv = b.VWidths[0];
        string Part(string what, int start, int width, int d, long[] perm) =>
            g.Node("Transpose", p + $"attn.{what}_heads", [g.Node("Reshape", p + $"attn.{what}_split", [Slice(g, qkv, start, width, p + $"attn.{what}"),
                g.Int64s(p + $"attn.{what}_shape", 0, 0, heads, d)])], Ints("perm", perm));
        string q = Part("q", 0, b.QkTotal, dq, [0, 2, 1, 3]);
        string kT = Part("k", b.QkTotal, b.QkTotal, dq, [0, 2, 3, 1]);
        string v = Part("v", 2 * b.QkTotal, b.VTotal, dv, [0, 2, 1, 3]);
        string o = Scores(g, q, kT, v, b.AttnScale, p + "attn");
        string merged = g.Node("Transpose", p + "attn.merge", [o], Ints("perm", 0, 2, 1, 3));
        return g.Node("Reshape", p + "attn.out", [merged, g.Int64s(p + "attn.out_shape", 0, 0, b.VTotal)]);
    }

    /// <summary>A block with uneven heads: each head's Q, K and V are Slices of their exact widths, attended separately, concatenated.</summary>
    static string SlicedAttention(OnnxGraphBuilder g, string qkv, BlockConfig b, string p)
    {
        var outputs = new string[b.Heads];
        int vOffset = 2 * b.QkTotal;
        for (int h = 0; h < b.Heads; h++)
        {
            string name = p + $"attn.head{h}";
            int qOffset = b.QkOffset(h);
            string q = Slice(g, qkv, qOffset, b.QkWidths[h], name + ".q");
            string kT = g.Node("Transpose", name + ".k_t", [Slice(g, qkv, b.QkTotal + qOffset, b.QkWidths[h], name + ".k")], Ints("perm", 0, 2, 1));
            string v = Slice(g, qkv, vOffset, b.VWidths[h], name + ".v");
            vOffset += b.VWidths[h];
            outputs[h] = Scores(g, q, kT, v, b.AttnScale, name);
        }
        return b.Heads == 1 ? outputs[0] : g.Node("Concat", p + "attn.out", outputs, Int("axis", -1));
    }

    /// <summary>softmax(Q·Kᵀ·scale)·V.</summary>
    static string Scores(OnnxGraphBuilder g, string q, string kT, string v, float scale, string name)
    {
        string s = g.Node("Mul", name + ".scores", [g.Node("MatMul", name + ".qk", [q, kT]), g.Scalar(name + ".scale", scale)]);
        return g.Node("MatMul", name + ".out", [g.Node("Softmax", name + ".probs", [s], Int("axis", -1)), v]);
    }

    /// <summary>Columns [start, start+width) of the last axis.</summary>
    static string Slice(OnnxGraphBuilder g, string x, int start, int width, string name) =>
        g.Node("Slice", name, [x, g.Int64s(name + ".start", start), g.Int64s(name + ".end", start + width), g.Int64s(name + ".axis", -1)]);
}
