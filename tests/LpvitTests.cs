using System.Text.Json;
using VitSparse.Pruning;
using VitSparse.Pruning.Lpvit;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>LPViT's pieces against brute force and the numpy reimplementation (methods.md §3).</summary>
public class LpvitTests
{
    static readonly PrunableLayer Ragged = new("blocks.0.mlp.fc1", 10, 13, 5, 13);

    [Fact]
    public void Stencil_is_exact_on_a_cubic_inside_and_uses_simple_differences_at_the_ends()
    {
        var x = Enumerable.Range(0, 101).Select(d => d / 100.0).ToArray();
        var y = x.Select(v => v * v * v).ToArray();
        var d = Slopes.Derivative(x, y, 4);
        Assert.Equal(100, d.Length); // the last point has no slope, as in the reference
        Assert.Equal(3 * 0.5 * 0.5, d[50], 9);
        Assert.Equal((-y[6] + 8 * y[4] - 8 * y[2] + y[0]) / (6 * (x[6] - x[3])), d[3], 9); // h' = 3 near the start: the stencil as coded
        Assert.Equal((y[1] - y[0]) / 0.01, d[0], 12);  // forward difference
        Assert.Equal((y[100] - y[98]) / 0.02, d[99], 12); // central difference at the end
    }

    static (float[] W, float[] G) RaggedWeights()
    {
        var w = Fixtures.Random(10 * 13, 1);
        var g = Fixtures.Random(10 * 13, 2, 0.01f);
        return (w, g);
    }

    /// <summary>Every point of the curve recomputed from its definition: rank, prune, ΔW, the formulas.</summary>
    [Theory]
    [InlineData(SecondOrder.Off)]
    [InlineData(SecondOrder.On)]
    public void Taylor_curve_on_a_ragged_grid_matches_brute_force(SecondOrder order)
    {
        var (w, g) = RaggedWeights();
        var grid = Ragged.Grid(4, 4);
        Assert.Equal(12, grid.Count); // 3 block rows (4, 4, 2) × 4 block columns (4, 4, 4, 1)
        const double lambda = 1e-3; // large enough to show in the sum
        var curve = LayerCurve.Taylor(Ragged, grid, w, g, 100, order, lambda, null);
        var score = Enumerable.Range(0, 12).Select(b => BlockCells(grid, b).Average(i => Math.Abs((double)w[i] * g[i]))).ToArray();
        var ranking = Enumerable.Range(0, 12).OrderByDescending(b => score[b]).ThenBy(b => b).ToArray();
        Assert.Equal(ranking, curve.Ranking);
        for (int d = 0; d <= 100; d++)
        {
            int kept = (int)((1.0 - d / 100.0) * 12);
            var dw = new double[w.Length];
            foreach (int b in ranking.Skip(kept)) foreach (int i in BlockCells(grid, b)) dw[i] = -w[i];
            double first = dw.Select((v, i) => (v * g[i]) * (v * g[i])).Sum() / w.Length;
            double gdw = dw.Select((v, i) => v * g[i]).Sum(), norm = dw.Sum(v => v * v);
            double expected = first + (order == SecondOrder.On ? 0.5 * (gdw * gdw + lambda * norm) : 0);
            Assert.Equal(expected, curve.Distortion![d], 12);
            Assert.Equal(ranking.Take(kept).Sum(b => BlockCells(grid, b).Count()), curve.KeptWeights[d]);
        }
    }

