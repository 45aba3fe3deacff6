using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

public class SurgeryTests
{
    static DenseTensors Fixture()
    {
        using var f = new SafeTensorsFile(Fixtures.Path_("ragged_tiny.safetensors"));
        return DenseTensors.From(new SafeTensorsSource(f), VitModel.ReadConfig(f, null));
    }

    static float[] Logits(DenseTensors m)
    {
        var input = Fixtures.Npy_("ragged_tiny.input.npy");
        var logits = new float[3 * m.Config.NumClasses];
        using var s = new InferenceSession(VitModel.FromSource(m, m.Config), 1);
        s.Run(input.Data, 3, logits);
        return logits;
    }

    static void ZeroRows(DenseTensors m, string name, IEnumerable<int> rows)
    {
        var t = m[name];
        foreach (int r in rows) Array.Clear(t.Data, r * t.RowLength, t.RowLength);
    }

    static int[] Except(int width, params int[] drop) => Enumerable.Range(0, width).Except(drop).ToArray();

    /// <summary>Removing units must equal zeroing them: the pruned model computes exactly what remains.</summary>
    [Fact]
    public void Removing_qk_pairs_v_neurons_and_ffn_neurons_equals_zeroing_them()
    {
        var dense = Fixture();
        var c = dense.Config; // block 0: qk 5,9,13 / v 7,4,11 ; block 2: qk 1,16,6,7 / v 9,9,1,20
        var plan = Surgery.KeepAll(c);
        plan.Blocks[0].QkKeep[1] = Except(9, 2, 5);
        plan.Blocks[0].VKeep[2] = Except(11, 0, 10);
        plan.Blocks[2].QkKeep[1] = Except(16, 15);
        plan.Blocks[2].VKeep[3] = Except(20, 3, 4, 5);
        var blocks = plan.Blocks.ToArray();
        blocks[1] = blocks[1] with { FfnKeep = Except(37, 0, 1, 36) };
        plan = plan with { Blocks = blocks };
        var pruned = Surgery.Apply(dense, plan);
        Assert.Equal(new[] { 5, 7, 13 }, pruned.Config.Blocks[0].QkWidths);
        Assert.Equal(new[] { 7, 4, 9 }, pruned.Config.Blocks[0].VWidths);
        Assert.Equal(34, pruned.Config.Blocks[1].MlpHidden);

        var zeroed = dense.Clone();
        // qkv rows: q of head h at Σ dqk(<h), k at Σdqk + that, v at 2Σdqk + Σ dv(<h).
        foreach (var n in new[] { "weight", "bias" })
        {
            ZeroRows(zeroed, $"blocks.0.attn.qkv.{n}", [5 + 2, 5 + 5, 27 + 5 + 2, 27 + 5 + 5, 54 + 11 + 0, 54 + 11 + 10]);
            ZeroRows(zeroed, $"blocks.2.attn.qkv.{n}", [1 + 15, 30 + 1 + 15, 60 + 19 + 3, 60 + 19 + 4, 60 + 19 + 5]);
            ZeroRows(zeroed, $"blocks.1.mlp.fc1.{n}", [0, 1, 36]);
        }
        Fixtures.AssertClose(Logits(zeroed), Logits(pruned), 1e-5, "pruned vs zeroed");
    }

    [Fact]
    public void Removing_a_head_or_a_block_equals_zeroing_it()
    {
        var dense = Fixture();
        var c = dense.Config;
        var plan = Surgery.KeepAll(c);
        plan.Blocks[0].QkKeep[1] = [];
        plan.Blocks[0].VKeep[1] = [];
        var blocks = plan.Blocks.ToArray();
        blocks[1] = blocks[1] with { Removed = true };
        var pruned = Surgery.Apply(dense, plan with { Blocks = blocks });
        Assert.Equal(2, pruned.Config.Depth);
        Assert.Equal(new[] { 5, 13 }, pruned.Config.Blocks[0].QkWidths);

        var zeroed = dense.Clone();
        foreach (var n in new[] { "weight", "bias" })
        {
            ZeroRows(zeroed, $"blocks.0.attn.qkv.{n}", Enumerable.Range(5, 9).Concat(Enumerable.Range(27 + 5, 9)).Concat(Enumerable.Range(54 + 7, 4)));
            ZeroRows(zeroed, $"blocks.1.attn.proj.{n}", Enumerable.Range(0, zeroed[$"blocks.1.attn.proj.{n}"].Rows));
            ZeroRows(zeroed, $"blocks.1.mlp.fc2.{n}", Enumerable.Range(0, zeroed[$"blocks.1.mlp.fc2.{n}"].Rows));
        }
        Array.Clear(zeroed["blocks.1.attn.proj.bias"].Data);
        Array.Clear(zeroed["blocks.1.mlp.fc2.bias"].Data);
        Fixtures.AssertClose(Logits(zeroed), Logits(pruned), 1e-5, "pruned vs zeroed");
    }

