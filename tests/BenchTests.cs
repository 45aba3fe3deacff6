using System.Text.Json;
using VitSparse.Bench;
using Xunit;

namespace VitSparse.Tests;

public class BenchTests
{
    [Fact]
    public void Bench_prunes_with_lpvit_and_prints_dense_vs_block_sparse_per_layer_and_the_power_model()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = BenchApp.Run(["--model", "deit_t_lpvit", "--warmup", "1", "--iterations", "2", "--threads", "1"], o, e);
        Assert.True(code == 0, e.ToString());
        string table = o.ToString();
        Assert.Contains("| deit_t dense ", table);
        Assert.Contains("| deit_t_lpvit ", table);
        Assert.Contains("Dense vs pruned", table);
        Assert.Contains("| blocks.11.mlp.fc2 ", table); // a pruned layer's row in the per-layer kernel table (seeded, so deterministic)
        Assert.Contains("LPViT power model", table);
        Assert.Contains("measured energy: not measured", table);
        Assert.Contains("4 seeded calibration images", e.ToString());
    }

    [Fact]
    public void Kernel_bench_refuses_sparse_cases_that_match_nothing()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(2, BenchApp.Run(["kernels", "--sparse", "--cases", "bsr7x7", "--rounds", "1"], o, e));
        Assert.Contains("--cases: no sparse case starts with 'bsr7x7' (cases: bsr32x32:1.0,", e.ToString());
        Assert.DoesNotContain("Sparse linears", o.ToString());
    }

    [Fact]
    public void Kernel_bench_compares_sparse_and_dense_on_a_thread_team()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(0, BenchApp.Run(["kernels", "--sparse", "--cases", "bsr8x8", "--rounds", "1", "--threads", "2"], o, e));
        Assert.Contains("Sparse linears, 2 threads, M = 197, dense and sparse alternating (1 rounds, wall-clock time)", o.ToString());
        Assert.Contains("| deit_b fc2 3072→768 |", o.ToString());
        Assert.Equal(2, BenchApp.Run(["kernels", "--threads", "2"], new StringWriter(), e));
        Assert.Contains("--threads is for the sparse comparison", e.ToString());
    }

    [Fact]
    public void Bench_prints_a_markdown_row_per_model_and_writes_json()
    {
        string json = Path.Combine(Fixtures.TempDir(), "bench.json");
        var o = new StringWriter();
        var e = new StringWriter();
        int code = BenchApp.Run(["--model", "deit_t_snp", "--warmup", "1", "--iterations", "3", "--threads", "1", "--json", json], o, e);
        Assert.True(code == 0, e.ToString());
        string table = o.ToString();
        Assert.Contains("| deit_t ", table);
        Assert.Contains("| deit_t_snp ", table);
        Assert.Contains("speedup ÷ MAC ratio", table);
        Assert.Contains("seeded synthetic", table);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var rows = doc.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(2, rows.Count);
        Assert.Equal(1.254, rows[0].GetProperty("gmac").GetDouble(), 3);
        Assert.True(rows[0].GetProperty("median_ms").GetDouble() > 0);
        Assert.True(rows[1].GetProperty("min_ms").GetDouble() <= rows[1].GetProperty("max_ms").GetDouble());
        Assert.Equal("VitSparse", rows[0].GetProperty("runtime").GetString());
        Assert.True(doc.RootElement.GetProperty("breakdown_ms").GetProperty("deit_t").GetProperty("Fc1Gelu").GetDouble() > 0);
        var speedup = doc.RootElement.GetProperty("speedups")[0];
        Assert.Equal((double)VitSparse.Runtime.Models.ModelStats.Macs(VitSparse.Runtime.Models.Architectures.Get("deit_t")) / VitSparse.Runtime.Models.ModelStats.Macs(VitSparse.Runtime.Models.Architectures.Get("deit_t_snp")),
            speedup.GetProperty("mac_ratio").GetDouble(), 6);
        Assert.Equal(0.638, rows[1].GetProperty("gmac").GetDouble(), 3);
    }

    [Fact]
    public void Bench_sparsify_compares_the_zeroed_model_with_itself_dense_and_says_it_is_not_pruning()
    {
        string json = Path.Combine(Fixtures.TempDir(), "bench.json");
        var o = new StringWriter();
        var e = new StringWriter();
        int code = BenchApp.Run(["--model", "deit_t", "--sparsify", "bsr32x32:0.5", "--warmup", "1", "--iterations", "3", "--threads", "2", "--json", json], o, e);
        Assert.True(code == 0, e.ToString());
        string table = o.ToString();
        Assert.Contains("not a pruning method", table);
        Assert.Contains("| deit_t dense ", table);
        Assert.Contains("| deit_t bsr32x32 50% zero ", table);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var speedup = doc.RootElement.GetProperty("speedups")[0];
        Assert.Equal("deit_t bsr32x32 50% zero", speedup.GetProperty("model").GetString());
        Assert.True(speedup.GetProperty("mac_ratio").GetDouble() > 1.5, "kept MACs of the sparse model");
        Assert.True(speedup.GetProperty("measured_speedup").GetDouble() > 0);

        e = new StringWriter();
        Assert.Equal(2, BenchApp.Run(["--sparsify", "bsr0x32:0.5"], new StringWriter(), e));
        Assert.Contains("--sparsify", e.ToString());
        e = new StringWriter();
        Assert.Equal(2, BenchApp.Run(["--sparsify", "unstructured:1.5"], new StringWriter(), e));
        Assert.Contains("--sparsify", e.ToString());
    }

    [Fact]
    public void Bench_rejects_unknown_models_and_bad_counts()
    {
        var e = new StringWriter();
        Assert.Equal(2, BenchApp.Run(["--model", "resnet50"], new StringWriter(), e));
        Assert.Contains("unknown architecture 'resnet50'", e.ToString());
        e = new StringWriter();
        Assert.Equal(2, BenchApp.Run(["--iterations", "0"], new StringWriter(), e));
        Assert.Contains("--iterations", e.ToString());
        e = new StringWriter();
        Assert.Equal(2, BenchApp.Run(["--peers", "tensorflow"], new StringWriter(), e));
        Assert.Contains("unknown peer 'tensorflow'", e.ToString());
    }

    [Fact]
    public void Bench_takes_seeded_weights_like_the_other_commands()
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        Assert.True(BenchApp.Run(["--weights", "seeded:deit_t", "--warmup", "0", "--iterations", "1", "--threads", "1"], o, e) == 0, e.ToString());
        Assert.Contains("| deit_t ", o.ToString());
        e = new StringWriter();
        Assert.Equal(2, BenchApp.Run(["--weights", "seeded:deit_s", "--model", "deit_t", "--iterations", "1"], new StringWriter(), e));
        Assert.Contains("seeded:deit_s is not the architecture of --model deit_t", e.ToString());
    }
}
