using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using VitSparse.Kernels;
using VitSparse.Runtime.Text;

namespace VitSparse.Bench.Suites;

/// <summary>
/// `bench kernels`: BenchmarkDotNet over every kernel, reported as GFLOP/s and as a share of the FMA peak
/// measured on this machine for the same vector width.
/// </summary>
public static class KernelSuite
{
    public static int Run(TextWriter stdout, TextWriter stderr, bool quick, bool sparseOnly = false, string? sparseCases = null, int? sparseRounds = null, int threads = 1)
    {
        if (sparseRounds < 1) { stderr.WriteLine($"error: --rounds must be at least 1, got {sparseRounds}"); return 2; }
        if (threads < 1) { stderr.WriteLine($"error: --threads must be at least 1, got {threads}"); return 2; }
        if (threads > 1 && !sparseOnly) { stderr.WriteLine("error: --threads is for the sparse comparison (kernels --sparse); the suites time one thread"); return 2; }
        if (sparseCases != null && SparseBenchmarks.Selected(sparseCases).Length == 0)
        {
            stderr.WriteLine($"error: --cases: no sparse case starts with '{sparseCases}' (cases: {string.Join(", ", SparseBenchmarks.Selected(null))})");
            return 2;
        }
        var inv = CultureInfo.InvariantCulture;
        var widths = new[] { SimdWidth.V512, SimdWidth.V256, SimdWidth.V128 }
            .Where(w => w switch
            {
                SimdWidth.V512 => System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated,
                SimdWidth.V256 => System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated,
                _ => System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated,
            }).ToArray();
        var peak = widths.ToDictionary(w => w, FmaPeak.Gflops);
        stdout.WriteLine("Single-thread FMA peak (register-only loop, best of 5):");
        stdout.WriteLine();
        var pt = new MarkdownTable("width", "GFLOP/s").RightAlign(1);
        foreach (var (w, g) in peak) pt.Add(w, g.ToString("0.0", inv));
        stdout.Write(pt);
        stdout.WriteLine();

        // 100 ms iterations keep the whole suite to a couple of minutes; medians resist this machine's noise.
        var job = (quick ? Job.Dry.WithIterationCount(5).WithWarmupCount(2)
                : Job.Default.WithIterationCount(15).WithWarmupCount(4).WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(100)))
            .WithToolchain(InProcessEmitToolchain.Instance);
        var config = ManualConfig.CreateEmpty().AddJob(job).AddColumnProvider(DefaultColumnProviders.Instance)
            .AddLogger(BenchmarkDotNet.Loggers.NullLogger.Instance).WithOptions(ConfigOptions.DisableLogFile);

        // Medians and bests both: on a shared machine the median carries other tenants' load, the best run
        // shows what the code does when it has the core.
        var results = new MarkdownTable("kernel", "case", "width", "median µs", "GFLOP/s", "% of peak", "best µs", "best GFLOP/s", "best % of peak").RightAlign(3, 4, 5, 6, 7, 8);
        if (sparseOnly) return RunSparse(stdout, config, quick, sparseCases, sparseRounds, threads);
        foreach (var report in BenchmarkRunner.Run<GemmBenchmarks>(config).Reports)
        {
            var shape = (string)report.BenchmarkCase.Parameters["Shape"];
            var w = (SimdWidth)report.BenchmarkCase.Parameters["Width"];
            Add(results, "GEMM", shape, w, report.ResultStatistics, GemmBenchmarks.Flops(shape), peak.GetValueOrDefault(w));
        }
        foreach (var report in BenchmarkRunner.Run<AttentionBenchmarks>(config).Reports)
        {
            var heads = (string)report.BenchmarkCase.Parameters["Heads"];
            Add(results, "ragged attention", heads, Isa.Best, report.ResultStatistics, AttentionBenchmarks.Flops(heads), peak.GetValueOrDefault(Isa.Best));
        }
        foreach (var report in BenchmarkRunner.Run<ElementwiseBenchmarks>(config).Reports)
            Add(results, report.BenchmarkCase.Descriptor.WorkloadMethod.Name, "", Isa.Best, report.ResultStatistics, 0, 0);
        stdout.Write(results);
        return RunSparse(stdout, config, quick);
    }

    static int RunSparse(TextWriter stdout, IConfig config, bool quick, string? cases = null, int? roundsAsked = null, int threads = 1)
    {
        // First the alternating measurement (robust to other tenants' load), then BenchmarkDotNet's absolute times
        // unless only some cases, a round count or more threads were asked for.
        int rounds = roundsAsked ?? (quick ? 3 : 41);
        stdout.Write(SparseBenchmarks.InterleavedReport(SparseBenchmarks.Interleaved(rounds, cases, threads), rounds, cases, threads));
        if (cases != null || roundsAsked != null || threads > 1) return 0;
        var medians = new Dictionary<(string, string), double>();
        foreach (var report in BenchmarkRunner.Run<SparseBenchmarks>(config).Reports)
            if (report.ResultStatistics is { } st)
                medians[((string)report.BenchmarkCase.Parameters["Shape"], (string)report.BenchmarkCase.Parameters["Case"])] = st.Median;
        stdout.Write(SparseBenchmarks.Report(medians));
        return 0;
    }

    static void Add(MarkdownTable t, string kernel, string @case, SimdWidth w, BenchmarkDotNet.Mathematics.Statistics? stats, double flops, double peak)
    {
        var inv = CultureInfo.InvariantCulture;
        if (stats == null) { t.Add(kernel, @case, w, "failed", "", "", "", "", ""); return; }
        string Rate(double ns) => flops > 0 ? (flops / ns).ToString("0.0", inv) : "";
        string Share(double ns) => flops > 0 && peak > 0 ? (flops / ns / peak).ToString("0%", inv) : "";
        t.Add(kernel, @case, w, (stats.Median / 1000).ToString("0.0", inv), Rate(stats.Median), Share(stats.Median),
            (stats.Min / 1000).ToString("0.0", inv), Rate(stats.Min), Share(stats.Min));
    }
}
