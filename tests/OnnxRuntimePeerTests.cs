using System.Text.Json;
using VitSparse.Bench;
using Xunit;

namespace VitSparse.Tests;

/// <summary>bench's ONNX Runtime peer (NuGet Microsoft.ML.OnnxRuntime): measured beside VitSparse, its version in the name, its logits checked.</summary>
public class OnnxRuntimePeerTests
{
    [Fact]
    public void The_ort_peer_runs_beside_vitsparse_and_reports_its_version_and_logit_difference()
    {
        string json = Path.Combine(Fixtures.TempDir(), "bench.json");
        var o = new StringWriter();
        var e = new StringWriter();
        int code = BenchApp.Run(["--model", "ragged_tiny", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--peers", "ort", "--ort-export", "vitsparse",
            "--warmup", "1", "--iterations", "7", "--threads", "1", "--json", json], o, e);
        Assert.True(code == 0, e.ToString());
        string version = Microsoft.ML.OnnxRuntime.OrtEnv.Instance().GetVersionString();
        Assert.Equal("1.31.1", version);
        Assert.Contains($"| onnxruntime {version} (vitsparse export) ", o.ToString());
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var rows = doc.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(["VitSparse", $"onnxruntime {version} (vitsparse export)"], rows.Select(r => r.GetProperty("runtime").GetString()));
        var ort = rows[1];
        Assert.Equal(7, ort.GetProperty("iterations").GetInt32());
        Assert.Equal(1, ort.GetProperty("threads").GetInt32());
        Assert.True(ort.GetProperty("vit_sparse_over_peer").GetDouble() > 0);
        double diff = ort.GetProperty("max_abs_logit_diff").GetDouble();
        Assert.True(diff < 1e-4, $"ONNX Runtime and VitSparse logits differ by {diff}");
    }

    [Fact]
    public void An_unknown_exporter_is_refused()
    {
        var e = new StringWriter();
        Assert.Equal(2, BenchApp.Run(["--peers", "ort", "--ort-export", "tf2onnx"], new StringWriter(), e));
        Assert.Equal("error: --ort-export: 'tf2onnx' is not one of auto, torch, vitsparse", e.ToString().Trim());
    }
}
