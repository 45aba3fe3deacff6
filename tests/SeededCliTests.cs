using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>seeded:ARCH is taken wherever weights are, and everything computed from synthetic weights says so.</summary>
public class SeededCliTests
{
    const string Notice = "synthetic weights (seeded:deit_t): outputs are for structure and speed studies; classes and probabilities mean nothing";

    [Fact]
    public void Infer_eval_inspect_and_fidelity_take_seeded_weights_and_say_they_are_synthetic()
    {
        string dir = Fixtures.TempDir(), x = Path.Combine(dir, "x.npy"), y = Path.Combine(dir, "y.npy"), logits = Path.Combine(dir, "l.npy");
        var c = Architectures.Get("deit_t");
        var images = new float[2 * c.ImageElements];
        SeededWeights.FillInput(images);
        Npy.Write(x, [2, 3, 224, 224], images);
        CliMistakeTests.WriteIntegers(y, "<i8", [1, 2]);

        var (code, stdout, err) = Fixtures.Cli("infer", "--weights", "seeded:deit_t", "--input", Fixtures.Path_("photo_fruits.png"));
        Assert.True(code == 0, err);
        Assert.Equal(Notice, stdout.Split('\n')[0]);
        (code, stdout, err) = Fixtures.Cli("infer", "--weights", "seeded:deit_t", "--input", x, "--output", logits);
        Assert.True(code == 0, err);
        Assert.StartsWith(Notice, stdout);
        Assert.Equal(new[] { 2, 1000 }, Npy.Read(logits).Shape);
        (code, stdout, err) = Fixtures.Cli("eval", "--weights", "seeded:deit_t", "--npy", x, y, "--json", Path.Combine(dir, "e.json"));
        Assert.True(code == 0, err);
        Assert.Contains(Notice, stdout);
        Assert.Contains("\"synthetic_weights\": \"seeded:deit_t\"", File.ReadAllText(Path.Combine(dir, "e.json")));
        (code, stdout, err) = Fixtures.Cli("inspect", "seeded:deit_t");
        Assert.True(code == 0, err);
        Assert.StartsWith("model deit_tiny_patch16_224 (seeded:deit_t, synthetic weights)", stdout);
        Assert.Contains("total: 5,717,416 params", stdout);
        (code, stdout, err) = Fixtures.Cli("fidelity", "--weights", "seeded:deit_t", "--calib", "seeded", "--calib-images", "1", "--ratios", "0.5", "--criteria", "l2,gm");
        Assert.True(code == 0, err);
        Assert.Contains(Notice, stdout);
        Assert.Contains("| gm ", stdout);
    }

    [Fact]
    public void A_model_pruned_from_seeded_weights_stays_marked_synthetic()
    {
        string dir = Fixtures.TempDir(), pruned = Path.Combine(dir, "p.safetensors");
        var (code, stdout, err) = Fixtures.Cli("prune", "--weights", "seeded:deit_t", "--target", "deit_t_0.6g", "--criterion", "l2", "-o", pruned);
        Assert.True(code == 0, err);
        Assert.StartsWith(Notice, stdout);
        Assert.Contains("with l2 (", stdout);
        using (var f = new SafeTensorsFile(pruned)) Assert.Equal("seeded:deit_t", Synthetic.Origin(f));
        (code, stdout, _) = Fixtures.Cli("inspect", pruned);
        Assert.Equal(0, code);
        Assert.Contains("synthetic weights from seeded:deit_t", stdout.Split('\n')[0]);
        (code, stdout, err) = Fixtures.Cli("infer", "--weights", pruned, "--input", Fixtures.Path_("gradient.jpg"));
        Assert.True(code == 0, err);
        Assert.Equal(Notice, stdout.Split('\n')[0]);
        // A real model's outputs carry no such line.
        (code, stdout, _) = Fixtures.Cli("infer", "--weights", Fixtures.Path_("deit_fmnist.safetensors"), "--input", Fixtures.Path_("gradient.jpg"));
        Assert.Equal(0, code);
        Assert.DoesNotContain("synthetic", stdout);
    }
}
