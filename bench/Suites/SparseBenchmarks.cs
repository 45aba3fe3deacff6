using System.Globalization;
using BenchmarkDotNet.Attributes;
using VitSparse.Kernels;
using VitSparse.Runtime.Text;

namespace VitSparse.Bench.Suites;

/// <summary>
/// Single-thread sparse linears against the dense PackedLinear on the same shape, in the same
/// BenchmarkDotNet run: DeiT-S and DeiT-B qkv, fc1, fc2 at M = 197, random block masks (BSR) or random
/// element masks (unstructured) at the given density. "dense" is the baseline of each shape.
/// </summary>
public class SparseBenchmarks
{
    public static readonly (string Name, int K, int N)[] Shapes =
    [
        ("deit_s qkv 384→1152", 384, 1152), ("deit_s fc1 384→1536", 384, 1536), ("deit_s fc2 1536→384", 1536, 384),
        ("deit_b qkv 768→2304", 768, 2304), ("deit_b fc1 768→3072", 768, 3072), ("deit_b fc2 3072→768", 3072, 768),
    ];

    /// <summary>format:density; bsrHxW or unstructured.</summary>
    public static readonly string[] Cases =
    [
        "dense", "bsr32x32:1.0", "bsr32x32:0.5", "bsr32x32:0.25", "bsr16x16:0.5", "bsr8x8:0.5", "bsr32x64:0.5", "bsr64x32:0.5", "bsr16x4:0.5",
        "unstructured:0.6", "unstructured:0.5", "unstructured:0.3", "unstructured:0.1",
    ];

    const int M = 197;

    [ParamsSource(nameof(ShapeNames))] public string Shape { get; set; } = "";
    [ParamsSource(nameof(CaseNames))] public string Case { get; set; } = "";
    public static IEnumerable<string> ShapeNames => Shapes.Select(s => s.Name);
    public static IEnumerable<string> CaseNames => Cases;

    ILinear _layer = null!;
    float[] _x = [], _y = [];
    int _k, _n;

    [GlobalSetup]
    public void Setup()
    {
        (_, _k, _n) = Shapes.Single(s => s.Name == Shape);
        var r = new Random(1);
        _x = Enumerable.Range(0, M * _k).Select(_ => (float)r.NextDouble() - 0.5f).ToArray();
        _y = new float[M * _n];
        var w = Enumerable.Range(0, _n * _k).Select(_ => (float)r.NextDouble() - 0.5f).ToArray();
        _layer = Build(Case, w, _n, _k);
    }

    public static ILinear Build(string @case, float[] w, int n, int k)
    {
        if (@case == "dense") return PackedLinear.Pack(w, n, k, new float[n]);
        var (format, bh, bw, density) = Parse(@case);
        var r = new Random(2);
        if (format == "bsr")
        {
            for (int br = 0; br < (n + bh - 1) / bh; br++)
                for (int bc = 0; bc < (k + bw - 1) / bw; bc++)
                    if (r.NextDouble() >= density)
                        for (int i = br * bh; i < Math.Min(n, br * bh + bh); i++) Array.Clear(w, i * k + bc * bw, Math.Min(bw, k - bc * bw));
            return BsrLinear.FromDense(w, n, k, bh, bw, new float[n]);
        }
        for (int i = 0; i < w.Length; i++) if (r.NextDouble() >= density) w[i] = 0f;
        return CsrLinear.FromDense(w, n, k, new float[n]);
    }

    public static (string Format, int H, int W, double Density) Parse(string @case)
    {
        var parts = @case.Split(':');
        double d = double.Parse(parts[1], CultureInfo.InvariantCulture);
        if (parts[0] == "unstructured") return ("unstructured", 1, 1, d);
        var hw = parts[0][3..].Split('x');
        return ("bsr", int.Parse(hw[0], CultureInfo.InvariantCulture), int.Parse(hw[1], CultureInfo.InvariantCulture), d);
    }

    [Benchmark] public void Forward() => _layer.Forward(_x, M, _k, _y, _n, Epilogue.Bias, ThreadTeam.Single);

