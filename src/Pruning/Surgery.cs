using VitSparse.Runtime;
using VitSparse.Runtime.Models;

namespace VitSparse.Pruning;

/// <summary>
/// Graph-aware structural pruning of a DeiT: every removed unit is cut out of every tensor it touches,
/// so the result is a smaller dense model (methods.md §1.1):
/// a Q/K pair — row i of the head's q slice and of its k slice (with biases); a V neuron — its v row and
/// bias and the matching input column of attn.proj; an FFN neuron — its fc1 row and bias and fc2 column;
/// a residual channel — patch-embed row, cls/dist token and pos-embed entry, every norm, the input column
/// of every qkv, fc1 and head, the output row of every proj and fc2. Widths stay exactly as chosen and the
/// attention scale is kept.
/// </summary>
public static class Surgery
{
    /// <summary>Physically removes the units <paramref name="plan"/> drops from every tensor that holds them; returns the compact model.</summary>
    public static DenseTensors Apply(DenseTensors model, PruningPlan plan)
    {
        var c = model.Config;
        Validate(c, plan);
        var res = plan.ResidualKeep;
        var t = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var pe = model["patch_embed.proj.weight"];
        t["patch_embed.proj.weight"] = new Tensor([res.Length, pe.Shape[1], pe.Shape[2], pe.Shape[3]], Rows(pe, res));
        t["patch_embed.proj.bias"] = Vec(model["patch_embed.proj.bias"], res);
        t["cls_token"] = new Tensor([1, 1, res.Length], Cols(model["cls_token"].Data, 1, c.EmbedDim, res));
        if (c.Distilled) t["dist_token"] = new Tensor([1, 1, res.Length], Cols(model["dist_token"].Data, 1, c.EmbedDim, res));
        t["pos_embed"] = new Tensor([1, c.Tokens, res.Length], Cols(model["pos_embed"].Data, c.Tokens, c.EmbedDim, res));

        var blocks = new List<BlockConfig>();
        for (int i = 0, outIndex = 0; i < c.Depth; i++)
        {
            var bp = plan.Blocks[i];
            if (bp.Removed) continue;
            var b = c.Blocks[i];
            string p = $"blocks.{i}.", q = $"blocks.{outIndex}.";
            var heads = Enumerable.Range(0, b.Heads).Where(h => bp.QkKeep[h].Length > 0).ToArray();
            int qkTotal = b.QkTotal;
            // qkv rows to keep: q pairs of kept heads, then the same pairs' k rows, then kept v rows.
            var qRows = new List<int>();
            var vRows = new List<int>();
            int qOff = 0, vOff = 0;
            var qOffsets = new int[b.Heads];
            var vOffsets = new int[b.Heads];
            for (int h = 0; h < b.Heads; h++) { qOffsets[h] = qOff; vOffsets[h] = vOff; qOff += b.QkWidths[h]; vOff += b.VWidths[h]; }
            foreach (int h in heads) qRows.AddRange(bp.QkKeep[h].Select(x => qOffsets[h] + x));
            foreach (int h in heads) vRows.AddRange(bp.VKeep[h].Select(x => vOffsets[h] + x));
            var qkvRows = qRows.Concat(qRows.Select(r => qkTotal + r)).Concat(vRows.Select(r => 2 * qkTotal + r)).ToArray();

            t[q + "norm1.weight"] = Vec(model[p + "norm1.weight"], res);
            t[q + "norm1.bias"] = Vec(model[p + "norm1.bias"], res);
            var qkv = model[p + "attn.qkv.weight"];
            t[q + "attn.qkv.weight"] = new Tensor([qkvRows.Length, res.Length], Cols(Rows(qkv, qkvRows), qkvRows.Length, c.EmbedDim, res));
            t[q + "attn.qkv.bias"] = Vec(model[p + "attn.qkv.bias"], qkvRows);
            var proj = model[p + "attn.proj.weight"];
            var vCols = vRows.ToArray();
            t[q + "attn.proj.weight"] = new Tensor([res.Length, vCols.Length], Cols(Rows(proj, res), res.Length, b.VTotal, vCols));
            t[q + "attn.proj.bias"] = Vec(model[p + "attn.proj.bias"], res);
            t[q + "norm2.weight"] = Vec(model[p + "norm2.weight"], res);
            t[q + "norm2.bias"] = Vec(model[p + "norm2.bias"], res);
            var fc1 = model[p + "mlp.fc1.weight"];
            t[q + "mlp.fc1.weight"] = new Tensor([bp.FfnKeep.Length, res.Length], Cols(Rows(fc1, bp.FfnKeep), bp.FfnKeep.Length, c.EmbedDim, res));
            t[q + "mlp.fc1.bias"] = Vec(model[p + "mlp.fc1.bias"], bp.FfnKeep);
            var fc2 = model[p + "mlp.fc2.weight"];
            t[q + "mlp.fc2.weight"] = new Tensor([res.Length, bp.FfnKeep.Length], Cols(Rows(fc2, res), res.Length, b.MlpHidden, bp.FfnKeep));
            t[q + "mlp.fc2.bias"] = Vec(model[p + "mlp.fc2.bias"], res);
            blocks.Add(new BlockConfig(heads.Select(h => bp.QkKeep[h].Length).ToArray(), heads.Select(h => bp.VKeep[h].Length).ToArray(), bp.FfnKeep.Length, b.AttnScale));
            outIndex++;
        }
        t["norm.weight"] = Vec(model["norm.weight"], res);
        t["norm.bias"] = Vec(model["norm.bias"], res);
        var head = model["head.weight"];
        t["head.weight"] = new Tensor([head.Shape[0], res.Length], Cols(head.Data, head.Rows, c.EmbedDim, res));
        t["head.bias"] = model["head.bias"] with { Data = (float[])model["head.bias"].Data.Clone() };
        if (c.Distilled)
        {
            var hd = model["head_dist.weight"];
            t["head_dist.weight"] = new Tensor([hd.Shape[0], res.Length], Cols(hd.Data, hd.Rows, c.EmbedDim, res));
            t["head_dist.bias"] = model["head_dist.bias"] with { Data = (float[])model["head_dist.bias"].Data.Clone() };
        }
        var config = c with { EmbedDim = res.Length, Blocks = blocks };
        return new DenseTensors(config.Validate(), t);
    }

