using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

public class DimapTests
{
    /// <summary>A two-stage Swin-shaped tensor set (timm keys), with each layer's scale different so LAMP and magnitude disagree.</summary>
    static Dictionary<string, Tensor> SmallSwin(int seed = 1)
    {
        var t = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        int n = 0;
        void Add(string name, float scale, params long[] shape)
        {
            long count = shape.Aggregate(1L, (a, b) => a * b);
            t[name] = new Tensor(shape, Fixtures.Random((int)count, seed * 100 + n++, scale));
        }
        Add("patch_embed.proj.weight", 0.1f, 16, 3, 2, 2);
        Add("patch_embed.proj.bias", 0.1f, 16);
        int[] widths = [16, 32];
        for (int s = 0; s < 2; s++)
        {
            int c = widths[s];
            if (s == 1) { Add("layers.1.downsample.norm.weight", 1f, 64); Add("layers.1.downsample.reduction.weight", 0.1f, 32, 64); }
            for (int b = 0; b < 2; b++)
            {
                string p = $"layers.{s}.blocks.{b}.";
                Add(p + "norm1.weight", 1f, c);
                Add(p + "attn.relative_position_bias_table", 1f, 49, 2);
                Add(p + "attn.qkv.weight", 0.5f / (b + 1), 3 * c, c);
                Add(p + "attn.qkv.bias", 0.1f, 3 * c);
                Add(p + "attn.proj.weight", 0.2f * (s + 1), c, c);
                Add(p + "mlp.fc1.weight", 0.3f, 4 * c, c);
                Add(p + "mlp.fc2.weight", 0.05f * (b + 1), c, 4 * c);
            }
        }
        Add("head.fc.weight", 0.1f, 10, 64);
        return t;
    }

    static long NonZeros(IEnumerable<Tensor> ts) => ts.Sum(t => (long)t.Data.Count(v => v != 0f));

    [Fact]
    public void Modules_follow_the_paper()
    {
        Assert.Equal(DimapModule.Qkv, DimapModules.Of("layers.2.blocks.17.attn.qkv.weight"));
        Assert.Equal(DimapModule.Proj, DimapModules.Of("layers.0.blocks.0.attn.proj.weight"));
        Assert.Equal(DimapModule.Mlp, DimapModules.Of("layers.3.blocks.1.mlp.fc1.weight"));
        Assert.Equal(DimapModule.Mlp, DimapModules.Of("layers.3.blocks.1.mlp.fc2.weight"));
        foreach (var aux in new[] { "layers.0.blocks.0.attn.qkv.bias", "layers.0.blocks.0.attn.relative_position_bias_table", "layers.1.downsample.reduction.weight",
                     "patch_embed.proj.weight", "head.fc.weight", "blocks.0.attn.qkv.weight", "layers.0.blocks.0.norm1.weight" })
            Assert.Equal(DimapModule.Aux, DimapModules.Of(aux));
    }

    /// <summary>Eq. 10 by brute force: w² over the sum of squares of the layer's weights with magnitude ≥ |w|.</summary>
    [Fact]
    public void Scores_are_eq_10_and_sorted()
    {
        var w = Fixtures.Random(12 * 8, 5);
        w[3] = w[7];   // a tie
        var r = LayerRanking.Rank("x", DimapModule.Qkv, w, 12, 8, Granularity.Unstructured, lamp: true);
        for (int i = 0; i < r.Units; i++)
        {
            float v = w[r.Order[i]];
            // The tie: the one sorted first has the other in its denominator (LAMP's order-based form).
            double denom = r.Order.Skip(i).Sum(j => (double)w[j] * w[j]);
            Assert.Equal(v * (double)v / denom, r.Scores[i], 1e-6);
            if (i > 0) Assert.True(r.Scores[i] >= r.Scores[i - 1]);
        }
        Assert.Equal(1f, r.Scores[^1]);
    }

    [Fact]
    public void Block_scores_are_lamp_over_block_energies()
    {
        var w = Fixtures.Random(10 * 6, 9);   // blocks 4×4: edge blocks 4×2, 2×4, 2×2
        var r = LayerRanking.Rank("x", DimapModule.Mlp, w, 10, 6, new Granularity(4, 4), lamp: true);
        Assert.Equal(6, r.Units);
        double Energy(int b) { int br = b / 2, bc = b % 2; double e = 0; for (int i = br * 4; i < Math.Min(10, br * 4 + 4); i++) for (int j = bc * 4; j < Math.Min(6, bc * 4 + 4); j++) e += w[i * 6 + j] * (double)w[i * 6 + j]; return e; }
        for (int i = 0; i < 6; i++)
            Assert.Equal(Energy(r.Order[i]) / r.Order.Skip(i).Sum(Energy), r.Scores[i], 1e-5);
        Assert.Equal(60, r.WeightsIn(6));
    }

