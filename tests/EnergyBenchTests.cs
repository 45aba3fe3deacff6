using System.Diagnostics;
using System.Text.Json;
using VitSparse.Bench;
using Xunit;

namespace VitSparse.Tests;

/// <summary>Run alone: one test drives a fake RAPL counter from this process's CPU time.</summary>
[CollectionDefinition(nameof(EnergyBenchTests), DisableParallelization = true)]
public sealed class EnergyBenchCollection;

[Collection(nameof(EnergyBenchTests))]
public class EnergyBenchTests
{
    static (int Code, string Out, string Err) Bench(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        return (BenchApp.Run(args, o, e), o.ToString(), e.ToString());
    }

    [Fact]
    public void Without_a_sensor_bench_energy_prints_only_the_modelled_estimate_labelled_as_such()
    {
        string json = Path.Combine(Fixtures.TempDir(), "bench.json");
        var (code, o, e) = Bench("--model", "deit_t_snp", "--energy", "--sysfs-root", Fixtures.TempDir(), "--warmup", "0", "--iterations", "2", "--threads", "1", "--json", json);
        Assert.True(code == 0, e);
        Assert.Contains("No energy sensor on this machine", o);
        Assert.Contains("rapl: no intel-rapl zones", o);
        Assert.Contains("MODELLED, NOT MEASURED", o);
        Assert.Contains("energy ratio (modelled)", o);
        Assert.DoesNotContain("measured J/inference", o);
        Assert.DoesNotContain("energy ratio (measured)", o);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var energy = doc.RootElement.GetProperty("energy");
        Assert.Equal(JsonValueKind.Null, energy.GetProperty("meter").ValueKind);
        Assert.Empty(energy.GetProperty("measured").EnumerateArray());
        var modelled = energy.GetProperty("modelled").EnumerateArray().ToList();
        Assert.Equal(["deit_t", "deit_t_snp"], modelled.Select(m => m.GetProperty("model").GetString()));
        var speedup = doc.RootElement.GetProperty("speedups")[0];
        Assert.Equal(JsonValueKind.Null, speedup.GetProperty("measured_energy_ratio").ValueKind);
        Assert.Equal(modelled[0].GetProperty("modelled_joules_per_inference").GetDouble() / modelled[1].GetProperty("modelled_joules_per_inference").GetDouble(),
            speedup.GetProperty("modelled_energy_ratio").GetDouble(), 9);
    }

    [Fact]
    public void A_named_meter_that_is_unavailable_is_an_error_with_the_reason()
    {
        var (code, _, e) = Bench("--model", "deit_t", "--energy", "--meter", "rapl", "--sysfs-root", Path.Combine(Fixtures.Dir, "energy", "jetson_nano_jp4"));
        Assert.Equal(2, code);
        Assert.Contains("--meter: rapl is unavailable: no intel-rapl zones", e);
        (code, _, e) = Bench("--energy", "--sysfs-root", "/nonexistent-sysfs-root");
        Assert.Equal(2, code);
        Assert.Contains("--sysfs-root", e);
        (code, _, e) = Bench("--energy", "--energy-window", "0.5");
        Assert.Equal(2, code);
        Assert.Contains("--energy-window", e);
    }

    [Fact]
    public void Measured_energy_through_a_rapl_tree_whose_counter_follows_this_process_cpu_time()
    {
        // A package that draws 2 W idle plus 10 W per busy core: energy_uj advances with wall and CPU time,
        // written atomically (rename) every 5 ms, so net joules per inference follow the CPU work of each model.
        string root = EnergyMeterTests.Tree("rapl_client");
        string file = Path.Combine(root, "sys/class/powercap/intel-rapl:0/energy_uj");
        using var stop = new CancellationTokenSource();
        var wall = Stopwatch.StartNew();
        var proc = Process.GetCurrentProcess();
        var writer = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                proc.Refresh();
                long uj = 1_000_000 + (long)(1e6 * (2 * wall.Elapsed.TotalSeconds + 10 * proc.TotalProcessorTime.TotalSeconds));
                File.WriteAllText(file + ".tmp", $"{uj}\n");
                File.Move(file + ".tmp", file, overwrite: true);
                Thread.Sleep(5);
            }
        });
        writer.Start();
        string json = Path.Combine(Fixtures.TempDir(), "bench.json");
        try
        {
            var (code, o, e) = Bench("--model", "deit_t_snp", "--energy", "--meter", "rapl", "--sysfs-root", root, "--energy-rounds", "1",
                "--warmup", "1", "--iterations", "2", "--threads", "1", "--json", json);
            Assert.True(code == 0, e);
            Assert.Contains("Energy per inference, measured with rapl (package-0;", o);
            Assert.Contains("energy ratio (measured)", o);
            Assert.Contains("MODELLED, NOT MEASURED", o);   // the model is printed too, in its own table
        }
        finally
        {
            stop.Cancel();
            writer.Join();
        }
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var m = doc.RootElement.GetProperty("energy").GetProperty("measured")[0];
        Assert.Equal("rapl", m.GetProperty("meter").GetString());
        Assert.InRange(m.GetProperty("idle_watts").GetDouble(), 1.9, 4.5);   // 2 W + the writer's own few % of a core
        var rows = m.GetProperty("rows").EnumerateArray().ToList();
        Assert.All(rows, r => Assert.True(r.GetProperty("reliable").GetBoolean()));
        double dense = rows[0].GetProperty("joules_per_inference_median").GetDouble(), pruned = rows[1].GetProperty("joules_per_inference_median").GetDouble();
        Assert.True(dense > pruned && pruned > 0, $"dense {dense} J, pruned {pruned} J");
        Assert.Equal(dense / pruned, doc.RootElement.GetProperty("speedups")[0].GetProperty("measured_energy_ratio").GetDouble(), 9);
    }
}