    static void Validate(VitConfig c, PruningPlan plan)
    {
        CheckIndices(plan.ResidualKeep, c.EmbedDim, "residual channels");
        if (plan.Blocks.Length != c.Depth) throw new InputException("plan", $"has {plan.Blocks.Length} blocks, the model {c.Depth}");
        if (plan.Blocks.All(b => b.Removed)) throw new InputException("plan", "removes every block");
        for (int i = 0; i < c.Depth; i++)
        {
            var b = c.Blocks[i];
            var bp = plan.Blocks[i];
            if (bp.Removed) continue;
            if (bp.QkKeep.Length != b.Heads || bp.VKeep.Length != b.Heads)
                throw new InputException("plan", $"block {i}: {bp.QkKeep.Length} Q/K and {bp.VKeep.Length} V head entries for {b.Heads} heads");
            bool anyHead = false;
            for (int h = 0; h < b.Heads; h++)
            {
                CheckIndices(bp.QkKeep[h], b.QkWidths[h], $"block {i} head {h} Q/K pairs", allowEmpty: true);
                CheckIndices(bp.VKeep[h], b.VWidths[h], $"block {i} head {h} V neurons", allowEmpty: true);
                if ((bp.QkKeep[h].Length == 0) != (bp.VKeep[h].Length == 0))
                    throw new InputException("plan", $"block {i} head {h} keeps {bp.QkKeep[h].Length} Q/K pairs and {bp.VKeep[h].Length} V neurons; a head keeps some of both or is removed whole");
                anyHead |= bp.QkKeep[h].Length > 0;
            }
            if (!anyHead) throw new InputException("plan", $"block {i} removes every head; remove the block instead");
            CheckIndices(bp.FfnKeep, b.MlpHidden, $"block {i} FFN neurons");
        }
    }

    static void CheckIndices(int[] keep, int width, string what, bool allowEmpty = false)
    {
        if (keep.Length == 0 && !allowEmpty) throw new InputException("plan", $"{what}: keeps none of {width}");
        for (int j = 0; j < keep.Length; j++)
        {
            if (keep[j] < 0 || keep[j] >= width) throw new InputException("plan", $"{what}: index {keep[j]} is outside 0..{width - 1}");
            if (j > 0 && keep[j] <= keep[j - 1]) throw new InputException("plan", $"{what}: indices must be ascending and distinct");
        }
    }

    static float[] Rows(Tensor t, IReadOnlyList<int> rows)
    {
        int len = t.RowLength;
        var dst = new float[rows.Count * len];
        for (int i = 0; i < rows.Count; i++) Array.Copy(t.Data, (long)rows[i] * len, dst, (long)i * len, len);
        return dst;
    }

    static float[] Cols(float[] src, int rows, int width, IReadOnlyList<int> cols)
    {
        var dst = new float[rows * cols.Count];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols.Count; j++) dst[r * cols.Count + j] = src[r * width + cols[j]];
        return dst;
    }

    static Tensor Vec(Tensor t, IReadOnlyList<int> keep) => new([keep.Count], keep.Select(i => t.Data[i]).ToArray());

    /// <summary>The plan that keeps everything: the starting point for a criterion's choices.</summary>
    public static PruningPlan KeepAll(VitConfig c) => new(
        Enumerable.Range(0, c.EmbedDim).ToArray(),
        c.Blocks.Select(b => new BlockPlan(
            b.QkWidths.Select(w => Enumerable.Range(0, w).ToArray()).ToArray(),
            b.VWidths.Select(w => Enumerable.Range(0, w).ToArray()).ToArray(),
            Enumerable.Range(0, b.MlpHidden).ToArray())).ToArray());
}
