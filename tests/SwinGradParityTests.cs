using VitSparse.Kernels;
using VitSparse.Runtime.Formats;
using VitSparse.Training;
using Xunit;
using Xunit.Abstractions;

namespace VitSparse.Tests;

/// <summary>
/// Swin gradients against float64 PyTorch autograd (tools/grad/make_swin_grad_fixtures.py) on three small random
/// Swins with sharp attention: shifted windows in both stages, maps that pad to whole windows, and pruned linears
/// stored sparse (BSR and CSR; dW must be exactly zero on every pruned weight). Each tensor must satisfy
/// max|Δ| ≤ 1e-4·max|g|, for 1, 2 and 3 threads, and the threads must agree bit for bit. In the kernel category,
/// so test.sh reruns it with AVX-512 and AVX2 off (every vector width).
/// </summary>
[Trait("Category", "Kernels")]
public class SwinGradParityTests(ITestOutputHelper output)
{
    public static TheoryData<string, string> Cases()
    {
        var d = new TheoryData<string, string>();
        foreach (var model in new[] { "shift", "pad", "masked" })
            foreach (var loss in new[] { "ce", "sq" }) d.Add(model, loss);
        return d;
    }

    sealed record Fixture(ParameterSet Weights, SafeTensorsFile File, float[] Images, int Batch, int[] Labels, double LabelSmoothing) : IDisposable
    {
        public void Dispose() => File.Dispose();

        public LossSpec Loss(string name) => new(LossSpec.Parse(name, "--loss"), LabelSmoothing);
    }

    static Fixture Load(string model)
    {
        string path = Fixtures.Path_($"swin_grad/{model}.safetensors");
        var weights = ParameterSet.Load(path, null);
        var file = new SafeTensorsFile(path);
        var images = file.GetFloats("input").ToArray();
        int batch = (int)file.Info("input").Shape[0];
        var labels = file.GetFloats("labels").ToArray().Select(v => (int)v).ToArray();
        return new Fixture(weights, file, images, batch, labels, double.Parse(file.Metadata["label_smoothing"], System.Globalization.CultureInfo.InvariantCulture));
    }

