using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>`vitsparse grad` on a Swin: the written gradients equal PyTorch's (both key layouts), and bad input is one line of ours.</summary>
public class SwinGradCliTests
{
    static string Model(string name) => Fixtures.Path_($"swin_grad/{name}.safetensors");

    /// <summary>The fixture's input batch as .npy, and its labels (int64) beside it.</summary>
    static (string Dir, string Input, string Labels) Batch(string model)
    {
        string dir = Fixtures.TempDir();
        using var f = new SafeTensorsFile(Model(model));
        var shape = f.Info("input").Shape.Select(v => (int)v).ToArray();
        Npy.Write(Path.Combine(dir, "x.npy"), shape, f.GetFloats("input"));
        GradCliTests.WriteLabels(Path.Combine(dir, "y.npy"), f.GetFloats("labels").ToArray().Select(v => (long)v).ToArray());
        return (dir, Path.Combine(dir, "x.npy"), Path.Combine(dir, "y.npy"));
    }

    /// <summary>
    /// A copy of a fixture's model (metadata kept), with <paramref name="rename"/> applied to tensor names and
    /// <paramref name="change"/> to the config JSON, and the tensor named in <paramref name="shrink"/> one row short.
    /// </summary>
    static string Copy(string dir, string model, Func<string, string> rename, Func<string, string> change, string? shrink = null)
    {
        using var f = new SafeTensorsFile(Model(model));
        var tensors = new List<TensorToWrite>();
        foreach (var t in f.Tensors.Where(t => t.DType == DType.F32 && !t.Name.StartsWith("grad.", StringComparison.Ordinal)))
        {
            var shape = t.Shape.ToArray();
            var data = f.GetFloats(t.Name).ToArray();
            if (t.Name == shrink) { shape[0]--; data = data[..(int)(data.Length / t.Shape[0] * shape[0])]; }
            tensors.Add(new TensorToWrite(rename(t.Name), shape, data));
        }
        var meta = f.Metadata.ToDictionary(kv => kv.Key, kv => kv.Key == VitConfig.MetadataKey ? change(kv.Value) : kv.Value);
        string path = Path.Combine(dir, $"{model}.copy.safetensors");
        SafeTensorsWriter.Write(path, tensors, meta);
        return path;
    }

    /// <summary>timm ≥ 0.9 names → timm 0.6 / MS names (tools/swin/swin.py's to_legacy).</summary>
    static string Legacy(string name)
    {
        if (name.StartsWith("head.fc.", StringComparison.Ordinal)) return "head." + name["head.fc.".Length..];
        if (!name.Contains(".downsample.", StringComparison.Ordinal)) return name;
        int s = int.Parse(name.Split('.')[1], System.Globalization.CultureInfo.InvariantCulture);
        return $"layers.{s - 1}" + name[$"layers.{s}".Length..];
    }

    [Theory]
    [InlineData("shift", "ce", false)]
    [InlineData("pad", "sq", false)]
    [InlineData("shift", "sq", true)]
    public void Writes_the_loss_and_every_gradient_as_pytorch_computes_them(string model, string loss, bool legacy)
    {
        var (dir, x, y) = Batch(model);
        string weights = legacy ? Copy(dir, model, Legacy, json => json.Replace("\"timm09\"", "\"legacy\"", StringComparison.Ordinal)) : Model(model);
        string outPath = Path.Combine(dir, "g.safetensors");
        var args = new List<string> { "grad", "--weights", weights, "--input", x, "--loss", loss, "--threads", "2", "-o", outPath };
        if (loss == "ce") args.AddRange(["--labels", y, "--label-smoothing", "0.1"]);
        var (code, stdout, err) = Fixtures.Cli(args.ToArray());
        Assert.True(code == 0, err);
        Assert.Contains($"{loss} loss", stdout);
        using var expected = new SafeTensorsFile(Model(model));
        using var got = new SafeTensorsFile(outPath);
        Assert.Equal(expected.GetFloats($"loss.{loss}")[0], got.GetFloats("loss")[0], 5);
        var names = SwinLayout.ExpectedShapes(SwinFile.ReadConfig(expected, null)).Keys;
        Assert.Equal(names.Count + 1, got.Tensors.Count);
        foreach (var name in names)
        {
            string written = legacy ? Legacy(name) : name;
            Assert.True(GradParityTests.RelativeError(expected.GetFloats($"grad.{loss}.{name}"), got.GetFloats(written)) <= 1e-4, written);
        }
    }

