using System.Text.Json;
using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>`prune --method lpvit | block-magnitude | block-global` end to end on the ragged tiny model.</summary>
public class LpvitCliTests
{
    static readonly string Model = Fixtures.Path_("ragged_tiny.safetensors");
    static readonly string Calib = Fixtures.Path_("ragged_tiny.input.npy");

    [Fact]
    public void Lpvit_writes_bsr_layers_that_run_like_the_zeroed_dense_model_and_reports_each_layer()
    {
        string dir = Fixtures.TempDir();
        string output = Path.Combine(dir, "p.safetensors"), report = Path.Combine(dir, "r.json"), curves = Path.Combine(dir, "c.json");
        // 16×16 blocks on widths such as 76×48 and 48×22: ragged edge blocks everywhere, and a 10-row head.
        var (code, stdout, err) = Fixtures.Cli("prune", "--method", "lpvit", "--weights", Model, "--flops", "0.6", "--block", "16x16",
            "--calib", Calib, "-o", output, "--report", report, "--export-curves", curves);
        Assert.True(code == 0, err);
        Assert.Contains("holds 3 calibration images, fewer than the 2000 asked for; using all 3", err);
        Assert.Contains("| blocks.2.mlp.fc1 ", stdout);
        Assert.Contains("| head ", stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(report));
        var r = doc.RootElement;
        Assert.Equal("lpvit", r.GetProperty("method").GetString());
        Assert.Equal(3, r.GetProperty("calibration_images").GetInt32());
        // Few, coarse blocks: the search may end outside its tolerance, and says so.
        double ratio = r.GetProperty("flops_ratio").GetDouble();
        Assert.True(Math.Abs(ratio - 0.6) <= 0.02 + 1e-9 || err.Contains("outside the tolerance"), $"ratio {ratio}: {err}");
        Assert.Equal(2 + 4 * 3, r.GetProperty("layers").GetArrayLength()); // patch conv, 4 per block, head

        using (var file = new SafeTensorsFile(output))
        {
            var stored = SparseStorage.Read(file);
            Assert.NotEmpty(stored);
            Assert.All(stored.Values, l => Assert.Equal((WeightFormat.Bsr, 16, 16), (l.Format, l.BlockHeight, l.BlockWidth)));
        }
        // The BSR file runs as the dense model with the same zeros does.
        var pruned = VitModel.Load(output);
        var densified = VitModel.Load(output, new LoadOptions { Sparse = SparseMode.Off });
        var x = Fixtures.Npy_("ragged_tiny.input.npy");
        var a = new float[3 * 10];
        var b = new float[3 * 10];
        using (var s = new InferenceSession(pruned, 1)) s.Run(x.Data, 3, a);
        using (var s = new InferenceSession(densified, 1)) s.Run(x.Data, 3, b);
        Fixtures.AssertClose(b, a, 1e-4, "bsr vs dense");
        var contents = VitSparse.Pruning.Lpvit.CurveFile.Read(curves);
        Assert.Equal(14, contents.Curves.Count);
    }

    [Theory]
    [InlineData("block-magnitude")]
    [InlineData("block-global")]
    public void Baselines_need_no_calibration_and_meet_the_target(string method)
    {
        string dir = Fixtures.TempDir(), output = Path.Combine(dir, "p.safetensors"), report = Path.Combine(dir, "r.json");
        var (code, _, err) = Fixtures.Cli("prune", "--method", method, "--weights", Model, "--flops", "0.5", "--block", "8x8", "--skip-head", "-o", output, "--report", report);
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(File.ReadAllText(report));
        Assert.InRange(doc.RootElement.GetProperty("flops_ratio").GetDouble(), 0.45, 0.5);
        Assert.DoesNotContain(doc.RootElement.GetProperty("layers").EnumerateArray(), l => l.GetProperty("layer").GetString() == "head");
    }