    /// <summary>
    /// The robust measurement on a shared machine: dense and sparse alternate call for call (3 forwards each
    /// per round, <paramref name="rounds"/> rounds), and the median of the per-round ratios is kept, so load
    /// from other tenants hits both sides alike. Returns dense÷sparse per (shape, case) and the spread
    /// (interquartile range of the ratios).
    /// </summary>
    public static Dictionary<(string Shape, string Case), (double Ratio, double Q1, double Q3)> Interleaved(int rounds, string? cases = null, int threads = 1)
    {
        var result = new Dictionary<(string, string), (double, double, double)>();
        // One thread is timed in its own CPU time; a team in wall time (its workers' CPU time is not the caller's).
        using var own = threads > 1 ? new ThreadTeam(threads) : null;
        var team = own ?? ThreadTeam.Single;
        Func<double> clock = threads > 1 ? () => System.Diagnostics.Stopwatch.GetTimestamp() * 1e3 / System.Diagnostics.Stopwatch.Frequency : ThreadCpu.Milliseconds;
        foreach (var (shape, k, n) in Shapes)
        {
            var r = new Random(1);
            var x = Enumerable.Range(0, M * k).Select(_ => (float)r.NextDouble() - 0.5f).ToArray();
            var y = new float[M * n];
            var w = Enumerable.Range(0, n * k).Select(_ => (float)r.NextDouble() - 0.5f).ToArray();
            var dense = Build("dense", w, n, k);
            foreach (var c in Selected(cases))
            {
                var sparse = Build(c, w.ToArray(), n, k);
                double Time(ILinear l)
                {
                    double t0 = clock();
                    for (int i = 0; i < 3; i++) l.Forward(x, M, k, y, n, Epilogue.Bias, team);
                    return clock() - t0;
                }
                WarmUp(() => Time(dense), () => Time(sparse));
                var ratios = new List<double>();
                for (int i = 0; i < rounds; i++)
                {
                    // Alternate which goes first, so neither always follows the other's cache state.
                    double d, s;
                    if (i % 2 == 0) { d = Time(dense); s = Time(sparse); } else { s = Time(sparse); d = Time(dense); }
                    ratios.Add(d / s);
                }
                ratios.Sort();
                result[(shape, c)] = (ratios[rounds / 2], ratios[rounds / 4], ratios[3 * rounds / 4]);
            }
        }
        return result;
    }

