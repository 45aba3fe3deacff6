using System.Text.Json;
using VitSparse.Runtime.Formats;
using VitSparse.Training;
using Xunit;

namespace VitSparse.Tests;

/// <summary>AdamW against torch.optim.AdamW (float64): three steps with clipping and DeiT's no-decay groups.</summary>
public class AdamWTests
{
    [Fact]
    public void Three_steps_match_torch_adamw()
    {
        var parameters = ParameterSet.Load(Fixtures.Path_("grad/ragged.safetensors"), null);
        var start = parameters.Names.ToDictionary(n => n, n => parameters[n].ToArray());
        using var fixture = new SafeTensorsFile(Fixtures.Path_("grad/ragged.safetensors"));
        using var expected = new SafeTensorsFile(Fixtures.Path_("grad/adamw.safetensors"));
        var lr = JsonSerializer.Deserialize<double[]>(expected.Metadata["lr"])!;
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var opt = new AdamW(parameters, new AdamWSettings(WeightDecay: double.Parse(expected.Metadata["weight_decay"], inv), ClipNorm: double.Parse(expected.Metadata["clip"], inv)));
        var grads = ParameterSet.Zeros(parameters.Config);
        string[] losses = ["ce", "kl", "sq"];
        var norms = new double[3];
        for (int step = 0; step < 3; step++)
        {
            foreach (var n in grads.Names) fixture.GetFloats($"grad.{losses[step]}.{n}").CopyTo(grads[n]);
            norms[step] = opt.Step(grads, lr[step]);
        }
        Assert.Contains(norms, x => x > double.Parse(expected.Metadata["clip"], inv)); // clipping is exercised
        // Compare the change of each tensor, which is what the optimizer computes (the values are far larger).
        foreach (var n in parameters.Names)
        {
            var want = expected.GetFloats(n).ToArray().Select((v, i) => v - start[n][i]).ToArray();
            var got = parameters[n].Select((v, i) => v - start[n][i]).ToArray();
            double rel = GradParityTests.RelativeError(want, got);
            Assert.True(rel <= 1e-4, $"{n}: update max|Δ|/max|update| = {rel:g3}");
        }
        Assert.Equal(3, opt.Steps);
    }

    [Fact]
    public void Weight_decay_skips_norms_biases_tokens_and_pos_embed()
    {
        Assert.True(AdamW.Decays("blocks.0.attn.qkv.weight"));
        Assert.True(AdamW.Decays("patch_embed.proj.weight"));
        Assert.True(AdamW.Decays("head.weight"));
        Assert.False(AdamW.Decays("blocks.0.norm1.weight"));
        Assert.False(AdamW.Decays("norm.weight"));
        Assert.False(AdamW.Decays("head.bias"));
        Assert.False(AdamW.Decays("cls_token"));
        Assert.False(AdamW.Decays("pos_embed"));
    }

    [Fact]
    public void A_nan_gradient_stops_the_step_and_changes_nothing()
    {
        var parameters = ParameterSet.Load(Fixtures.Path_("grad/uniform.safetensors"), null);
        var before = parameters["head.weight"].ToArray();
        var grads = ParameterSet.Zeros(parameters.Config);
        grads["blocks.1.mlp.fc2.weight"][3] = float.NaN;
        var opt = new AdamW(parameters, new AdamWSettings());
        var e = Assert.Throws<VitSparse.Runtime.InputException>(() => opt.Step(grads, 1e-3));
        Assert.Contains("step 1", e.Message);
        Assert.Equal(before, parameters["head.weight"]);
        Assert.Equal(0, opt.Steps);
        Assert.Throws<VitSparse.Runtime.InputException>(() => opt.Step(ParameterSet.Zeros(parameters.Config), 0));
    }
}