    [Fact]
    public void Removing_residual_channels_matches_the_pytorch_reference()
    {
        var dense = Fixture();
        var plan = Surgery.KeepAll(dense.Config) with { ResidualKeep = Except(48, 3, 10, 17, 40, 41) };
        var pruned = Surgery.Apply(dense, plan);
        Assert.Equal(43, pruned.Config.EmbedDim);
        Fixtures.AssertClose(Fixtures.Npy_("ragged_tiny.residual_pruned.logits.npy").Data, Logits(pruned), 1e-4, "residual");
    }

    [Fact]
    public void Inconsistent_plans_are_refused()
    {
        var c = Fixture().Config;
        var plan = Surgery.KeepAll(c);
        plan.Blocks[0].QkKeep[0] = [];
        Assert.Contains("keeps 0 Q/K pairs and 7 V neurons", Assert.Throws<InputException>(() => Surgery.Apply(Fixture(), plan)).Message);
        plan = Surgery.KeepAll(c);
        plan.Blocks[2].VKeep[0] = [0, 9];
        Assert.Contains("outside 0..8", Assert.Throws<InputException>(() => Surgery.Apply(Fixture(), plan)).Message);
        plan = Surgery.KeepAll(c) with { ResidualKeep = [] };
        Assert.Contains("residual channels", Assert.Throws<InputException>(() => Surgery.Apply(Fixture(), plan)).Message);
    }
}

public class CriterionTests
{
    /// <summary>The d×d closed form must equal the definition: |cos| between N×N matrices, SVD of the full A = Q·Kᵀ.</summary>
    [Fact]
    public void Snp_attention_score_equals_the_definition()
    {
        int n = 11, d = 5, gamma = 3, ld = 2 * d + 2;
        var qkv = Fixtures.Random(n * ld, 4);
        var fast = SnpAttentionScore.HeadScores(qkv, 0, n, ld, 0, d, d, gamma);

        var a = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                for (int k = 0; k < d; k++) a[i * n + j] += (double)qkv[i * ld + k] * qkv[j * ld + d + k];
        var (u, sigma, v) = SmallLinearAlgebraAccess.Svd(a, n);
        for (int p = 0; p < d; p++)
        {
            double expected = 0;
            for (int j = 0; j < gamma; j++)
            {
                double dot = 0, n1 = 0, n2 = 0;
                for (int r = 0; r < n; r++)
                    for (int s = 0; s < n; s++)
                    {
                        double comp = sigma[j] * u[r * n + j] * v[s * n + j];
                        double term = (double)qkv[r * ld + p] * qkv[s * ld + d + p];
                        dot += comp * term; n1 += comp * comp; n2 += term * term;
                    }
                expected += Math.Abs(dot) / Math.Sqrt(n1 * n2);
            }
            Assert.Equal(expected, fast[p], 9);
        }
    }

    [Fact]
    public void Redundant_filters_score_lowest()
    {
        // Rows 0 and 1 are parallel (redundant with each other); row 2 is orthogonal to both.
        var w = new Tensor([3, 3], [1, 0, 0, 2, 0, 0, 0, 0, 1]);
        var s = Criteria.Filters(w, Criterion.Snp, new Random(0), VitSparse.Kernels.ThreadTeam.Single);
        Assert.True(s[2] > s[0] && s[2] > s[1]);
        var l2 = Criteria.Filters(w, Criterion.L2, new Random(0), VitSparse.Kernels.ThreadTeam.Single);
        Assert.Equal(new[] { 1f, 2f, 1f }, l2);
    }
}

static class SmallLinearAlgebraAccess
{
    public static (double[] U, double[] Sigma, double[] V) Svd(double[] m, int d) => SmallLinearAlgebra.Svd(m, d);
}

public class WidthAllocationTests
{
    static DenseTensors Seeded(string arch)
    {
        var c = Architectures.Get(arch);
        return DenseTensors.From(new SeededWeights(c), c);
    }

    [Theory]
    [InlineData("deit_t", "deit_t_0.6g", 0.638)]
    [InlineData("deit_s", "deit_s_2.0g", 2.037)]
    [InlineData("deit_s", "deit_s_1.3g", 1.265)]
    public void Released_structures_are_reached_exactly(string dense, string target, double gmac)
    {
        var (pruned, report) = Pruner.Prune(Seeded(dense), new PruneTarget.Structure(Architectures.Get(target)), Criterion.L2, null, 0);
        Assert.Equal(gmac, Math.Round(ModelStats.Macs(pruned.Config) / 1e9, 3));
        Assert.Equal(Architectures.Get(target).ToJson(), pruned.Config.ToJson());
        Assert.Equal(report.MacsAfter, ModelStats.Macs(pruned.Config));
    }