    [Fact]
    public void Saved_gradients_reproduce_the_run()
    {
        string dir = Fixtures.TempDir();
        string g = Path.Combine(dir, "g.safetensors"), r1 = Path.Combine(dir, "r1.json"), r2 = Path.Combine(dir, "r2.json");
        var (c1, _, e1) = Fixtures.Cli("prune", "--method", "lpvit", "--weights", Model, "--flops", "0.7", "--block", "8x8", "--calib", Calib,
            "--save-gradients", g, "-o", Path.Combine(dir, "a.safetensors"), "--report", r1);
        Assert.True(c1 == 0, e1);
        var (c2, _, e2) = Fixtures.Cli("prune", "--method", "lpvit", "--weights", Model, "--flops", "0.7", "--block", "8x8", "--gradients", g,
            "-o", Path.Combine(dir, "b.safetensors"), "--report", r2);
        Assert.True(c2 == 0, e2);
        static string Layers(string path) => JsonDocument.Parse(File.ReadAllText(path)).RootElement.GetProperty("layers").ToString();
        Assert.Equal(Layers(r1), Layers(r2));
    }

    static void AssertRefused(string[] args, string message, string output)
    {
        var (code, _, err) = Fixtures.Cli(args);
        Assert.Equal(2, code);
        Assert.Contains(message, err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.False(File.Exists(output), "nothing is written on an error");
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(output)!));
    }

    [Fact]
    public void Bad_input_is_one_line_and_writes_nothing()
    {
        string dir = Fixtures.TempDir(), o = Path.Combine(dir, "p.safetensors");
        string[] Args(params string[] extra) => ["prune", "--weights", Model, "-o", o, .. extra];
        AssertRefused(Args("--method", "lpvit", "--calib", Calib, "--flops", "0.5", "--block", "64x64"), "larger than layer blocks.0.attn.proj (48×22)", o);
        AssertRefused(Args("--method", "lpvit", "--calib", Calib, "--flops", "0"), "--flops: must be in (0, 1]", o);
        AssertRefused(Args("--method", "block-global", "--flops", "1.5"), "--flops: must be in (0, 1]", o);
        AssertRefused(Args("--method", "block-magnitude", "--flops", "0.01"), "unreachable", o);
        AssertRefused(Args("--method", "lpvit", "--calib", Calib, "--flops", "0.001", "--block", "4x4"), "binding: the caps of all 14 pruned layers", o);
        AssertRefused(Args("--method", "lpvit", "--flops", "0.5"), "--calib: LPViT needs calibration images", o);
        AssertRefused(Args("--method", "lpvit", "--calib", Calib, "--flops", "0.5", "--block", "8"), "--block: '8' is not a block shape", o);
        AssertRefused(Args("--method", "lpvit", "--calib", Calib, "--flops", "0.5", "--target", "deit_s"), "--target: applies to --method snp only", o);
        AssertRefused(Args("--method", "snp", "--target", "deit_s", "--flops", "0.5"), "--flops: applies to --method lpvit", o);

        string wrong = Path.Combine(Fixtures.TempDir(), "wrong.npy");
        Npy.Write(wrong, [2, 3, 28, 28], new float[2 * 3 * 28 * 28]);
        AssertRefused(Args("--method", "lpvit", "--calib", wrong, "--flops", "0.5"), "needs (batch, 3, 32, 32)", o);
    }

    [Fact]
    public void Gradients_with_nan_are_refused_naming_the_tensor()
    {
        using var file = new SafeTensorsFile(Model);
        var c = VitModel.ReadConfig(file, null);
        var dense = DenseTensors.From(new SafeTensorsSource(file), c);
        var layers = VitSparse.Pruning.Lpvit.PrunableLayer.Of(c);
        var grads = layers.ToDictionary(l => l.Weight, l => new float[l.Numel]);
        grads["blocks.1.mlp.fc2.weight"][5] = float.NaN;
        string dir = Fixtures.TempDir(), g = Path.Combine(dir, "g.safetensors"), o = Path.Combine(dir, "out", "p.safetensors");
        Directory.CreateDirectory(Path.GetDirectoryName(o)!);
        VitSparse.Pruning.Lpvit.TaylorGradients.Write(g, dense, grads, 1);
        AssertRefused(["prune", "--method", "lpvit", "--weights", Model, "--flops", "0.5", "--gradients", g, "-o", o], "gradient 'blocks.1.mlp.fc2.weight' has 1 NaN/Inf", o);
    }
}
