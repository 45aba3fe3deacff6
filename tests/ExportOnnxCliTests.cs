using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// `vitsparse export-onnx` refuses bad input with one line and exit code 2, before any work where it can
/// (an unwritable output, a bad --opset or --batch), and never leaves a file, partial or otherwise.
/// </summary>
public class ExportOnnxCliTests
{
    static readonly string Fmnist = Fixtures.Path_("deit_fmnist.safetensors");

    static string Fails(params string[] args)
    {
        var (code, stdout, err) = Fixtures.Cli(args);
        Assert.True(code == 2, $"exit {code}: {stdout}{err}");
        Assert.Single(err.TrimEnd().Split('\n'));
        return err.TrimEnd();
    }

    [Fact]
    public void An_unwritable_output_is_refused_before_the_weights_are_read()
    {
        string dir = Fixtures.TempDir();
        // The weights do not exist either: the output is checked first, so no work is done.
        string err = Fails("export-onnx", "--weights", Path.Combine(dir, "missing.safetensors"), "-o", Path.Combine(dir, "no", "such", "m.onnx"));
        Assert.StartsWith("error: --output: ", err);
        Assert.Contains("does not exist", err);
        Assert.StartsWith("error: --output: ", Fails("export-onnx", "--weights", Fmnist, "-o", dir));
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    [Theory]
    [InlineData("16")]
    [InlineData("22")]
    public void An_opset_outside_the_written_range_is_refused(string opset)
    {
        string dir = Fixtures.TempDir();
        string err = Fails("export-onnx", "--weights", Fmnist, "-o", Path.Combine(dir, "m.onnx"), "--opset", opset);
        Assert.Equal($"error: --opset: opset {opset} is not supported; the exporter writes opset 17 to 21 (LayerNormalization needs 17)", err);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-2")]
    [InlineData("many")]
    public void A_bad_batch_is_refused(string batch)
    {
        string dir = Fixtures.TempDir();
        Assert.StartsWith($"error: --batch: '{batch}' is neither 'dynamic' nor a number", Fails("export-onnx", "--weights", Fmnist, "-o", Path.Combine(dir, "m.onnx"), "--batch", batch));
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    /// <summary>deit_fmnist's tensors plus <paramref name="extra"/>: a model kind the DeiT graph cannot express.</summary>
    static string WithExtraTensors(string dir, params (string Name, long[] Shape)[] extra)
    {
        string path = Path.Combine(dir, "other.safetensors");
        using var src = new SafeTensorsFile(Fmnist);
        var tensors = src.Tensors.Select(t => new TensorToWrite(t.Name, t.Shape, src.GetFloats(t.Name).ToArray())).ToList();
        foreach (var (name, shape) in extra) tensors.Add(new TensorToWrite(name, shape, new float[shape.Aggregate(1L, (a, b) => a * b)]));
        SafeTensorsWriter.Write(path, tensors, src.Metadata.ToDictionary());
        return path;
    }

    [Fact]
    public void A_model_kind_outside_deit_is_refused_and_an_existing_output_is_kept()
    {
        string dir = Fixtures.TempDir(), onnx = Path.Combine(dir, "m.onnx");
        File.WriteAllText(onnx, "the previous export");
        string layerScale = WithExtraTensors(dir, ("blocks.0.ls1.gamma", [192]));
        string err = Fails("export-onnx", "--weights", layerScale, "-o", onnx);
        Assert.Equal($"error: {layerScale}: tensor 'blocks.0.ls1.gamma' is not part of a DeiT (it suggests LayerScale (DeiT III, CaiT)); " +
            "the ONNX exporter writes DeiT models (dense, ragged, distilled, sparse) only and would drop it", err);
        Assert.Equal("the previous export", File.ReadAllText(onnx));
        Assert.Equal(2, Directory.GetFileSystemEntries(dir).Length);   // no temporary file left beside it
    }

    [Fact]
    public void A_swin_style_checkpoint_is_named_as_such()
    {
        string dir = Fixtures.TempDir();
        string path = Path.Combine(dir, "swin.safetensors");
        SafeTensorsWriter.Write(path, [
            new TensorToWrite("patch_embed.proj.weight", [96, 3, 4, 4], new float[96 * 48]),
            new TensorToWrite("layers.0.blocks.0.attn.relative_position_bias_table", [169, 3], new float[169 * 3]),
            new TensorToWrite("layers.0.blocks.0.attn.qkv.weight", [288, 96], new float[288 * 96]),
        ]);
        string err = Fails("export-onnx", "--weights", path, "-o", Path.Combine(dir, "s.onnx"));
        Assert.Contains("suggests a hierarchical (Swin-style) model", err);
        Assert.False(File.Exists(Path.Combine(dir, "s.onnx")));
    }

    [Fact]
    public void Weights_with_nan_are_refused_like_every_command_does()
    {
        string dir = Fixtures.TempDir(), path = Path.Combine(dir, "nan.safetensors");
        var config = VitConfig.Uniform("nan_tiny", embed: 16, depth: 1, heads: 2, classes: 3, imageSize: 16, patchSize: 8);
        var weights = VitSparse.Pruning.DenseTensors.From(new SeededWeights(config), config);
        weights["blocks.0.mlp.fc1.weight"].Data[5] = float.NaN;
        VitModel.Save(path, config, weights);
        string err = Fails("export-onnx", "--weights", path, "-o", Path.Combine(dir, "n.onnx"));
        Assert.Contains("'blocks.0.mlp.fc1.weight' has 1 NaN/Inf values", err);
        Assert.False(File.Exists(Path.Combine(dir, "n.onnx")));
    }
}
