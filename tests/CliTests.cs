using VitSparse.Cli;
using VitSparse.Runtime.Formats;
using Xunit;

namespace VitSparse.Tests;

public class CliTests
{
    static (int Code, string Out, string Err) Run(params string[] args) => Fixtures.Cli(args);

    [Fact]
    public void Infer_on_a_ragged_model_matches_pytorch()
    {
        string output = Path.Combine(Fixtures.TempDir(), "y.npy");
        var (code, _, err) = Run("infer", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--input", Fixtures.Path_("ragged_tiny.input.npy"), "--output", output, "--threads", "2");
        Assert.True(code == 0, err);
        var y = Npy.Read(output);
        Assert.Equal(new[] { 3, 10 }, y.Shape);
        Fixtures.AssertClose(Fixtures.Npy_("ragged_tiny.logits.npy").Data, y.Data);
    }

    [Fact]
    public void Inspect_shows_ragged_widths_params_and_macs()
    {
        var (code, output, err) = Run("inspect", Fixtures.Path_("ragged_tiny.safetensors"));
        Assert.True(code == 0, err);
        Assert.Contains("VitSparse metadata", output);
        Assert.Contains("| 5,9,13 ", output);
        Assert.Contains("| 7,4,11 ", output);
        Assert.Contains("blocks.2.attn.qkv", output);
        Assert.Contains("GMAC per image", output);
    }

    [Fact]
    public void Inspect_of_a_plain_timm_checkpoint_says_it_inferred_the_widths()
    {
        var (code, output, _) = Run("inspect", Fixtures.Path_("timm_uniform_f16.safetensors"));
        Assert.Equal(0, code);
        Assert.Contains("inferred from tensor shapes", output);
    }

    [Fact]
    public void Wrong_input_shape_is_one_line_nonzero_exit_and_no_output_file()
    {
        string dir = Fixtures.TempDir();
        string input = Path.Combine(dir, "x.npy"), output = Path.Combine(dir, "y.npy");
        Npy.Write(input, [1, 3, 28, 28], new float[3 * 28 * 28]);
        var (code, _, err) = Run("infer", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--input", input, "--output", output);
        Assert.Equal(2, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.StartsWith("error: --input:", err);
        Assert.Contains("(batch, 3, 32, 32)", err);
        Assert.False(File.Exists(output));
        Assert.Single(Directory.GetFiles(dir));
    }

    [Fact]
    public void Missing_or_corrupt_weights_are_reported_by_file()
    {
        string dir = Fixtures.TempDir();
        string bad = Path.Combine(dir, "bad.safetensors");
        File.WriteAllBytes(bad, [9, 0, 0, 0, 0, 0, 0, 0, (byte)'{']);
        var (code, _, err) = Run("inspect", bad);
        Assert.Equal(2, code);
        Assert.Contains("bad.safetensors", err);
        (code, _, err) = Run("infer", "--weights", Path.Combine(dir, "none.safetensors"), "--input", Fixtures.Path_("ragged_tiny.input.npy"), "--output", Path.Combine(dir, "y.npy"));
        Assert.Equal(2, code);
        Assert.Equal($"error: --weights: {dir}/none.safetensors: file not found", err.Trim());
    }

    [Fact]
    public void Infer_on_image_files_prints_top5_with_class_names()
    {
        var (code, stdout, err) = Run("infer", "--weights", Fixtures.Path_("deit_fmnist.safetensors"), "--input", Fixtures.Path_("photo_fruits.png"), Fixtures.Path_("gradient.jpg"));
        Assert.True(code == 0, err);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(13, lines.Length);
        Assert.Equal("class names: model metadata", lines[0]);
        lines = lines[1..];
        Assert.EndsWith("photo_fruits.png", lines[0]);
        Assert.EndsWith("gradient.jpg", lines[6]);
        var names = new[] { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" };
        var probs = lines.Skip(1).Take(5).Select(l => double.Parse(l.Trim().Split('%')[0], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(probs.OrderByDescending(p => p), probs);
        Assert.All(lines.Skip(1).Take(5), l => Assert.Contains(names, n => l.EndsWith(n)));
        (code, _, err) = Run("infer", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--input", Fixtures.Path_("ragged_tiny.input.npy"));
        Assert.Equal(2, code);
        Assert.Contains("--output", err);
        (code, _, err) = Run("infer", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--input", Fixtures.Path_("ragged_tiny.logits.npy") + ".png");
        Assert.Equal(2, code);
        Assert.Contains("file not found", err);
    }

    [Fact]
    public void Eval_on_npy_prints_accuracy_and_writes_json()
    {
        string dir = Fixtures.TempDir();
        string y = Path.Combine(dir, "y.npy"), json = Path.Combine(dir, "e.json");
        var golden = Fixtures.Npy_("ragged_tiny.logits.npy").Data;
        var labels = Enumerable.Range(0, 3).Select(i => (float)Array.IndexOf(golden, golden.AsSpan(i * 10, 10).ToArray().Max(), i * 10) % 10).ToArray();
        Npy.Write(y, [3], labels);
        var (code, stdout, err) = Run("eval", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--npy", Fixtures.Path_("ragged_tiny.input.npy"), y, "--json", json, "--batch", "2");
        Assert.True(code == 0, err);
        Assert.Contains("3 images, top-1 100.00%, top-5 100.00%", stdout);
        Assert.Contains("\"top1\": 1", File.ReadAllText(json));
        (code, _, err) = Run("eval", "--weights", Fixtures.Path_("ragged_tiny.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("exactly one of --idx, --npy", err);
    }

    [Fact]
    public void Missing_required_option_is_a_usage_error()
    {
        var (code, _, err) = Run("infer", "--weights", "w.safetensors");
        Assert.NotEqual(0, code);
        Assert.Contains("--input", err);
    }
}
