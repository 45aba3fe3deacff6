using VitSparse.Bench;
using VitSparse.Training;
using Xunit;

namespace VitSparse.Tests;

/// <summary>`bench train --breakdown`: one row per step phase, each timed, on a small batch without the PyTorch peer.</summary>
public class TrainBenchTests
{
    [Fact]
    public void Breakdown_prints_every_phase_with_the_linear_products_timed()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = BenchApp.Run(["train", "--weights", Fixtures.Path_("deit_fmnist.safetensors"), "--batch", "4", "--warmup", "0", "--iterations", "2",
            "--peers", "none", "--breakdown"], o, e);
        Assert.True(code == 0, e.ToString());
        string text = o.ToString();
        Assert.Contains("VitSparse breakdown: 2 more steps, profiled", text);
        var rows = text.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal))
            .Select(l => l.Split('|', StringSplitOptions.TrimEntries)).ToDictionary(c => c[1], c => c[2]);
        foreach (var phase in Enum.GetValues<StepPhase>()) Assert.True(rows.ContainsKey(phase.ToString()), $"no row for {phase}:\n{text}");
        foreach (var timed in new[] { StepPhase.FwdLinear, StepPhase.BwdLinearInput, StepPhase.BwdLinearWeight, StepPhase.AdamW })
            Assert.True(double.Parse(rows[timed.ToString()], System.Globalization.CultureInfo.InvariantCulture) > 0, $"{timed} took no time:\n{text}");
    }

    /// <summary>A Swin trains through SwinBackprop (it crashed with an unhandled "not a DeiT" before), with its breakdown; the PyTorch peer is DeiT-only and says so.</summary>
    [Fact]
    public void A_swin_is_timed_with_its_breakdown()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = BenchApp.Run(["train", "--weights", Fixtures.Path_("swin_fmnist.safetensors"), "--batch", "2", "--warmup", "0", "--iterations", "1",
            "--peers", "torch", "--breakdown"], o, e);
        Assert.True(code == 0, e.ToString());
        string text = o.ToString();
        Assert.Contains("| VitSparse ", text);
        Assert.Contains("swin_fmnist (swin_fmnist.safetensors), batch 2", text);
        Assert.Contains("skipped pytorch: the PyTorch training peer (tools/peers/torch_train_peer.py) builds DeiTs only", text);
        var rows = text.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal))
            .Select(l => l.Split('|', StringSplitOptions.TrimEntries)).Where(c => Enum.TryParse<StepPhase>(c[1], out _)).ToDictionary(c => c[1], c => c[2]);
        foreach (var timed in new[] { StepPhase.FwdLinear, StepPhase.FwdAttention, StepPhase.BwdAttention, StepPhase.BwdLinearWeight, StepPhase.BwdNormInput })
            Assert.True(double.Parse(rows[timed.ToString()], System.Globalization.CultureInfo.InvariantCulture) > 0, $"{timed} took no time:\n{text}");
    }

    [Fact]
    public void A_bad_batch_is_refused_naming_the_option()
    {
        var e = new StringWriter();
        Assert.Equal(2, BenchApp.Run(["train", "--batch", "0", "--peers", "none"], new StringWriter(), e));
        Assert.Contains("--batch", e.ToString());
    }
}
