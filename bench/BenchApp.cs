using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;
using VitSparse.Runtime.Text;

namespace VitSparse.Bench;

/// <summary>One model's measured latency.</summary>
public sealed record BenchResult(string Model, string Weights, int Threads, int Batch, int Iterations,
    double MedianMs, double MinMs, double MaxMs, double ImagesPerSecond, double Gmac, double Gflops, long Params);

/// <summary>
/// `bench --model deit_s`: builds the model (seeded synthetic weights unless --weights is given), warms up,
/// times whole inferences and prints a markdown table (and JSON with --json).
/// </summary>
public static class BenchApp
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var models = new Option<string>("--model") { Description = "comma-separated architectures: deit_t, deit_s, deit_b, ... (see vitsparse inspect)", DefaultValueFactory = _ => "deit_s" };
        var weights = new Option<string?>("--weights") { Description = "a real checkpoint to benchmark instead of seeded synthetic weights (one model)" };
        var threads = new Option<int>("--threads") { Description = "intra-op threads", DefaultValueFactory = _ => Environment.ProcessorCount };
        var batch = new Option<int>("--batch") { Description = "images per inference", DefaultValueFactory = _ => 1 };
        var warmup = new Option<int>("--warmup") { Description = "untimed runs first", DefaultValueFactory = _ => 10 };
        var iterations = new Option<int>("--iterations") { Description = "timed runs", DefaultValueFactory = _ => 30 };
        var json = new Option<string?>("--json") { Description = "also write the results as JSON to this file" };
        var root = new RootCommand("VitSparse benchmark: end-to-end latency per model") { models, weights, threads, batch, warmup, iterations, json };
        root.SetAction(pr =>
        {
            try
            {
                var names = pr.GetValue(models)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                string? w = pr.GetValue(weights);
                if (w != null && names.Length != 1) throw new InputException("--weights", "give exactly one --model with --weights");
                int t = pr.GetValue(threads), b = pr.GetValue(batch), wu = pr.GetValue(warmup), it = pr.GetValue(iterations);
                if (t < 1) throw new InputException("--threads", $"must be at least 1, got {t}");
                if (b < 1) throw new InputException("--batch", $"must be at least 1, got {b}");
                if (wu < 0) throw new InputException("--warmup", $"must be at least 0, got {wu}");
                if (it < 1) throw new InputException("--iterations", $"must be at least 1, got {it}");
                var results = names.Select(n => Measure(n, w, t, b, wu, it, stderr)).ToList();
                stdout.WriteLine($"VitSparse bench · {Isa.Describe()} · {Environment.ProcessorCount} cores · .NET {Environment.Version} · fp32");
                stdout.WriteLine();
                stdout.Write(Table(results));
                if (pr.GetValue(json) is { } path)
                    VitSparse.Runtime.Formats.AtomicFile.Write(path, s => JsonSerializer.Serialize(s, results, BenchJson.Default.ListBenchResult));
                return 0;
            }
            catch (VitSparseException e) { stderr.WriteLine($"error: {e.Message}"); return 2; }
            catch (IOException e) { stderr.WriteLine($"error: {e.Message}"); return 2; }
        });
        return root.Parse(args).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
    }

    public static BenchResult Measure(string name, string? weightsPath, int threads, int batch, int warmup, int iterations, TextWriter log)
    {
        VitModel model;
        string source;
        if (weightsPath != null)
        {
            model = VitModel.Load(weightsPath, new LoadOptions { Arch = Architectures.TryGet(name, out _) ? name : null });
            source = Path.GetFileName(weightsPath);
        }
        else
        {
            var config = Architectures.Get(name);
            model = VitModel.FromSource(new SeededWeights(config), config);
            source = "seeded synthetic";
        }
        var c = model.Config;
        var input = new float[(long)batch * c.ImageElements];
        SeededWeights.FillInput(input);
        var logits = new float[(long)batch * c.NumClasses];
        using var session = new InferenceSession(model, threads);
        log.WriteLine($"{name}: {source} weights, warming up ({warmup} runs)…");
        for (int i = 0; i < warmup; i++) session.Run(input, batch, logits);
        var times = new double[iterations];
        for (int i = 0; i < iterations; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            session.Run(input, batch, logits);
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        Array.Sort(times);
        double median = iterations % 2 == 1 ? times[iterations / 2] : 0.5 * (times[iterations / 2 - 1] + times[iterations / 2]);
        double gmac = ModelStats.Macs(c) / 1e9;
        return new BenchResult(name, source, threads, batch, iterations, median, times[0], times[^1],
            batch * 1000.0 / median, gmac, 2 * gmac * batch / (median / 1000.0), ModelStats.Params(c));
    }

    public static string Table(IEnumerable<BenchResult> results)
    {
        var inv = CultureInfo.InvariantCulture;
        var t = new MarkdownTable("model", "weights", "threads", "batch", "median ms", "min ms", "max ms", "images/s", "GMAC", "GFLOP/s", "params")
            .RightAlign(2, 3, 4, 5, 6, 7, 8, 9, 10);
        foreach (var r in results)
            t.Add(r.Model, r.Weights, r.Threads, r.Batch, r.MedianMs.ToString("0.00", inv), r.MinMs.ToString("0.00", inv), r.MaxMs.ToString("0.00", inv),
                r.ImagesPerSecond.ToString("0.0", inv), r.Gmac.ToString("0.000", inv), r.Gflops.ToString("0.0", inv), (r.Params / 1e6).ToString("0.00", inv) + " M");
        return t.ToString();
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(List<BenchResult>))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower)]
internal partial class BenchJson : System.Text.Json.Serialization.JsonSerializerContext;