    [Fact]
    public void A_swin_taught_by_itself_has_zero_mse_loss_and_zero_gradients()
    {
        var (dir, x, _) = Batch("pad");
        string outPath = Path.Combine(dir, "g.safetensors");
        var (code, _, err) = Fixtures.Cli("grad", "--weights", Model("pad"), "--input", x, "--loss", "mse", "--teacher", Model("pad"), "-o", outPath);
        Assert.True(code == 0, err);
        using var got = new SafeTensorsFile(outPath);
        Assert.True(Math.Abs(got.GetFloats("loss")[0]) < 1e-10);
        Assert.True(got.GetFloats("head.fc.weight").ToArray().Max(Math.Abs) < 1e-5);
    }

    public static TheoryData<string, string[]> BadInputs() => new()
    {
        // A batch of the other fixture's images (20×20) for a model of 32×32 images.
        { "--input", ["--loss", "sq", "--input", "PAD_IMAGES"] },
        // A teacher of another input size.
        { "--teacher", ["--loss", "mse", "--teacher", "PAD_MODEL"] },
        { "--arch", ["--loss", "sq", "--arch", "swin_x"] },
        { "--labels", ["--loss", "ce", "--labels", "LABELS_OUT_OF_RANGE"] },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void Bad_input_is_one_line_naming_the_argument_and_writes_nothing(string argument, string[] args)
    {
        var (dir, x, _) = Batch("shift");
        string outPath = Path.Combine(dir, "g.safetensors");
        var subst = new Dictionary<string, Func<string>>
        {
            ["PAD_IMAGES"] = () => Batch("pad").Input,
            ["PAD_MODEL"] = () => Model("pad"),
            ["LABELS_OUT_OF_RANGE"] = () => { string p = Path.Combine(dir, "bad.npy"); GradCliTests.WriteLabels(p, [0, 5]); return p; },
        };
        var full = new List<string> { "grad", "--weights", Model("shift"), "-o", outPath };
        if (!args.Contains("--input")) full.AddRange(["--input", x]);
        full.AddRange(args.Select(a => subst.TryGetValue(a, out var f) ? f() : a));
        var (code, _, err) = Fixtures.Cli(full.ToArray());
        Assert.Equal(VitSparse.Cli.CliApp.InputError, code);
        Assert.StartsWith($"error: {argument}", err);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.False(File.Exists(outPath));
    }

    [Fact]
    public void A_timm_swin_without_metadata_is_read_by_its_shapes_and_arch()
    {
        // swin_tiny_legacy (window 4) has no metadata. Without --arch its images are 224 pixels (not in any weight),
        // so its 32-pixel batch is refused; --arch swin_t says window 7, which its 4×4-window bias tables contradict.
        var (dir, _, _) = Batch("shift");
        string outPath = Path.Combine(dir, "g.safetensors");
        string[] Args(params string[] more) => ["grad", "--weights", Fixtures.Path_("swin_tiny_legacy.safetensors"),
            "--input", Fixtures.Path_("swin_tiny_legacy.input.npy"), "--loss", "sq", "-o", outPath, .. more];
        var (code, _, err) = Fixtures.Cli(Args());
        Assert.Equal(VitSparse.Cli.CliApp.InputError, code);
        Assert.StartsWith("error: --input", err);
        Assert.Contains("224", err);
        Assert.Single(err.TrimEnd().Split('\n'));
        (code, _, err) = Fixtures.Cli(Args("--arch", "swin_t"));
        Assert.NotEqual(0, code);
        Assert.Contains("'layers.0.blocks.0.attn.relative_position_bias_table' has shape [49,2]", err);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.False(File.Exists(outPath));
    }

    [Fact]
    public void A_bias_table_of_the_wrong_size_is_one_line_naming_the_tensor()
    {
        string dir = Fixtures.TempDir();
        const string table = "layers.0.blocks.1.attn.relative_position_bias_table";
        string weights = Copy(dir, "shift", n => n, json => json, shrink: table);
        var (dirB, x, _) = Batch("shift");
        string outPath = Path.Combine(dirB, "g.safetensors");
        var (code, _, err) = Fixtures.Cli("grad", "--weights", weights, "--input", x, "--loss", "sq", "-o", outPath);
        Assert.NotEqual(0, code);
        Assert.Contains(table, err);
        Assert.Contains("[48,2]", err);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.False(File.Exists(outPath));
    }
}