    static (double Loss, float[] Logits, ParameterSet Grads) Run(Fixture f, LossSpec loss, int threads)
    {
        using var team = new ThreadTeam(threads);
        var bp = new SwinBackprop(f.Weights, f.Batch, team);
        int classes = f.Weights.Model.NumClasses;
        var logits = new float[f.Batch * classes];
        var dLogits = new float[logits.Length];
        bp.Forward(f.Images, f.Batch, logits);
        double value = loss.Evaluate(logits, f.Batch, classes, f.Labels, default, dLogits);
        bp.Backward(dLogits);
        return (value, logits, bp.Gradients);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Gradients_match_pytorch_autograd_for_any_thread_count(string model, string lossName)
    {
        using var f = Load(model);
        var loss = f.Loss(lossName);
        ParameterSet? first = null;
        double worst = 0;
        string worstName = "";
        foreach (int threads in new[] { 1, 2, 3 })
        {
            var (value, logits, grads) = Run(f, loss, threads);
            Fixtures.AssertClose(f.File.GetFloats("logits"), logits, 1e-4, $"{model} logits");
            double expectedLoss = f.File.GetFloats($"loss.{lossName}")[0];
            Assert.True(Math.Abs(value - expectedLoss) <= 1e-5 * Math.Max(1, Math.Abs(expectedLoss)), $"loss {value} vs PyTorch {expectedLoss}");
            foreach (var name in grads.Names)
            {
                double rel = GradParityTests.RelativeError(f.File.GetFloats($"grad.{lossName}.{name}"), grads[name]);
                Assert.True(rel <= 1e-4, $"{model}/{lossName}/{threads} threads: dL/d{name} max|Δ|/max|g| = {rel:g3}");
                if (rel > worst) (worst, worstName) = (rel, name);
                if (f.Weights.MaskOf(name) is { } mask)
                    for (int i = 0; i < mask.Rows * mask.Cols; i++)
                        if (!mask.IsKept(i / mask.Cols, i % mask.Cols)) Assert.True(grads[name][i] == 0, $"dL/d{name}[{i}] is pruned but {grads[name][i]}");
            }
            if (first == null) { first = Snapshot(grads); continue; }
            foreach (var name in grads.Names)
                Assert.True(first[name].AsSpan().SequenceEqual(grads[name]), $"dL/d{name} differs between 1 and {threads} threads");
        }
        output.WriteLine($"{model}/{lossName} ({Isa.Describe()}, Vector<float> of {System.Numerics.Vector<float>.Count}): worst max|Δ|/max|g| = {worst:g3} ({worstName})");
    }

    static ParameterSet Snapshot(ParameterSet g)
    {
        var copy = ParameterSet.ZerosLike(g);
        foreach (var name in g.Names) g[name].CopyTo(copy[name], 0);
        return copy;
    }

    [Fact]
    public void The_fixtures_exercise_shifts_padding_and_masks()
    {
        // Guards against a fixture that would let a wrong mask, shift or padding pass: both stages shift, "pad" pads.
        using var shift = Load("shift");
        var c = shift.Weights.Swin!;
        Assert.All(Enumerable.Range(0, c.Stages.Count), s => Assert.True(c.StageShift(s) > 0 && c.Stages[s].Depth >= 2));
        using var pad = Load("pad");
        var p = pad.Weights.Swin!;
        Assert.All(Enumerable.Range(0, p.Stages.Count), s => Assert.True(p.PaddedResolution(s) > p.Resolution(s) && p.StageShift(s) > 0));
        using var masked = Load("masked");
        Assert.Contains("layers.1.downsample.reduction.weight", masked.Weights.Masks.Keys);
    }

    [Fact]
    public void The_parity_check_notices_a_wrong_bias_table_gradient()
    {
        // The squared-logits gradients are not the cross-entropy ones: the comparison must see that.
        using var f = Load("shift");
        var (_, _, grads) = Run(f, f.Loss("sq"), 1);
        const string table = "layers.0.blocks.1.attn.relative_position_bias_table";
        double rel = GradParityTests.RelativeError(f.File.GetFloats($"grad.ce.{table}"), grads[table]);
        Assert.True(rel > 1e-2, $"relative error {rel}");
    }

    [Fact]
    public void A_steady_state_step_allocates_nothing()
    {
        using var f = Load("pad");
        var bp = new SwinBackprop(f.Weights, f.Batch, ThreadTeam.Single);
        var loss = f.Loss("ce");
        var logits = new float[f.Batch * 5];
        var dLogits = new float[logits.Length];
        void Step()
        {
            bp.Forward(f.Images, f.Batch, logits);
            loss.Evaluate(logits, f.Batch, 5, f.Labels, default, dLogits);
            bp.Backward(dLogits);
        }
        Step();
        Assert.Equal(0, Fixtures.ThreadAllocations(Step));
    }

    [Fact]
    public void A_deit_parameter_set_is_refused_naming_the_weights()
    {
        using var f = GradParityTests.Load("uniform");
        var e = Assert.Throws<VitSparse.Runtime.InputException>(() => new SwinBackprop(f.Weights, 1, ThreadTeam.Single));
        Assert.Equal("--weights", e.Argument);
    }

    [Fact]
    public void A_batch_over_capacity_is_refused()
    {
        using var f = Load("shift");
        var bp = new SwinBackprop(f.Weights, 1, ThreadTeam.Single);
        var e = Assert.Throws<VitSparse.Runtime.InputException>(() => bp.Forward(f.Images, f.Batch, new float[f.Batch * 5]));
        Assert.Equal("batch", e.Argument);
    }
}