    /// <summary>The reference's incremental second-order update, executed literally on ΔW vectors.</summary>
    [Fact]
    public void Reference_second_order_follows_the_codes_incremental_update()
    {
        var (w, g) = RaggedWeights();
        var grid = Ragged.Grid(4, 4);
        const double lambda = 1e-3;
        var curve = LayerCurve.Taylor(Ragged, grid, w, g, 100, SecondOrder.Reference, lambda, null);
        var prev = new double[w.Length];
        double term = 0;
        for (int d = 0; d <= 100; d++)
        {
            int kept = (int)((1.0 - d / 100.0) * 12);
            var dw = new double[w.Length];
            foreach (int b in curve.Ranking.Skip(kept)) foreach (int i in BlockCells(grid, b)) dw[i] = -w[i];
            if (d > 0)
            {
                var ddw = dw.Select((v, i) => v - prev[i]).ToArray();
                double u = ddw.Select((v, i) => v * g[i]).Sum();
                // H·ΔΔW as the code builds it: g·(gᵀΔΔW), plus λ on the changed entries.
                var hd = g.Select((gi, i) => gi * u + (ddw[i] != 0 ? lambda : 0)).ToArray();
                term += 0.5 * ddw.Select((v, i) => (v + 2 * dw[i]) * hd[i]).Sum();
            }
            prev = dw;
            double first = dw.Select((v, i) => (v * g[i]) * (v * g[i])).Sum() / w.Length;
            Assert.Equal(first + term, curve.Distortion![d], 12);
        }
    }

    static IEnumerable<int> BlockCells(BlockGrid grid, int b)
    {
        var (r0, c0, h, bw) = grid.Bounds(b);
        for (int r = r0; r < r0 + h; r++)
            for (int c = c0; c < c0 + bw; c++) yield return r * grid.Cols + c;
    }

    [Fact]
    public void Smoothing_is_a_debiased_ema()
    {
        var y = new[] { 2.0, 2.0, 2.0 };
        LayerCurve.Smooth(y, 0.9);
        Assert.All(y, v => Assert.Equal(2.0, v, 12)); // debias: a constant stays itself
        var z = new[] { 0.0, 1.0 };
        LayerCurve.Smooth(z, 0.5);
        Assert.Equal(0.5 / (1 - 0.25), z[1], 12);
    }

    [Fact]
    public void Power_term_counts_blocks_times_input_width_over_16_with_either_sign()
    {
        var layer = new PrunableLayer("blocks.0.mlp.fc2", 384, 1536, 197, 1536);
        var grid = layer.Grid(16, 16);
        Assert.Equal(0.25 * 384 * 1536 / 256.0 * 96, PowerTerm.At(layer, grid, 0.25, PowerSign.Coded), 9);
        Assert.Equal(0.75 * 384 * 1536 / 256.0 * 96, PowerTerm.At(layer, grid, 0.25, PowerSign.Saving), 9);
        Assert.Equal(224 / 16, PowerTerm.PerBlock(PrunableLayer.Of(Architectures.Get("deit_s"))[0])); // the patch conv's quirk: the image side
    }

    [Fact]
    public void Allocation_matches_the_numpy_reimplementation_within_one_curve_step()
    {
        var file = CurveFile.Read(Fixtures.Path_("lpvit/fmnist_16x16.curves.json"));
        using var py = JsonDocument.Parse(File.ReadAllText(Fixtures.Path_("lpvit/fmnist_16x16.allocate.json")));
        var budget = new FlopsBudget(file.Curves, file.DenseFlops);
        var r = budget.Lpvit(file.Options.Flops, file.Options.H, file.MinSp, file.Options.Tolerance);
        var layers = py.RootElement.GetProperty("layers").EnumerateArray().ToArray();
        Assert.Equal(file.Curves.Count, layers.Length);
        for (int l = 0; l < layers.Length; l++)
        {
            Assert.Equal(file.Curves[l].Layer.Name, layers[l].GetProperty("name").GetString());
            Assert.True(Math.Abs(r.Amounts[l] - layers[l].GetProperty("amount").GetDouble()) <= 1.0 / file.Options.Points + 1e-9,
                $"{file.Curves[l].Layer.Name}: C# {r.Amounts[l]}, numpy {layers[l].GetProperty("amount").GetDouble()}");
        }
        Assert.Equal(file.Recorded, r.KeptBlocks); // and the run that exported the curves chose the same
        Assert.True(Math.Abs(r.FlopsRatio - 0.5) <= 0.02, $"ratio {r.FlopsRatio}");
    }

