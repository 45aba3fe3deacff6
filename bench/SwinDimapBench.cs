using System.Diagnostics;
using System.Globalization;
using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;
using VitSparse.Runtime.Text;

namespace VitSparse.Bench;

/// <summary>
/// `bench --model swin_t_dimap` (or swin_s_dimap, swin_b_dimap): prunes the seeded dense Swin with DIMAP at levels
/// 1/2/3, unstructured and in 32×32 blocks, and times every variant against the dense model in alternating rounds.
/// Reports non-zero parameters, dense and non-zero MACs, the measured speedup and speedup ÷ MAC ratio. Unstructured
/// variants run twice: with the CSR kernel on every pruned layer, and with the kernel the runtime's cost model picks
/// (auto, the measured factors of <see cref="SparseCostModel.Measured"/>). Block variants run BSR 32×32 on every pruned layer.
/// </summary>
public static class SwinDimapBench
{
    const string Suffix = "_dimap";
    static readonly Granularity Blocks = new(32, 32);
    // Cost models that make `auto` give every layer with zeros (DIMAP's pruned layers) the kernel under test and
    // leave every full layer (AUX: patch embedding, merges, head) dense, where forcing a sparse mode would not.
    static readonly SparseCostModel CsrWherePruned = new(new Dictionary<(int H, int W), double>(), 1e6, 1e-6);
    static readonly SparseCostModel BsrWherePruned = new(new Dictionary<(int H, int W), double> { [(Blocks.BlockHeight, Blocks.BlockWidth)] = 1e-6 }, 1e6, 1e6);

    /// <summary>Whether a --model value names this suite.</summary>
    public static bool Handles(string models) => models.Split(',').Any(m => m.Trim().EndsWith(Suffix, StringComparison.OrdinalIgnoreCase));

    sealed record Variant(string Label, SwinModel Model, long NonZeroParams)
    {
        public List<double> Times { get; } = [];
    }

    /// <summary>Runs the suite for each name ("swin_t_dimap"); every other name in the list is refused.</summary>
    public static int Run(string models, string? weights, int threads, int batch, int warmup, int iterations, TextWriter stdout, TextWriter stderr, string device = "cpu")
    {
        var names = models.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var n in names)
            if (!n.EndsWith(Suffix, StringComparison.OrdinalIgnoreCase)) throw new InputException("--model", $"{n} cannot be measured in one run with the DIMAP suite ({models}); run it separately");
        if (weights != null) throw new InputException("--weights", "the DIMAP suite prunes seeded weights; leave out --weights");
        if (threads < 1 || batch < 1 || warmup < 0 || iterations < 1) throw new InputException("--iterations", "threads, batch and iterations must be at least 1, warm-up at least 0");
        foreach (var n in names)
        {
            var config = SwinArchitectures.Get(n[..^Suffix.Length], "--model");
            stdout.Write(Measure(config, threads, batch, warmup, iterations, stderr, device));
        }
        return 0;
    }

    static string Measure(SwinConfig c, int threads, int batch, int warmup, int iterations, TextWriter log, string device)
    {
        var inv = CultureInfo.InvariantCulture;
        log.WriteLine($"{c.Name}: seeded weights; ranking for DIMAP (unstructured and {Blocks})…");
        var dense = SwinTensors.From(new SeededSwinWeights(c), c);
        var variants = new List<Variant> { new("dense", SwinModel.FromSource(dense, c, new LoadOptions { Sparse = SparseMode.Off }), dense.NonZeros()) };
        foreach (var unit in new[] { Granularity.Unstructured, Blocks })
        {
            var ranking = DimapRanking.Rank(dense.Tensors, DimapMethod.Dimap, unit);
            for (int level = 1; level <= 3; level++)
            {
                var (pruned, _) = ranking.Apply(dense.Tensors, ranking.Plan(DimapModules.LevelRatio(c.Name, level)));
                var tensors = new SwinTensors(c, pruned);
                if (unit.IsUnstructured)
                {
                    variants.Add(new($"DIMAP{level} unstructured (csr)", SwinModel.FromSource(tensors, c, new LoadOptions { CostModel = CsrWherePruned }), tensors.NonZeros()));
                    variants.Add(new($"DIMAP{level} unstructured (auto)", SwinModel.FromSource(tensors, c, new LoadOptions { Sparse = SparseMode.Auto }), tensors.NonZeros()));
                }
                else variants.Add(new($"DIMAP{level} {unit}", SwinModel.FromSource(tensors, c, new LoadOptions { CostModel = BsrWherePruned }), tensors.NonZeros()));
            }
        }

        var times = SwinRounds.Time(variants.Select(v => v.Model).ToList(), c, batch, threads, device, warmup, iterations, log, c.Name);
        for (int v = 0; v < variants.Count; v++) variants[v].Times.AddRange(times[v]);

        double denseMs = Median(variants[0].Times);
        long denseMacs = variants[0].Model.DenseMacs();
        var sw = new StringWriter(inv);
        sw.WriteLine($"{c.Name} DIMAP · {Environment.ProcessorCount} cores · {threads} threads · batch {batch} · {iterations} runs per variant · load average {LoadAverage()}");
        sw.WriteLine();
        var t = new MarkdownTable("variant", "non-zero params", "dense GMAC", "non-zero GMAC", "kernel GMAC", "kernels", "median ms", "min ms", "speedup", "MAC ratio", "speedup ÷ MAC ratio")
            .RightAlign(1, 2, 3, 4, 6, 7, 8, 9, 10);
        foreach (var v in variants)
        {
            double ms = Median(v.Times), speedup = denseMs / ms;
            long nonZeroMacs = v.Model.LinearLayers.Sum(l => v.Model.RowsPerImage(l) * l.NonZeros) + SwinModel.AttentionMacs(c);
            double macRatio = (double)denseMacs / nonZeroMacs;
            string kernels = string.Join(", ", v.Model.LinearLayers.GroupBy(l => l.Describe()).OrderByDescending(g => g.Count()).Select(g => $"{g.Count()} {g.Key}"));
            t.Add(v.Label, $"{v.NonZeroParams / 1e6:0.00} M", (v.Model.DenseMacs() / 1e9).ToString("0.000", inv), (nonZeroMacs / 1e9).ToString("0.000", inv),
                (v.Model.KernelMacs() / 1e9).ToString("0.000", inv), kernels, ms.ToString("0.0", inv), v.Times.Min().ToString("0.0", inv),
                speedup.ToString("0.00", inv) + "×", macRatio.ToString("0.00", inv) + "×", (speedup / macRatio).ToString("0.00", inv));
        }
        sw.Write(t);
        sw.WriteLine();
        return sw.ToString();
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