    [Theory]
    [InlineData(0.2)]
    [InlineData(0.5)]
    public void Dimap_prunes_every_module_to_the_same_fraction_and_leaves_aux(double removed)
    {
        var t = SmallSwin();
        var ranking = DimapRanking.Rank(t, DimapMethod.Dimap, Granularity.Unstructured);
        var plan = ranking.Plan(removed);
        var (pruned, sparse) = ranking.Apply(t, plan);
        long total = t.Values.Sum(x => x.Data.LongLength);
        Assert.Equal(total, ranking.TotalParams);
        Assert.Equal(total - (long)Math.Round(removed * total), NonZeros(pruned.Values));
        double r = Math.Round(removed * total) / ranking.PrunableParams;
        foreach (var module in new[] { DimapModule.Qkv, DimapModule.Proj, DimapModule.Mlp })
        {
            var names = t.Keys.Where(k => DimapModules.Of(k) == module).ToList();
            long size = names.Sum(k => t[k].Data.LongLength), zeros = names.Sum(k => (long)pruned[k].Data.Count(v => v == 0f));
            Assert.Equal(Math.Round(r * size), zeros, 1);
            Assert.True(plan.Thresholds.ContainsKey(module.ToString()));
        }
        foreach (var (name, tensor) in t.Where(kv => DimapModules.Of(kv.Key) == DimapModule.Aux))
            Assert.Same(tensor, pruned[name]);
        // Layers of one module keep different fractions (LAMP compares across layers), and inside a layer the largest |w| stay.
        var kept = plan.Layers.Where(l => l.Module == DimapModule.Qkv).Select(l => Math.Round(l.Kept, 3)).Distinct().Count();
        Assert.True(kept > 1);
        foreach (var (name, layout) in sparse)
        {
            Assert.Equal(WeightFormat.Unstructured, layout.Format);
            var before = t[name].Data; var after = pruned[name].Data;
            float smallestKept = after.Where(v => v != 0).Min(MathF.Abs);
            float largestCut = before.Where((v, i) => after[i] == 0).DefaultIfEmpty(0).Max(MathF.Abs);
            Assert.True(largestCut <= smallestKept, name);
        }
    }

    [Fact]
    public void Single_module_uses_one_threshold_and_magnitude_one_fraction_per_layer()
    {
        var t = SmallSwin();
        double removed = 0.4;
        long total = t.Values.Sum(x => x.Data.LongLength), target = (long)Math.Round(removed * total);

        var single = DimapRanking.Rank(t, DimapMethod.SingleModule, Granularity.Unstructured);
        var sp = single.Plan(removed);
        Assert.Equal(target, sp.Removed);
        Assert.Single(sp.Thresholds);
        var dimap = DimapRanking.Rank(t, DimapMethod.Dimap, Granularity.Unstructured).Plan(removed);
        // Module shares differ under one global threshold, and not under DIMAP's split.
        double Share(DimapPlan p, DimapModule m) => (double)p.Layers.Where(l => l.Module == m).Sum(l => l.Removed) / p.Layers.Where(l => l.Module == m).Sum(l => l.Params);
        Assert.NotEqual(Share(sp, DimapModule.Proj), Share(dimap, DimapModule.Proj), 2);
        Assert.Equal(Share(dimap, DimapModule.Proj), Share(dimap, DimapModule.Mlp), 2);

        var mag = DimapRanking.Rank(t, DimapMethod.Magnitude, Granularity.Unstructured).Plan(removed);
        double r = (double)target / mag.PrunableParams;
        foreach (var l in mag.Layers) Assert.Equal(Math.Round(r * l.Params), l.Removed);
    }

