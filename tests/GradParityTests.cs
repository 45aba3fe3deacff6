using VitSparse.Kernels;
using VitSparse.Runtime.Formats;
using VitSparse.Training;
using Xunit;
using Xunit.Abstractions;

namespace VitSparse.Tests;

/// <summary>
/// Gradients of every loss against float64 PyTorch autograd (tools/grad/make_grad_fixtures.py) on three
/// small seeded models: uniform heads, ragged per-head Q/K and V widths, distilled, and ragged with pruned linears
/// stored sparse (BSR and CSR; dW must be exactly zero on every pruned weight). Each tensor must
/// satisfy max|Δ| ≤ 1e-4·max|g|, for 1, 2 and 3 threads, and the threads must agree bit for bit.
/// </summary>
[Trait("Category", "Kernels")]
public class GradParityTests(ITestOutputHelper output)
{
    public static TheoryData<string, string> Cases()
    {
        var d = new TheoryData<string, string>();
        foreach (var model in new[] { "uniform", "ragged", "distilled", "masked" })
            foreach (var loss in new[] { "ce", "kl", "mse", "sq" }) d.Add(model, loss);
        return d;
    }

    internal sealed record Fixture(ParameterSet Weights, SafeTensorsFile File, float[] Images, int Batch, int[] Labels, float[] Teacher, double LabelSmoothing, double Temperature) : IDisposable
    {
        public void Dispose() => File.Dispose();

        public LossSpec Loss(string name) => new(LossSpec.Parse(name, "--loss"), LabelSmoothing, Temperature);
    }

    internal static Fixture Load(string model)
    {
        string path = Fixtures.Path_($"grad/{model}.safetensors");
        var weights = ParameterSet.Load(path, null);
        var file = new SafeTensorsFile(path);
        var images = file.GetFloats("input").ToArray();
        int batch = (int)file.Info("input").Shape[0];
        var labels = file.GetFloats("labels").ToArray().Select(v => (int)v).ToArray();
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        return new Fixture(weights, file, images, batch, labels, file.GetFloats("teacher_logits").ToArray(),
            double.Parse(file.Metadata["label_smoothing"], inv), double.Parse(file.Metadata["temperature"], inv));
    }

    /// <summary>Loss and gradients of one fixture's model on its batch, on a team of the given size.</summary>
    internal static (double Loss, ParameterSet Grads) Run(Fixture f, LossSpec loss, int threads)
    {
        using var team = new ThreadTeam(threads);
        var bp = new DeitBackprop(f.Weights, f.Batch, team);
        int classes = f.Weights.Config.NumClasses;
        var logits = new float[f.Batch * classes];
        var dLogits = new float[logits.Length];
        bp.Forward(f.Images, f.Batch, logits);
        double value = loss.Evaluate(logits, f.Batch, classes, f.Labels, f.Teacher, dLogits);
        bp.Backward(dLogits);
        return (value, bp.Gradients);
    }

    /// <summary>max|Δ| / max|expected| over one tensor.</summary>
    internal static double RelativeError(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double maxRef = 0, maxDiff = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            maxRef = Math.Max(maxRef, Math.Abs(expected[i]));
            double d = Math.Abs(expected[i] - (double)actual[i]);
            if (!(d <= maxDiff)) maxDiff = d; // NaN propagates as a failure
        }
        return maxRef == 0 ? maxDiff : maxDiff / maxRef;
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
            var (value, grads) = Run(f, loss, threads);
            double expectedLoss = f.File.GetFloats($"loss.{lossName}")[0];
            Assert.True(Math.Abs(value - expectedLoss) <= 1e-5 * Math.Max(1, Math.Abs(expectedLoss)), $"loss {value} vs PyTorch {expectedLoss}");
            foreach (var name in grads.Names)
            {
                double rel = RelativeError(f.File.GetFloats($"grad.{lossName}.{name}"), grads[name]);
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
        var copy = ParameterSet.Zeros(g.Config);
        foreach (var name in g.Names) g[name].CopyTo(copy[name], 0);
        return copy;
    }

    [Fact]
    public void A_steady_state_step_allocates_nothing()
    {
        using var f = Load("distilled");
        var bp = new DeitBackprop(f.Weights, f.Batch, ThreadTeam.Single);
        var loss = f.Loss("kl");
        var logits = new float[f.Batch * 5];
        var dLogits = new float[logits.Length];
        void Step()
        {
            bp.Forward(f.Images, f.Batch, logits);
            loss.Evaluate(logits, f.Batch, 5, f.Labels, f.Teacher, dLogits);
            bp.Backward(dLogits);
        }
        Step();
        Assert.Equal(0, Fixtures.ThreadAllocations(Step));
    }

    [Fact]
    public void The_parity_check_notices_a_wrong_gradient()
    {
        // The squared-logits gradients are not the cross-entropy ones: the comparison must see that.
        using var f = Load("ragged");
        var (_, grads) = Run(f, f.Loss("sq"), 1);
        double rel = RelativeError(f.File.GetFloats("grad.ce.blocks.0.attn.qkv.weight"), grads["blocks.0.attn.qkv.weight"]);
        Assert.True(rel > 1e-2, $"relative error {rel}");
    }

    [Fact]
    public void A_label_out_of_range_is_refused_naming_the_labels()
    {
        using var f = Load("uniform");
        var spec = f.Loss("ce");
        var e = Assert.Throws<VitSparse.Runtime.InputException>(() =>
            spec.Evaluate(new float[f.Batch * 5], f.Batch, 5, [0, 5, 1], default, new float[f.Batch * 5]));
        Assert.Equal("labels", e.Argument);
    }
}