    [Fact]
    public void Mac_target_is_met_with_every_head_kept_alive()
    {
        var dense = Seeded("deit_t");
        long target = 800_000_000;
        foreach (bool uneven in new[] { false, true })
        {
            var (pruned, _) = Pruner.Prune(dense, new PruneTarget.Macs(target, uneven), Criterion.L2, null, 0);
            long macs = ModelStats.Macs(pruned.Config);
            Assert.True(macs <= target && macs > target - 10_000_000, $"{macs}");
            Assert.All(pruned.Config.Blocks, b => Assert.True(b.QkWidths.All(w => w >= 1) && b.VWidths.All(w => w >= 1)));
            if (!uneven) Assert.All(pruned.Config.Blocks, b => Assert.Single(b.QkWidths.Distinct()));
        }
    }

    [Fact]
    public void Ratios_follow_the_snp_rounding()
    {
        var dense = Seeded("deit_t");
        var spec = RatioSpec.Parse("{\"embed\": 0.203125, \"default\": {\"qk\": 0.390625, \"v\": 0.203125, \"mlp\": 0.200521}}", "r.json", 12);
        var (pruned, _) = Pruner.Prune(dense, new PruneTarget.Ratios(spec, "r.json"), Criterion.Random, null, 0);
        Assert.Equal(153, pruned.Config.EmbedDim);
        Assert.All(pruned.Config.Blocks, b => { Assert.Equal(39, b.QkWidths[0]); Assert.Equal(51, b.VWidths[2]); Assert.Equal(614, b.MlpHidden); });
    }

    [Theory]
    [InlineData("{\"default\": {\"qk\": 1.0}}", "'default.qk' = 1 is outside [0, 1)")]
    [InlineData("{\"default\": {\"qk\": -0.1}}", "outside [0, 1)")]
    [InlineData("{\"default\": {\"kq\": 0.1}}", "unknown field 'default.kq'")]
    [InlineData("{\"blocks\": [{\"qk\": 0.1}]}", "has 1 entries, the model has 12 blocks")]
    [InlineData("{\"embed\": \"half\", \"default\": {}}", "'embed' must be a number")]
    [InlineData("{\"embed\": 0.1}", "needs 'blocks'")]
    [InlineData("[0.5]", "must be a JSON object")]
    [InlineData("{", "not valid JSON")]
    public void Bad_ratio_files_name_the_field(string json, string expected)
    {
        var e = Assert.Throws<FileFormatException>(() => RatioSpec.Parse(json, "ratios.json", 12));
        Assert.Contains(expected, e.Message);
        Assert.Equal("ratios.json", e.File);
    }

    [Fact]
    public void Impossible_targets_are_refused()
    {
        var dense = Seeded("deit_t");
        Assert.Contains("wider", Assert.Throws<InputException>(() => Pruner.Prune(dense, new PruneTarget.Structure(Architectures.Get("deit_s_2.0g")), Criterion.L2, null, 0)).Message);
        Assert.Contains("not below", Assert.Throws<InputException>(() => Pruner.Prune(dense, new PruneTarget.Macs(2_000_000_000, false), Criterion.L2, null, 0)).Message);
        Assert.Contains("least this model can have", Assert.Throws<InputException>(() => Pruner.Prune(dense, new PruneTarget.Macs(1_000_000, false), Criterion.L2, null, 0)).Message);
        var tiny = RatioSpec.Parse("{\"default\": {\"qk\": 0.9}}", "r.json", 3);
        using var f = new SafeTensorsFile(Fixtures.Path_("ragged_tiny.safetensors"));
        var ragged = DenseTensors.From(new SafeTensorsSource(f), VitModel.ReadConfig(f, null));
        Assert.Contains("blocks[1].qk: ratio 0.9 removes all 3 units", Assert.Throws<InputException>(() => Pruner.Prune(ragged, new PruneTarget.Ratios(tiny, "r.json"), Criterion.L2, null, 0)).Message);
        Assert.Contains("--calib", Assert.Throws<InputException>(() => Pruner.Prune(ragged, new PruneTarget.Ratios(tiny, "r.json"), Criterion.Snp, null, 0)).Message);
        Assert.Contains("--calib", Assert.Throws<InputException>(() => Pruner.CalibrateSnp(ragged, new float[100], 1)).Message);
    }
}
