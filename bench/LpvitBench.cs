using System.Diagnostics;
using System.Globalization;
using VitSparse.Kernels;
using VitSparse.Pruning;
using VitSparse.Pruning.Lpvit;
using VitSparse.Runtime;
using VitSparse.Runtime.Energy;
using VitSparse.Runtime.Models;
using VitSparse.Runtime.Text;

namespace VitSparse.Bench;

/// <summary>
/// `bench --model deit_s_lpvit | deit_b_lpvit`: LPViT prunes the seeded dense model for real (gradients of
/// mean(logits²) on seeded calibration images, curves, power term, slope search), then the dense and the
/// block-sparse model run alternately in one process. Also: each pruned layer's kernel against the dense GEMM
/// next to its density, and the power model's predicted saving next to measured energy where a sensor exists.
/// </summary>
public static class LpvitBench
{
    /// <summary>bench names: the dense architecture, block shape and linear+conv FLOPs kept (the reference's DeiT runs).</summary>
    public static readonly Dictionary<string, (string Dense, int BlockHeight, int BlockWidth, double Flops)> Models = new(StringComparer.OrdinalIgnoreCase)
    {
        ["deit_t_lpvit"] = ("deit_t", 16, 16, 0.5), // small enough for the bench test
        ["deit_s_lpvit"] = ("deit_s", 16, 16, 0.5),
        ["deit_b_lpvit"] = ("deit_b", 32, 32, 0.5),
    };

    /// <summary>Seeded calibration images: enough for a structure and a speed measurement, not for accuracy (the reference uses 2000 ImageNet images).</summary>
    public const int CalibrationImages = 4;

    static readonly StringWriter Tables = new(CultureInfo.InvariantCulture);

    /// <summary>Prunes the dense weights as the bench name says; the result keeps its layouts for the per-layer table.</summary>
    public static BlockPruneResult Prune(string name, ITensorSource weights, VitConfig config, int threads, TextWriter log)
    {
        var spec = Models[name];
        var o = new BlockPruneOptions { BlockHeight = spec.BlockHeight, BlockWidth = spec.BlockWidth, Flops = spec.Flops };
        var dense = DenseTensors.From(weights, config);
        var calib = new float[CalibrationImages * config.ImageElements];
        for (int i = 0; i < CalibrationImages; i++) SeededWeights.FillInput(calib.AsSpan(i * config.ImageElements, config.ImageElements), (ulong)i + 1);
        log.WriteLine($"{name}: pruning {spec.Dense} with LPViT ({spec.BlockHeight}×{spec.BlockWidth} blocks, {spec.Flops:0%} of linear+conv FLOPs, {CalibrationImages} seeded calibration images)…");
        var layers = BlockPruner.Plan(config, o).Select(p => p.Layer);
        var gradients = TaylorGradients.Average(dense, calib, CalibrationImages, layers, threads);
        var result = BlockPruner.Prune(dense, o, gradients, CalibrationImages);
        log.WriteLine($"{name}: linear+conv FLOPs kept {result.Report.FlopsRatio:0.000}, all MACs kept {result.Report.MacsAfter / (double)result.Report.MacsBefore:0.000}");
        return result;
    }

    /// <summary>
    /// Times every pruned layer's kernel (as `--sparse auto` builds it) against the dense packed GEMM on one thread,
    /// M = tokens, alternating, and adds the table with the power model's numbers to what <see cref="TakeTables"/> prints.
    /// </summary>
    public static void LayerTable(string name, BlockPruneResult r, VitModel dense, VitModel pruned, double? measuredEnergyRatio, int rounds = 9)
    {
        var c = dense.Config;
        var inv = CultureInfo.InvariantCulture;
        using var team = new ThreadTeam(1);
        var t = new MarkdownTable("layer", "shape", "block density", "kernel", "dense µs", "sparse µs", "kernel speedup").RightAlign(2, 4, 5, 6);
        var formats = pruned.LinearLayers.ToDictionary(l => l.Layer);
        foreach (var l in r.Report.Layers.Where(l => l.KeptBlocks < l.Blocks))
        {
            var w = r.Pruned[l.Layer + ".weight"].Data;
            var bias = r.Pruned[l.Layer + ".bias"].Data;
            int n = bias.Length, k = w.Length / n, m = c.Tokens;
            var chosen = formats[l.Layer];
            var (sparse, _) = LinearFormats.Build(l.Layer, w, n, k, bias, SparseMode.Auto, default, stored: r.Layouts.GetValueOrDefault(l.Layer + ".weight"));
            var packed = PackedLinear.Pack(w, n, k, bias, default);
            var x = new float[m * k];
            SeededWeights.FillInput(x, 7);
            var y = new float[m * n];
            var denseTimes = new List<double>();
            var sparseTimes = new List<double>();
            for (int round = 0; round <= rounds; round++)
            {
                double a = Time(() => packed.Forward(x, m, k, y, n, Epilogue.Bias, team)), b = Time(() => sparse.Forward(x, m, k, y, n, Epilogue.Bias, team));
                if (round == 0) continue; // warm-up
                denseTimes.Add(a); sparseTimes.Add(b);
            }
            double denseUs = denseTimes.Order().ElementAt(rounds / 2), sparseUs = sparseTimes.Order().ElementAt(rounds / 2);
            t.Add(l.Layer, l.Shape, (1 - l.BlockSparsity).ToString("0.0%", inv), chosen.Describe(), denseUs.ToString("0", inv),
                sparseUs.ToString("0", inv), (denseUs / sparseUs).ToString("0.00×", inv));
        }
        var e0 = EnergyModel.Estimate(dense, 1, EnergyModel.Ops45nm);
        var e1 = EnergyModel.Estimate(pruned, 1, EnergyModel.Ops45nm);
        Tables.WriteLine();
        Tables.WriteLine($"{name}: pruned layers, kernel time at M = {c.Tokens} on 1 thread (median of {rounds} alternating rounds after one warm-up; --sparse auto picks the kernel):");
        Tables.WriteLine();
        Tables.Write(t);
        Tables.WriteLine();
        Tables.WriteLine($"{name}: LPViT power model (kept blocks × ⌊D_in/16⌋ over the pruned layers): {r.Report.PowerRatio:0.000} of dense, a predicted saving of {1 - r.Report.PowerRatio:0.0%}; " +
            $"modelled energy per image ({EnergyModel.Ops45nm.Name}, modelled not measured): {e0.JoulesPerImage * 1e3:0.00} → {e1.JoulesPerImage * 1e3:0.00} mJ ({e0.JoulesPerImage / e1.JoulesPerImage:0.00}×); " +
            $"measured energy: {(measuredEnergyRatio is { } measured ? $"{measured:0.00}× (dense ÷ pruned, from the sensor)" : "not measured (no sensor; bench --energy with RAPL/NVML/INA3221)")}");
    }

    static double Time(Action run)
    {
        long t0 = Stopwatch.GetTimestamp();
        run();
        return Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
    }

    /// <summary>The per-layer tables gathered in this run (then cleared).</summary>
    public static string TakeTables()
    {
        string s = Tables.ToString();
        Tables.GetStringBuilder().Clear();
        return s;
    }
}
