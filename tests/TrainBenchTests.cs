using VitSparse.Bench;
using VitSparse.Training;
using Xunit;

namespace VitSparse.Tests;

/// <summary>`bench train --breakdown`: one row per step phase, each timed, on a small batch without the PyTorch peer.</summary>
public class TrainBenchTests
{
    /// <summary>Runs `bench train --breakdown` on a fixture without the timed peer run; the output and the breakdown's ms per phase.</summary>
    static (string Text, Dictionary<StepPhase, double> Phases) Train(string fixture, int batch, params string[] more)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = BenchApp.Run(["train", "--weights", Fixtures.Path_(fixture), "--batch", batch.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--warmup", "0", "--iterations", "2", "--breakdown", .. more], o, e);
        Assert.True(code == 0, e.ToString());
        string text = o.ToString();
        var phases = text.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal))
            .Select(l => l.Split('|', StringSplitOptions.TrimEntries)).Where(c => Enum.TryParse<StepPhase>(c[1], out _))
            .ToDictionary(c => Enum.Parse<StepPhase>(c[1]), c => double.Parse(c[2], System.Globalization.CultureInfo.InvariantCulture));
        return (text, phases);
    }

    [Fact]
    public void Breakdown_prints_every_phase_with_the_linear_products_timed()
    {
        var (text, phases) = Train("deit_fmnist.safetensors", 4, "--peers", "none");
        Assert.Contains("VitSparse breakdown: 2 more steps, profiled", text);
        foreach (var phase in Enum.GetValues<StepPhase>()) Assert.True(phases.ContainsKey(phase), $"no row for {phase}:\n{text}");
        foreach (var timed in new[] { StepPhase.FwdLinear, StepPhase.BwdLinearInput, StepPhase.BwdLinearWeight, StepPhase.AdamW })
            Assert.True(phases[timed] > 0, $"{timed} took no time:\n{text}");
    }

    /// <summary>A Swin trains through SwinBackprop (it crashed with an unhandled "not a DeiT" before), with its breakdown; the PyTorch peer is DeiT-only and says so.</summary>
    [Fact]
    public void A_swin_is_timed_with_its_breakdown()
    {
        var (text, phases) = Train("swin_fmnist.safetensors", 2, "--peers", "torch");
        Assert.Contains("| VitSparse ", text);
        Assert.Contains("swin_fmnist (swin_fmnist.safetensors), batch 2", text);
        Assert.Contains("skipped pytorch: the PyTorch training peer (tools/peers/torch_train_peer.py) builds DeiTs only", text);
        foreach (var timed in new[] { StepPhase.FwdLinear, StepPhase.FwdAttention, StepPhase.BwdAttention, StepPhase.BwdLinearWeight, StepPhase.BwdNormInput })
            Assert.True(phases[timed] > 0, $"{timed} took no time:\n{text}");
    }

    [Fact]
    public void A_bad_batch_is_refused_naming_the_option()
    {
        var e = new StringWriter();
        Assert.Equal(2, BenchApp.Run(["train", "--batch", "0", "--peers", "none"], new StringWriter(), e));
        Assert.Contains("--batch", e.ToString());
    }
}
