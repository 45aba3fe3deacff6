using System.Text.Json;
using VitSparse.Cli;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

public class PruneCliTests
{
    static (int Code, string Out, string Err) Run(params string[] args) => Fixtures.Cli(args);

    [Fact]
    public void Prune_writes_a_ragged_model_that_loads_runs_and_reports()
    {
        string dir = Fixtures.TempDir();
        string ratios = Path.Combine(dir, "r.json"), output = Path.Combine(dir, "p.safetensors"), report = Path.Combine(dir, "p.json");
        File.WriteAllText(ratios, "{\"embed\": 0.25, \"default\": {\"qk\": 0.5, \"v\": 0.3, \"mlp\": 0.5}}");
        var (code, stdout, err) = Run("prune", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--ratios", ratios,
            "--calib", Fixtures.Path_("ragged_tiny.input.npy"), "-o", output, "--report", report);
        Assert.True(code == 0, err);
        Assert.Contains("calibrating on 3 images", stdout);
        var model = VitModel.Load(output);
        Assert.Equal(36, model.Config.EmbedDim);
        Assert.Equal(new[] { 3, 5, 7 }, model.Config.Blocks[0].QkWidths); // 5, 9, 13 minus round-half-even(half)
        Assert.Equal(0.2f, model.Config.Blocks[1].AttnScale);
        var logits = new float[10];
        using (var s = new InferenceSession(model, 1)) s.Run(new float[3 * 32 * 32], 1, logits);
        Assert.All(logits, x => Assert.True(float.IsFinite(x)));
        using var doc = JsonDocument.Parse(File.ReadAllText(report));
        Assert.Equal("snp", doc.RootElement.GetProperty("criterion").GetString());
        Assert.Contains("pruned ", stdout);
        Assert.Contains(" with snp (", stdout);
        Assert.Equal(3, doc.RootElement.GetProperty("calibration_images").GetInt32());
        Assert.True(doc.RootElement.GetProperty("macs_after").GetInt64() < doc.RootElement.GetProperty("macs_before").GetInt64());
        var (icode, inspect, _) = Run("inspect", output);
        Assert.Equal(0, icode);
        Assert.Contains("| 3,5,7 ", inspect);
    }

    [Fact]
    public void Prune_to_a_released_structure_from_seeded_weights()
    {
        string output = Path.Combine(Fixtures.TempDir(), "t.safetensors");
        var (code, stdout, err) = Run("prune", "--weights", "seeded:deit_t", "--target", "deit_t_0.6g", "--criterion", "l2", "-o", output);
        Assert.True(code == 0, err);
        Assert.Contains("1.254 → 0.638 GMAC", stdout);
    }

    [Theory]
    [InlineData("{\"default\": {\"qk\": 1.5}}", "outside [0, 1)")]
    [InlineData("{\"blocks\": []}", "has 0 entries")]
    public void Bad_ratios_fail_cleanly_without_output(string json, string expected)
    {
        string dir = Fixtures.TempDir();
        string ratios = Path.Combine(dir, "r.json"), output = Path.Combine(dir, "p.safetensors");
        File.WriteAllText(ratios, json);
        var (code, _, err) = Run("prune", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--ratios", ratios, "--criterion", "l2", "-o", output);
        Assert.Equal(2, code);
        Assert.Contains(expected, err);
        Assert.Contains("r.json", err);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Calibration_of_the_wrong_shape_names_the_option()
    {
        string dir = Fixtures.TempDir();
        string calib = Path.Combine(dir, "c.npy");
        Npy.Write(calib, [2, 3, 16, 16], new float[2 * 3 * 16 * 16]);
        var (code, _, err) = Run("prune", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--macs", "0.001G", "--calib", calib, "-o", Path.Combine(dir, "o.safetensors"));
        Assert.Equal(2, code);
        Assert.StartsWith("error: --calib:", err);
        (code, _, err) = Run("prune", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--macs", "0.001G", "-o", Path.Combine(dir, "o.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("needs calibration images", err);
        (code, _, err) = Run("prune", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--macs", "lots", "--criterion", "l2", "-o", Path.Combine(dir, "o.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("'lots' is not a MAC count", err);
        (code, _, err) = Run("prune", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--macs", "1G", "--target", "deit_t_0.6g", "-o", Path.Combine(dir, "o.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("exactly one of --target, --ratios, --macs", err);
    }

    [Fact]
    public void Fidelity_ranks_snp_above_its_reverse()
    {
        var (code, stdout, err) = Run("fidelity", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--calib", Fixtures.Path_("ragged_tiny.input.npy"),
            "--ratios", "0.5", "--criteria", "snp,reverse,random");
        Assert.True(code == 0, err);
        double Value(string name) => double.Parse(stdout.Split('\n').Single(l => l.StartsWith($"| {name} ")).Split('|')[2], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Value("snp") > Value("reverse"), stdout);
        Assert.DoesNotContain("ReverseSnp", stdout);
    }
}