    [Fact]
    public void Baselines_meet_the_target_uniformly_or_globally_within_the_caps()
    {
        var file = CurveFile.Read(Fixtures.Path_("lpvit/fmnist_16x16.curves.json"));
        var budget = new FlopsBudget(file.Curves, file.DenseFlops);
        var uniform = budget.Uniform(0.6, 0.05);
        Assert.True(uniform.FlopsRatio <= 0.6 && uniform.FlopsRatio > 0.55, $"{uniform.FlopsRatio}");
        Assert.Single(uniform.Amounts.Distinct());
        var rank = new Random(3);
        var scores = file.Curves.Select(c => Enumerable.Range(0, c.Grid.Count).Select(_ => rank.NextDouble()).ToArray()).ToArray();
        var global = budget.Global(0.6, 0.05, (l, b) => scores[l][b]);
        Assert.True(global.FlopsRatio <= 0.6 && global.FlopsRatio > 0.59, $"{global.FlopsRatio}");
        for (int l = 0; l < file.Curves.Count; l++) Assert.True(global.KeptBlocks[l] >= file.Curves[l].KeptBlocks(0.95));
    }

    [Fact]
    public void A_target_the_caps_cannot_reach_names_what_binds()
    {
        var file = CurveFile.Read(Fixtures.Path_("lpvit/fmnist_16x16.curves.json"));
        var e = Assert.Throws<InputException>(() => new FlopsBudget(file.Curves, file.DenseFlops).Lpvit(0.01, 4, 0.05));
        Assert.Contains("unreachable", e.Message);
        Assert.Contains("binding: the caps of all 18 pruned layers (patch_embed.proj … head)", e.Message);
    }

    [Fact]
    public void A_curve_with_nan_is_refused_naming_its_layer()
    {
        var (w, g) = RaggedWeights();
        g[17] = float.NaN;
        var curve = LayerCurve.Taylor(Ragged, Ragged.Grid(4, 4), w, g, 100, SecondOrder.On, 1e-7, null);
        PowerTerm.Apply([curve], 0, PowerSign.Coded);
        var e = Assert.Throws<ModelException>(() => new FlopsBudget([curve], Ragged.Flops(Ragged.Numel)).Lpvit(0.5, 4, 0.05));
        Assert.Contains("layer blocks.0.mlp.fc1", e.Message);
    }

    [Fact]
    public void A_block_larger_than_a_layer_on_both_sides_is_refused_one_side_is_ragged()
    {
        var e = Assert.Throws<InputException>(() => Ragged.Grid(16, 16));
        Assert.Contains("larger than layer blocks.0.mlp.fc1 (10×13)", e.Message);
        var tall = Ragged.Grid(16, 4);
        Assert.Equal(4, tall.Count);
        Assert.Equal(10, tall.Bounds(3).Height);
        Assert.Equal(1, tall.Bounds(3).Width);
    }

    [Fact]
    public void Gradients_averaged_in_batches_equal_the_mean_of_single_images()
    {
        using var file = new SafeTensorsFile(Fixtures.Path_("ragged_tiny.safetensors"));
        var c = VitModel.ReadConfig(file, null);
        var dense = DenseTensors.From(new SafeTensorsSource(file), c);
        var layers = PrunableLayer.Of(c);
        int n = TaylorGradients.BatchSize + 2;
        var images = Fixtures.Random(n * c.ImageElements, 5);
        var all = TaylorGradients.Average(dense, images, n, layers, 1);
        var mean = layers.ToDictionary(l => l.Weight, l => new double[l.Numel]);
        for (int i = 0; i < n; i++)
        {
            var one = TaylorGradients.Average(dense, images.AsSpan(i * c.ImageElements, c.ImageElements), 1, layers, 1);
            foreach (var l in layers) for (int j = 0; j < l.Numel; j++) mean[l.Weight][j] += one[l.Weight][j] / n;
        }
        foreach (var l in layers) Fixtures.AssertClose(mean[l.Weight].Select(v => (float)v).ToArray(), all[l.Weight], 1e-4, l.Weight);
    }
}
