using System.Diagnostics;
using System.Globalization;
using VitSparse.Kernels;
using VitSparse.Pruning;
using VitSparse.Pruning.Lpvit;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;
using VitSparse.Runtime.Text;

namespace VitSparse.Bench;

/// <summary>
/// `bench --model swin_t_lpvit` (or swin_s_lpvit, swin_b_lpvit): LPViT prunes the seeded dense Swin for real
/// (gradients of mean(logits²) on seeded calibration images through the Swin backward, curves, power term, slope
/// search) to 32×32 blocks at 50 % of the linear+conv FLOPs, then the dense and the block-sparse model run in
/// alternating rounds in one process. Also: each pruned layer's kernel against the dense GEMM at its stage's tokens,
/// next to its block density, and the LPViT power model's predicted saving (no energy sensor in this suite).
/// </summary>
public static class SwinLpvitBench
{
    const string Suffix = "_lpvit";
    static readonly BlockPruneOptions Options = new() { BlockHeight = 32, BlockWidth = 32, Flops = 0.5 };

    /// <summary>Whether a --model value names this suite (a Swin name with _lpvit; DeiT LPViT names stay with <see cref="LpvitBench"/>).</summary>
    public static bool Handles(string models) => models.Split(',').Any(m => m.Trim() is var n && n.StartsWith("swin_", StringComparison.OrdinalIgnoreCase)
        && n.EndsWith(Suffix, StringComparison.OrdinalIgnoreCase));

    sealed record Variant(string Label, SwinModel Model)
    {
        public List<double> Times { get; } = [];
    }

