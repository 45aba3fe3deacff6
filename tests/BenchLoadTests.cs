using System.Text.Json;
using System.Text.RegularExpressions;
using VitSparse.Bench;
using Xunit;

namespace VitSparse.Tests;

/// <summary>bench's tail-latency columns and its --load busy processes, which must never outlive the run.</summary>
public class BenchLoadTests
{
    /// <summary>True while <paramref name="pid"/> is one of our busy shells (a reused PID is someone else's).</summary>
    static bool IsBusyShell(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Contains("kill -0"); }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    [Fact]
    public void Load_processes_spin_until_disposed_and_are_gone_after()
    {
        if (!OperatingSystem.IsLinux()) return;
        IReadOnlyList<int> pids;
        using (var load = LoadProcesses.Start(2))
        {
            pids = load.Pids;
            Assert.Equal(2, pids.Count);
            Assert.All(pids, pid => Assert.True(IsBusyShell(pid), $"busy process {pid} is not running"));
        }
        Assert.All(pids, pid => Assert.False(IsBusyShell(pid), $"busy process {pid} outlived Dispose"));
        using (LoadProcesses.Start(0)) { }
    }

    [Fact]
    public void Bench_rejects_a_bad_load()
    {
        var e = new StringWriter();
        Assert.Equal(2, BenchApp.Run(["--load", "-1"], new StringWriter(), e));
        Assert.Contains("--load", e.ToString());
        e = new StringWriter();
        Assert.Equal(2, BenchApp.Run(["--load", (LoadProcesses.MaxProcesses + 1).ToString()], new StringWriter(), e));
        Assert.Contains("--load", e.ToString());
        Assert.NotEqual(0, BenchApp.Run(["--load", "two"], new StringWriter(), new StringWriter()));
    }

    [Fact]
    public void Bench_under_load_reports_percentiles_and_leaves_no_busy_process()
    {
        if (!OperatingSystem.IsLinux()) return;
        string json = Path.Combine(Fixtures.TempDir(), "bench.json");
        var o = new StringWriter();
        var e = new StringWriter();
        int code = BenchApp.Run(["--model", "deit_t", "--warmup", "0", "--iterations", "4", "--threads", "2", "--load", "1", "--json", json], o, e);
        Assert.True(code == 0, e.ToString());
        var pids = Regex.Match(e.ToString(), @"busy process started \(PID (\d+)\)");
        Assert.True(pids.Success, e.ToString());
        Assert.False(IsBusyShell(int.Parse(pids.Groups[1].Value)), "the busy process outlived bench");
        Assert.Contains("| p50 ms | p90 ms | p99 ms | max ms |", o.ToString());
        Assert.Contains("--load 1: 1 busy-spinning process ran beside the measurement", o.ToString());
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(1, doc.RootElement.GetProperty("load").GetInt32());
        var row = doc.RootElement.GetProperty("results")[0];
        double p50 = row.GetProperty("p50_ms").GetDouble(), p90 = row.GetProperty("p90_ms").GetDouble(), p99 = row.GetProperty("p99_ms").GetDouble();
        Assert.Equal(row.GetProperty("median_ms").GetDouble(), p50);
        Assert.True(p50 <= p90 && p90 <= p99 && p99 <= row.GetProperty("max_ms").GetDouble(), $"{p50} {p90} {p99}");
    }

    [Fact]
    public void Percentiles_interpolate_between_order_statistics()
    {
        double[] t = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100];
        Assert.Equal(6, BenchApp.Percentile(t, 0.5));
        Assert.Equal(10, BenchApp.Percentile(t, 0.9), 9);
        Assert.Equal(91, BenchApp.Percentile(t, 0.99), 9);
        Assert.Equal(100, BenchApp.Percentile(t, 1));
        Assert.Equal(7, BenchApp.Percentile([7], 0.99));
    }
}