    /// <summary>
    /// Alternates both sides until each has run 12 times and 0.4 s have passed: tiered compilation replaces a
    /// kernel's first (tier-0) code only after 30 calls and a 100 ms quiet period, and a few warm-up calls left
    /// the first shapes measured on tier-0 drivers (8×8 BSR read 1.06× on deit_s qkv, 1.75× after tier-up).
    /// </summary>
    static void WarmUp(Func<double> dense, Func<double> sparse)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 12 || clock.Elapsed.TotalSeconds < 0.4; i++) { dense(); sparse(); }
    }

    /// <summary>The sparse cases whose name starts with <paramref name="prefix"/> (all when null).</summary>
    internal static string[] Selected(string? prefix) => Cases.Skip(1).Where(c => prefix == null || c.StartsWith(prefix, StringComparison.Ordinal)).ToArray();

    public static string InterleavedReport(Dictionary<(string Shape, string Case), (double Ratio, double Q1, double Q3)> ratios, int rounds, string? cases = null, int threads = 1)
    {
        var inv = CultureInfo.InvariantCulture;
        var sw = new StringWriter(inv);
        sw.WriteLine();
        string who = threads == 1 ? $"single thread, M = 197, dense and sparse alternating ({rounds} rounds, {ThreadCpu.Clock})"
            : $"{threads} threads, M = 197, dense and sparse alternating ({rounds} rounds, wall-clock time)";
        sw.WriteLine($"Sparse linears, {who}: median dense÷sparse time (interquartile range):");
        sw.WriteLine();
        var selected = Selected(cases);
        var t = new MarkdownTable(["shape", .. selected]);
        t.RightAlign(Enumerable.Range(1, selected.Length).ToArray());
        var factors = selected.ToDictionary(c => c, _ => new List<double>());
        foreach (var (shape, _, _) in Shapes)
        {
            var row = new List<object> { shape };
            foreach (var c in selected)
            {
                var (ratio, q1, q3) = ratios[(shape, c)];
                row.Add($"{ratio.ToString("0.00", inv)}× ({q1.ToString("0.00", inv)}–{q3.ToString("0.00", inv)})");
                factors[c].Add(1 / ratio / Parse(c).Density);
            }
            t.Add([.. row]);
        }
        sw.Write(t);
        sw.WriteLine();
        sw.WriteLine(threads == 1 ? "Cost model (SparseCostModel): time per kept MAC ÷ dense time per MAC (median over shapes) and the break-even density it implies:"
            : $"Time per kept MAC ÷ dense time per MAC at {threads} threads (median over shapes; SparseCostModel holds the single-thread factors) and the break-even density it implies:");
        sw.WriteLine();
        var f = new MarkdownTable("format", "at density", "factor", "break-even density").RightAlign(1, 2, 3);
        foreach (var c in selected)
        {
            var sorted = factors[c].Order().ToList();
            double median = sorted[sorted.Count / 2];
            f.Add(c.Split(':')[0], Parse(c).Density.ToString("0.00", inv), median.ToString("0.00", inv), median <= 1 ? "any (≤ 1.00)" : (1 / median).ToString("0.00", inv));
        }
        sw.Write(f);
        return sw.ToString();
    }

    /// <summary>
    /// The ratio table (dense time ÷ sparse time per shape and case) and the cost model's factors: time per
    /// kept MAC relative to dense, median over shapes, and the break-even density 1/factor each implies.
    /// </summary>
    public static string Report(Dictionary<(string Shape, string Case), double> medianNs)
    {
        var inv = CultureInfo.InvariantCulture;
        var sw = new StringWriter(inv);
        sw.WriteLine();
        sw.WriteLine("Sparse linears, single thread, M = 197: dense PackedLinear time ÷ sparse time (same BenchmarkDotNet run):");
        sw.WriteLine();
        var cases = Cases.Skip(1).ToArray();
        var t = new MarkdownTable(["shape", "dense µs", .. cases]);
        t.RightAlign(Enumerable.Range(1, cases.Length + 1).ToArray());
        var factors = cases.ToDictionary(c => c, _ => new List<double>());
        foreach (var (shape, _, _) in Shapes)
        {
            if (!medianNs.TryGetValue((shape, "dense"), out double dense)) continue;
            var row = new List<object> { shape, (dense / 1000).ToString("0", inv) };
            foreach (var c in cases)
            {
                if (!medianNs.TryGetValue((shape, c), out double ns)) { row.Add(""); continue; }
                row.Add((dense / ns).ToString("0.00×", inv));
                factors[c].Add(ns / dense / Parse(c).Density);
            }
            t.Add([.. row]);
        }
        sw.Write(t);
        sw.WriteLine();
        sw.WriteLine("Cost model (LinearFormats): time per kept MAC ÷ dense time per MAC, median over shapes, and the break-even density it implies:");
        sw.WriteLine();
        var f = new MarkdownTable("format", "density measured", "factor", "break-even density").RightAlign(1, 2, 3);
        foreach (var c in cases.Where(c => factors[c].Count > 0))
        {
            var sorted = factors[c].Order().ToList();
            double median = sorted[sorted.Count / 2];
            f.Add(Parse(c).Format == "bsr" ? c.Split(':')[0] : "unstructured", Parse(c).Density.ToString("0.00", inv), median.ToString("0.00", inv),
                median <= 1 ? "any (≤ 1.00)" : (1 / median).ToString("0.00", inv));
        }
        sw.Write(f);
        return sw.ToString();
    }
}

/// <summary>
/// The calling thread's CPU time (Linux: CLOCK_THREAD_CPUTIME_ID), so that time the scheduler gives other
/// tenants of a loaded machine is not counted; wall-clock time elsewhere.
/// </summary>
static unsafe class ThreadCpu
{
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    static extern int ClockGetTime(int clock, long* timespec);

    const int ThreadCpuTimeClock = 3;

    public static string Clock => OperatingSystem.IsLinux() ? "thread CPU time" : "wall-clock time";

    public static double Milliseconds()
    {
        if (OperatingSystem.IsLinux())
        {
            long* ts = stackalloc long[2];
            if (ClockGetTime(ThreadCpuTimeClock, ts) == 0) return ts[0] * 1e3 + ts[1] / 1e6;
        }
        return System.Diagnostics.Stopwatch.GetTimestamp() * 1e3 / System.Diagnostics.Stopwatch.Frequency;
    }
}