    /// <summary>Runs the suite for each name ("swin_t_lpvit"); every other name in the list is refused.</summary>
    public static int Run(string models, string? weights, int threads, int batch, int warmup, int iterations, TextWriter stdout, TextWriter stderr, string device = "cpu")
    {
        var names = models.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var n in names)
            if (!Handles(n)) throw new InputException("--model", $"{n} cannot be measured in one run with the Swin LPViT suite ({models}); run it separately");
        if (weights != null) throw new InputException("--weights", "the Swin LPViT suite prunes seeded weights; leave out --weights");
        if (threads < 1 || batch < 1 || warmup < 0 || iterations < 1) throw new InputException("--iterations", "threads, batch and iterations must be at least 1, warm-up at least 0");
        foreach (var n in names)
        {
            var config = SwinArchitectures.Get(n[..^Suffix.Length], "--model");
            stdout.Write(Measure(n.ToLowerInvariant(), config, threads, batch, warmup, iterations, stderr, device));
        }
        return 0;
    }

    /// <summary>Prunes the seeded dense Swin with LPViT on <see cref="LpvitBench.CalibrationImages"/> seeded calibration images.</summary>
    public static SwinBlockPruneResult Prune(string name, SwinTensors dense, int threads, TextWriter log)
    {
        var c = dense.Config;
        int count = LpvitBench.CalibrationImages;
        var calib = new float[count * c.ImageElements];
        for (int i = 0; i < count; i++) SeededWeights.FillInput(calib.AsSpan(i * c.ImageElements, c.ImageElements), (ulong)i + 1);
        log.WriteLine($"{name}: pruning {c.Name} with LPViT ({Options.BlockHeight}×{Options.BlockWidth} blocks, {Options.Flops:0%} of linear+conv FLOPs, {count} seeded calibration images)…");
        var layers = BlockPruner.Plan(c, Options).Select(p => p.Layer);
        var gradients = TaylorGradients.Average(dense, calib, count, layers, threads);
        var result = BlockPruner.Prune(dense, Options, gradients, count);
        log.WriteLine($"{name}: linear+conv FLOPs kept {result.Report.FlopsRatio:0.000}, all MACs kept {result.Report.MacsAfter / (double)result.Report.MacsBefore:0.000}");
        return result;
    }

    static string Measure(string name, SwinConfig c, int threads, int batch, int warmup, int iterations, TextWriter log, string device)
    {
        var inv = CultureInfo.InvariantCulture;
        var dense = SwinTensors.From(new SeededSwinWeights(c), c);
        var result = Prune(name, dense, threads, log);
        var variants = new List<Variant>
        {
            new($"{c.Name} dense", SwinModel.FromSource(dense, c, new LoadOptions { Sparse = SparseMode.Off })),
            new(name, SwinModel.FromSource(result.Pruned, c, new LoadOptions { Sparse = SparseMode.Auto })),
        };
        var times = SwinRounds.Time(variants.Select(v => v.Model).ToList(), c, batch, threads, device, warmup, iterations, log, name);
        for (int v = 0; v < variants.Count; v++) variants[v].Times.AddRange(times[v]);

        var sw = new StringWriter(inv);
        var r = result.Report;
        sw.WriteLine($"{name}: LPViT on seeded {c.Name} · {Environment.ProcessorCount} cores · {threads} threads · batch {batch} · {iterations} runs per variant · load average {LoadAverage()}");
        sw.WriteLine($"linear+conv FLOPs kept {r.FlopsRatio:0.000} (target {r.TargetFlops:0.##}, window attention excluded, as LPViT counts); all MACs {r.MacsBefore / 1e9:0.000} → {r.MacsAfter / 1e9:0.000} GMAC");
        sw.WriteLine();
        double denseMs = Median(variants[0].Times);
        var t = new MarkdownTable("variant", "kernel GMAC", "kernels", "median ms", "min ms", "speedup").RightAlign(1, 3, 4, 5);
        foreach (var v in variants)
        {
            double ms = Median(v.Times);
            string kernels = string.Join(", ", v.Model.LinearLayers.GroupBy(l => l.Describe()).OrderByDescending(g => g.Count()).Select(g => $"{g.Count()} {g.Key}"));
            t.Add(v.Label, (v.Model.KernelMacs() / 1e9).ToString("0.000", inv), kernels, ms.ToString("0.0", inv), v.Times.Min().ToString("0.0", inv), (denseMs / ms).ToString("0.00", inv) + "×");
        }
        sw.Write(t);
        sw.WriteLine();
        sw.Write(LayerTable(name, result, variants[1].Model));
        sw.WriteLine();
        sw.WriteLine($"{name}: LPViT power model (kept blocks × ⌊D_in/16⌋ over the pruned layers): {r.PowerRatio:0.000} of dense, a predicted saving of {1 - r.PowerRatio:0.0%}; measured energy: not measured (no sensor in this suite)");
        sw.WriteLine();
        return sw.ToString();
    }

    /// <summary>
    /// Every pruned layer's kernel (as `--sparse auto` builds it) against the dense packed GEMM on one thread, M = the
    /// layer's rows per image (its stage's tokens, the patches, one for the head), median of alternating rounds.
    /// </summary>
    static string LayerTable(string name, SwinBlockPruneResult r, SwinModel pruned, int rounds = 9)
    {
        var inv = CultureInfo.InvariantCulture;
        using var team = new ThreadTeam(1);
        var t = new MarkdownTable("layer", "shape", "M", "block density", "kernel", "dense µs", "sparse µs", "kernel speedup").RightAlign(2, 3, 5, 6, 7);
        var formats = pruned.LinearLayers.ToDictionary(l => l.Layer);
        var layers = PrunableLayer.Of(r.Pruned.Config).ToDictionary(l => l.Name);
        foreach (var l in r.Report.Layers.Where(l => l.KeptBlocks < l.Blocks))
        {
            var layer = layers[l.Layer];
            var w = r.Pruned.Floats(layer.Weight).ToArray();
            int n = layer.Rows, k = layer.Cols, m = (int)layer.RowsPerImage;
            var bias = r.Pruned.Contains(l.Layer + ".bias") ? r.Pruned.Floats(l.Layer + ".bias").ToArray() : new float[n];
            var (sparse, _) = LinearFormats.Build(l.Layer, w, n, k, bias, SparseMode.Auto, default, stored: r.Layouts.GetValueOrDefault(layer.Weight));
            var packed = PackedLinear.Pack(w, n, k, bias, default);
            var x = new float[(long)m * k];
            SeededWeights.FillInput(x, 7);
            var y = new float[(long)m * n];
            var denseTimes = new List<double>();
            var sparseTimes = new List<double>();
            for (int round = 0; round <= rounds; round++)
            {
                double a = Time(() => packed.Forward(x, m, k, y, n, Epilogue.Bias, team)), b = Time(() => sparse.Forward(x, m, k, y, n, Epilogue.Bias, team));
                if (round == 0) continue; // warm-up
                denseTimes.Add(a); sparseTimes.Add(b);
            }
            double denseUs = Median(denseTimes), sparseUs = Median(sparseTimes);
            t.Add(l.Layer, l.Shape, m.ToString(inv), (1 - l.BlockSparsity).ToString("0.0%", inv), formats[l.Layer].Describe(), denseUs.ToString("0", inv),
                sparseUs.ToString("0", inv), (denseUs / sparseUs).ToString("0.00×", inv));
        }
        var sw = new StringWriter(inv);
        sw.WriteLine($"{name}: pruned layers, kernel time at M = the layer's rows per image on 1 thread (median of {rounds} alternating rounds after one warm-up; --sparse auto picks the kernel):");
        sw.WriteLine();
        sw.Write(t);
        return sw.ToString();
    }

    static double Time(Action run)
    {
        long t0 = Stopwatch.GetTimestamp();
        run();
        return Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
    }

    static double Median(List<double> values)
    {
        var s = values.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }

    static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; }
        catch (IOException) { return "unknown"; }
        catch (UnauthorizedAccessException) { return "unknown"; }
    }
}
