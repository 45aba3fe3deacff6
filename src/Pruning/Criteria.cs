using VitSparse.Kernels;
using VitSparse.Runtime;

namespace VitSparse.Pruning;

/// <summary>How units are ranked. Higher score = more important = kept first.</summary>
public enum Criterion
{
    /// <summary>SNP: attention-score preservation for Q/K pairs (needs calibration), inter-head redundancy for V, redundancy for FFN and residual filters.</summary>
    Snp,
    /// <summary>L2 norm of each unit's weights (Q/K pairs: ‖q row‖ + ‖k row‖, combined by index).</summary>
    L2,
    /// <summary>Geometric median: Σ distances to the layer's other filters; units near the median are redundant.</summary>
    GeometricMedian,
    /// <summary>Seeded uniform scores: the floor any criterion must beat.</summary>
    Random,
    /// <summary>SNP's scores negated: prunes what SNP keeps (a sanity baseline).</summary>
    ReverseSnp,
}

/// <summary>Scores for every prunable unit of a model.</summary>
public sealed record UnitScores(float[][][] Qk, float[][][] V, float[][] Ffn, float[] Residual);

/// <summary>
/// Scores every prunable group of a DeiT with one criterion (methods.md §1.2). Filter scores are data-free
/// except SNP's Q/K scores, which come from a calibrated <see cref="SnpAttentionScore"/>. Residual channels
/// are scored as NetsPresso's "Average" policy with "TSS" normalisation: every layer that writes the residual
/// stream (patch embed, each attn.proj, each mlp.fc2) scores its output filters, each layer's scores are
/// divided by their sum, and a channel's score is the mean over those layers.
/// </summary>
public static class Criteria
{
    /// <summary>The CLI spelling of each criterion, the name reports print.</summary>
    static readonly (Criterion Value, string Name)[] Names =
        [(Criterion.Snp, "snp"), (Criterion.L2, "l2"), (Criterion.GeometricMedian, "gm"), (Criterion.Random, "random"), (Criterion.ReverseSnp, "reverse")];

    /// <summary>The name the CLI takes and reports print: snp, l2, gm, random, reverse.</summary>
    public static string Name(this Criterion criterion) => Names.First(n => n.Value == criterion).Name;

    /// <summary>A criterion by its CLI name; an unknown name is an <see cref="InputException"/> on <paramref name="option"/>.</summary>
    public static Criterion Parse(string name, string option = "--criterion")
    {
        foreach (var n in Names)
            if (n.Name == name) return n.Value;
        throw new InputException(option, $"'{name}' is not one of {string.Join(", ", Names.Select(n => n.Name))}{Runtime.Text.DidYouMean.Hint(name, Names.Select(n => n.Name))}");
    }