    [Fact]
    public void Block_granularity_removes_whole_blocks_to_the_module_budget()
    {
        var t = SmallSwin();
        var unit = new Granularity(8, 8);
        var ranking = DimapRanking.Rank(t, DimapMethod.Dimap, unit);
        var plan = ranking.Plan(0.3);
        var (pruned, sparse) = ranking.Apply(t, plan);
        long target = (long)Math.Round(0.3 * ranking.TotalParams);
        Assert.InRange(plan.Removed, target, target + 3 * 64);   // each of 3 modules overshoots by less than a block
        Assert.Equal(ranking.TotalParams - plan.Removed, NonZeros(pruned.Values));
        foreach (var (name, layout) in sparse)
        {
            Assert.Equal((WeightFormat.Bsr, 8, 8), (layout.Format, layout.BlockHeight, layout.BlockWidth));
            var w = pruned[name];
            int rows = w.Rows, cols = w.RowLength;
            for (int br = 0; br < rows; br += 8)
                for (int bc = 0; bc < cols; bc += 8)
                {
                    int z = 0;
                    for (int i = br; i < br + 8; i++) for (int j = bc; j < bc + 8; j++) if (w.Data[i * cols + j] == 0) z++;
                    Assert.True(z is 0 or 64, $"{name} block ({br},{bc}) has {z} zeros");
                }
        }
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(-0.01)]
    [InlineData(double.NaN)]
    [InlineData(0.99)]   // more than the prunable share
    public void Bad_fractions_are_refused(double removed)
    {
        var ranking = DimapRanking.Rank(SmallSwin(), DimapMethod.Dimap, Granularity.Unstructured);
        var e = Assert.Throws<InputException>(() => ranking.Plan(removed));
        Assert.StartsWith("--params-removed: ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Bad_tensors_are_refused_by_name()
    {
        var t = SmallSwin();
        t["layers.0.blocks.1.mlp.fc1.weight"].Data[5] = float.NaN;
        var e = Assert.Throws<ModelException>(() => DimapRanking.Rank(t, DimapMethod.Dimap, Granularity.Unstructured, "w.safetensors"));
        Assert.Contains("'layers.0.blocks.1.mlp.fc1.weight'", e.Message);

        t = SmallSwin();
        t["layers.0.blocks.1.attn.proj.weight"] = new Tensor([16, 4, 4], new float[256]);
        e = Assert.Throws<ModelException>(() => DimapRanking.Rank(t, DimapMethod.Dimap, Granularity.Unstructured));
        Assert.Contains("must be a matrix", e.Message);

        var deitLike = new Dictionary<string, Tensor> { ["blocks.0.attn.qkv.weight"] = new([12, 4], new float[48]) };
        e = Assert.Throws<ModelException>(() => DimapRanking.Rank(deitLike, DimapMethod.Dimap, Granularity.Unstructured));
        Assert.Contains("DIMAP prunes Swin models", e.Message);

        // Tensors of another shape than the ranked ones cannot take the plan.
        t = SmallSwin();
        var ranking = DimapRanking.Rank(t, DimapMethod.Dimap, Granularity.Unstructured);
        var plan = ranking.Plan(0.2);
        t["layers.0.blocks.0.attn.qkv.weight"] = new Tensor([16, 48], new float[768]);
        e = Assert.Throws<ModelException>(() => ranking.Apply(t, plan));
        Assert.Contains("was ranked as [48,16]", e.Message);
    }

    [Fact]
    public void Levels_and_granularities_parse()
    {
        Assert.Equal(0.503, DimapModules.LevelRatio("swin_t", 3));
        Assert.Equal(0.334, DimapModules.LevelRatio("swin_base_patch4_window7_224", 2));
        Assert.Equal(0.14, DimapModules.LevelRatio("my_swin", 1));
        Assert.Throws<InputException>(() => DimapModules.LevelRatio("swin_t", 4));
        Assert.Equal(new Granularity(32, 16), Granularity.Parse("block:32x16"));
        Assert.True(Granularity.Parse("unstructured").IsUnstructured);
        foreach (var bad in new[] { "block:0x4", "block:32", "block:-1x4", "blocks:4x4", "block:4x4x4", "block:2000x4" })
            Assert.StartsWith("--granularity: ", Assert.Throws<InputException>(() => Granularity.Parse(bad)).Message);
    }
}

/// <summary>Table 1's parameter counts on the real architectures (seeded weights, shapes from SwinLayout): the paper counts every checkpoint tensor, AUX included.</summary>
public class DimapTable1Tests
{
    [Theory]
    [InlineData("swin_t", 28.3, 24.4, 19.2, 14.0)]
    [InlineData("swin_s", 49.6, 42.5, 33.1, 23.7)]
    [InlineData("swin_b", 87.8, 75.2, 58.4, 41.7)]
    public void Nonzero_parameters_at_dimap_levels_match_table_1(string arch, double dense, double level1, double level2, double level3)
    {
        var c = SwinArchitectures.Get(arch);
        var t = SwinTensors.From(new SeededSwinWeights(c), c);
        static void Within1Percent(double expectedM, long actual, string what) =>
            Assert.True(Math.Abs(actual / 1e6 - expectedM) <= 0.01 * expectedM, $"{what}: {actual / 1e6:0.000} M, Table 1 says {expectedM} M");
        Within1Percent(dense, t.NonZeros(), $"{arch} dense");
        var ranking = DimapRanking.Rank(t.Tensors, DimapMethod.Dimap, Granularity.Unstructured);
        double[] expected = [level1, level2, level3];
        for (int level = 1; level <= 3; level++)
        {
            var (pruned, _) = ranking.Apply(t.Tensors, ranking.Plan(DimapModules.LevelRatio(arch, level)));
            Within1Percent(expected[level - 1], new SwinTensors(c, pruned).NonZeros(), $"{arch} DIMAP{level}");
        }
    }

    [Fact]
    public void Block_granularity_reaches_the_same_counts()
    {
        var c = SwinArchitectures.Get("swin_t");
        var t = SwinTensors.From(new SeededSwinWeights(c), c);
        var ranking = DimapRanking.Rank(t.Tensors, DimapMethod.Dimap, new Granularity(32, 32));
        var (pruned, sparse) = ranking.Apply(t.Tensors, ranking.Plan(DimapModules.LevelRatio("swin_t", 3)));
        long nonZeros = new SwinTensors(c, pruned).NonZeros();
        Assert.InRange(nonZeros / 1e6, 14.0 * 0.99, 14.0 * 1.01);
        Assert.All(sparse.Values, l => Assert.Equal(WeightFormat.Bsr, l.Format));
    }
}
