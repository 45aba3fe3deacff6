using VitSparse.Runtime.Formats;
using Xunit;

namespace VitSparse.Tests;

/// <summary>`infer`, `inspect` and `eval` take a Swin like a DeiT.</summary>
public class SwinCliTests
{
    static string Temp(string name) => Path.Combine(Path.GetTempPath(), $"swin-cli-{Environment.ProcessId}-{name}");

    [Fact]
    public void Infer_writes_the_pytorch_logits_of_a_swin_file()
    {
        string output = Temp("logits.npy");
        try
        {
            var (code, stdout, err) = Fixtures.Cli("infer", "--weights", Fixtures.Path_("swin_tiny_t09.safetensors"),
                "--input", Fixtures.Path_("swin_tiny_t09.input.npy"), "--output", output, "--threads", "2");
            Assert.True(code == 0, err);
            Assert.Contains("wrote 2×10 logits", stdout);
            Fixtures.AssertClose(Fixtures.Npy_("swin_tiny_t09.logits.npy").Data, Npy.Read(output).Data, 1e-4);
        }
        finally { File.Delete(output); }
    }

    [Fact]
    public void Inspect_shows_stages_windows_and_formats()
    {
        var (code, stdout, err) = Fixtures.Cli("inspect", Fixtures.Path_("swin_pad_t09.safetensors"));
        Assert.True(code == 0, err);
        Assert.Contains("Swin, image 48, patch 2, window 7", stdout);
        Assert.Contains("24² (padded to 28²)", stdout);
        Assert.Contains("layers.1.downsample.reduction", stdout);
        (code, stdout, err) = Fixtures.Cli("inspect", "seeded:swin_t");
        Assert.True(code == 0, err);
        Assert.Contains("total: 28,288,354 params", stdout);
    }

    [Fact]
    public void Eval_reports_accuracy_of_a_swin()
    {
        string x = Temp("x.npy"), y = Temp("y.npy");
        try
        {
            var golden = Fixtures.Npy_("swin_tiny_t09.logits.npy").Data;
            // Labels: each image's argmax, so top-1 is 100 %.
            var labels = Enumerable.Range(0, 2).Select(i => (float)Array.IndexOf(golden, golden.AsSpan(i * 10, 10).ToArray().Max(), i * 10) - i * 10).ToArray();
            File.Copy(Fixtures.Path_("swin_tiny_t09.input.npy"), x, true);
            Npy.Write(y, [2], labels);
            var (code, stdout, err) = Fixtures.Cli("eval", "--weights", Fixtures.Path_("swin_tiny_t09.safetensors"), "--npy", x, y);
            Assert.True(code == 0, err);
            Assert.Contains("2 images, top-1 100.00%", stdout);
        }
        finally { File.Delete(x); File.Delete(y); }
    }

    [Fact]
    public void Bench_measures_a_seeded_swin_with_timms_macs()
    {
        string json = Temp("bench.json");
        try
        {
            var o = new StringWriter();
            var e = new StringWriter();
            int code = VitSparse.Bench.BenchApp.Run(["--model", "swin_t", "--warmup", "0", "--iterations", "1", "--threads", "1", "--json", json], o, e);
            Assert.True(code == 0, e.ToString());
            Assert.Contains("| swin_t ", o.ToString());
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
            var row = doc.RootElement.GetProperty("results")[0];
            Assert.Equal(4.491, row.GetProperty("gmac").GetDouble(), 3);   // methods.md §4: 4.491 GMACs
            Assert.Equal(28_288_354, row.GetProperty("params").GetInt64());
            Assert.True(row.GetProperty("p99_ms").GetDouble() > 0, "a Swin row has its percentiles like a DeiT row");
            Assert.Equal(2, VitSparse.Bench.BenchApp.Run(["--model", "swin_t", "--weights", "seeded:swin_s"], new StringWriter(), e));
        }
        finally { File.Delete(json); }
    }

    /// <summary>A Swin file as --weights without --model runs as the Swin it holds (the default --model, deit_s, refused it).</summary>
    [Theory]
    [InlineData("swin_fmnist.safetensors", "| swin_fmnist ")]        // our config in the metadata
    [InlineData("swin_tiny_legacy.safetensors", "| swin ")]          // timm keys only: the layout is inferred
    public void Bench_takes_a_swin_file_without_model(string file, string row)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = VitSparse.Bench.BenchApp.Run(["--weights", Fixtures.Path_(file), "--warmup", "0", "--iterations", "1", "--threads", "1", "--peers", "none"], o, e);
        Assert.True(code == 0, e.ToString());
        Assert.Contains(row, o.ToString());
    }

    [Fact]
    public void Bad_swin_arguments_are_one_line_errors()
    {
        var (code, _, err) = Fixtures.Cli("inspect", "seeded:swin_x");
        Assert.Equal(2, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains("unknown Swin architecture 'swin_x'", err);
        Assert.Contains("swin_t", err);
        (code, _, err) = Fixtures.Cli("infer", "--weights", Fixtures.Path_("swin_tiny_legacy.safetensors"), "--arch", "swin_tt",
            "--input", Fixtures.Path_("swin_tiny_legacy.input.npy"), "--output", Temp("never.npy"));
        Assert.Equal(2, code);
        Assert.Contains("--arch: unknown Swin architecture 'swin_tt'", err);
        (code, _, err) = Fixtures.Cli("fidelity", "--weights", "seeded:swin_t", "--calib", Fixtures.Path_("swin_tiny_t09.input.npy"));
        Assert.Equal(2, code);
        Assert.Contains("seeded:swin_t is a Swin; this command takes a DeiT", err);
        // A plain timm file: no image size in the weights, so 224 is assumed and a 32-pixel batch does not fit.
        (code, _, err) = Fixtures.Cli("infer", "--weights", Fixtures.Path_("swin_tiny_legacy.safetensors"),
            "--input", Fixtures.Path_("swin_tiny_legacy.input.npy"), "--output", Temp("never.npy"));
        Assert.Equal(2, code);
        Assert.Contains("needs (batch, 3, 224, 224)", err);
        Assert.Single(err.Trim().Split('\n'));
    }
}