    /// <summary>Scores every prunable unit of <paramref name="model"/> with <paramref name="criterion"/>; SNP and its reverse need the calibrated Q/K scores <paramref name="snpQk"/>.</summary>
    public static UnitScores Score(DenseTensors model, Criterion criterion, float[][][]? snpQk = null, int seed = 0)
    {
        var c = model.Config;
        if (criterion is Criterion.Snp or Criterion.ReverseSnp && snpQk == null)
            throw new InputException("--calib", "the SNP criterion scores Q/K pairs on calibration images; none were given");
        using var team = ThreadTeam.ForMachine();
        var rng = new Random(seed);
        var qk = new float[c.Depth][][];
        var v = new float[c.Depth][][];
        var ffn = new float[c.Depth][];
        var residualLayers = new List<float[]>();
        float sign = criterion == Criterion.ReverseSnp ? -1 : 1;

        residualLayers.Add(Filters(model["patch_embed.proj.weight"], criterion, rng, team));
        for (int i = 0; i < c.Depth; i++)
        {
            var b = c.Blocks[i];
            string p = $"blocks.{i}.";
            var qkv = model[p + "attn.qkv.weight"];
            int e = c.EmbedDim;
            var vRows = Slice(qkv, 2 * b.QkTotal, b.VTotal, e);
            var vScores = Filters(vRows, criterion, rng, team); // one layer: redundancy across all heads
            v[i] = SplitHeads(vScores, b.VWidths, sign);
            if (criterion is Criterion.Snp or Criterion.ReverseSnp)
                qk[i] = snpQk![i].Select(h => h.Select(x => sign * x).ToArray()).ToArray();
            else
            {
                var q = Filters(Slice(qkv, 0, b.QkTotal, e), criterion, rng, team);
                var k = criterion == Criterion.Random ? new float[b.QkTotal] : Filters(Slice(qkv, b.QkTotal, b.QkTotal, e), criterion, rng, team);
                qk[i] = SplitHeads(q.Zip(k, (a, bb) => a + bb).ToArray(), b.QkWidths, 1);
            }
            ffn[i] = Filters(model[p + "mlp.fc1.weight"], criterion, rng, team).Select(x => sign * x).ToArray();
            residualLayers.Add(Filters(model[p + "attn.proj.weight"], criterion, rng, team));
            residualLayers.Add(Filters(model[p + "mlp.fc2.weight"], criterion, rng, team));
        }
        var residual = new float[c.EmbedDim];
        foreach (var layer in residualLayers)
        {
            double sum = layer.Sum(x => (double)Math.Abs(x));
            for (int ch = 0; ch < residual.Length; ch++) residual[ch] += (float)(layer[ch] / Math.Max(sum, 1e-30) / residualLayers.Count);
        }
        if (criterion == Criterion.ReverseSnp) for (int ch = 0; ch < residual.Length; ch++) residual[ch] = -residual[ch];
        return new UnitScores(qk, v, ffn, residual);
    }

    static Tensor Slice(Tensor t, int row0, int rows, int len) => new([rows, len], t.Data.AsSpan(row0 * len, rows * len).ToArray());

    static float[][] SplitHeads(float[] scores, int[] widths, float sign)
    {
        var r = new float[widths.Length][];
        for (int h = 0, o = 0; h < widths.Length; o += widths[h], h++)
            r[h] = scores.AsSpan(o, widths[h]).ToArray().Select(x => sign * x).ToArray();
        return r;
    }

    /// <summary>One score per output filter (row) of a layer.</summary>
    internal static float[] Filters(Tensor w, Criterion criterion, Random rng, ThreadTeam team)
    {
        int n = w.Rows, len = w.RowLength;
        switch (criterion)
        {
            case Criterion.Random:
                return Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray();
            case Criterion.L2:
                return Enumerable.Range(0, n).Select(i => MathF.Sqrt(System.Numerics.Tensors.TensorPrimitives.Dot(w.Data.AsSpan(i * len, len), w.Data.AsSpan(i * len, len)))).ToArray();
        }
        var norms = new double[n];
        for (int i = 0; i < n; i++) norms[i] = Math.Sqrt(System.Numerics.Tensors.TensorPrimitives.Dot(w.Data.AsSpan(i * len, len), w.Data.AsSpan(i * len, len)));
        var gram = Gram(w, team);
        var scores = new float[n];
        for (int i = 0; i < n; i++)
        {
            double s = 0;
            for (int l = 0; l < n; l++)
            {
                double dot = gram[(long)i * n + l];
                if (criterion == Criterion.GeometricMedian)
                    s += Math.Sqrt(Math.Max(0, norms[i] * norms[i] + norms[l] * norms[l] - 2 * dot));
                else // SNP redundancy: Σ (1 − |cos|); a zero filter is redundant with everything
                    s += norms[i] == 0 || norms[l] == 0 ? 0 : 1 - Math.Min(1, Math.Abs(dot) / (norms[i] * norms[l]));
            }
            scores[i] = (float)s;
        }
        return scores;
    }

    /// <summary>W·Wᵀ on the GEMM kernel (FFN layers have 1536–3072 filters).</summary>
    static float[] Gram(Tensor w, ThreadTeam team)
    {
        int n = w.Rows, len = w.RowLength;
        var gram = new float[(long)n * n];
        PackedLinear.Pack(w.Data, n, len, []).Forward(w.Data, n, len, gram, n, Epilogue.Bias, team);
        return gram;
    }
}
