using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>`vitsparse grad`: the written gradients equal PyTorch's, and every bad input is one line of ours.</summary>
public class GradCliTests
{
    static string Model(string name) => Fixtures.Path_($"grad/{name}.safetensors");

    /// <summary>A 1-D .npy of int32 or int64 labels, as np.save writes it.</summary>
    internal static void WriteLabels(string path, long[] labels, bool int64 = true)
    {
        string header = $"{{'descr': '{(int64 ? "<i8" : "<i4")}', 'fortran_order': False, 'shape': ({labels.Length},), }}";
        header = header.PadRight(118) + "\n";
        using var w = new BinaryWriter(File.Create(path));
        w.Write((byte)0x93); w.Write("NUMPY"u8); w.Write((byte)1); w.Write((byte)0);
        w.Write((ushort)header.Length); w.Write(System.Text.Encoding.Latin1.GetBytes(header));
        foreach (long v in labels) { if (int64) w.Write(v); else w.Write((int)v); }
    }

    /// <summary>The fixture's input batch as .npy, and its labels (int64) beside it.</summary>
    static (string Dir, string Input, string Labels) Batch(string model)
    {
        string dir = Fixtures.TempDir();
        using var f = new SafeTensorsFile(Model(model));
        var shape = f.Info("input").Shape.Select(v => (int)v).ToArray();
        Npy.Write(Path.Combine(dir, "x.npy"), shape, f.GetFloats("input"));
        WriteLabels(Path.Combine(dir, "y.npy"), f.GetFloats("labels").ToArray().Select(v => (long)v).ToArray());
        return (dir, Path.Combine(dir, "x.npy"), Path.Combine(dir, "y.npy"));
    }

    [Fact]
    public void Writes_the_loss_and_every_gradient_as_pytorch_computes_them()
    {
        var (dir, x, y) = Batch("ragged");
        string outPath = Path.Combine(dir, "g.safetensors");
        var (code, stdout, err) = Fixtures.Cli("grad", "--weights", Model("ragged"), "--input", x, "--labels", y, "--loss", "ce", "--label-smoothing", "0.1", "--threads", "2", "-o", outPath);
        Assert.True(code == 0, err);
        Assert.Contains("ce loss", stdout);
        using var expected = new SafeTensorsFile(Model("ragged"));
        using var got = new SafeTensorsFile(outPath);
        Assert.Equal(expected.GetFloats("loss.ce")[0], got.GetFloats("loss")[0], 5);
        var names = VitLayout.ExpectedShapes(VitModel.ReadConfig(expected, null)).Keys;
        Assert.Equal(names.Count + 1, got.Tensors.Count);
        foreach (var name in names)
            Assert.True(GradParityTests.RelativeError(expected.GetFloats($"grad.ce.{name}"), got.GetFloats(name)) <= 1e-4, name);
    }

    [Fact]
    public void Int32_labels_work_too()
    {
        var (dir, x, y) = Batch("uniform");
        WriteLabels(y, [0, 3, 1], int64: false);
        var (code, _, err) = Fixtures.Cli("grad", "--weights", Model("uniform"), "--input", x, "--labels", y, "--loss", "ce", "-o", Path.Combine(dir, "g.safetensors"));
        Assert.True(code == 0, err);
    }

    [Fact]
    public void A_model_taught_by_itself_has_zero_mse_loss_and_zero_gradients()
    {
        var (dir, x, _) = Batch("distilled");
        string outPath = Path.Combine(dir, "g.safetensors");
        var (code, _, err) = Fixtures.Cli("grad", "--weights", Model("distilled"), "--input", x, "--loss", "mse", "--teacher", Model("distilled"), "-o", outPath);
        Assert.True(code == 0, err);
        using var got = new SafeTensorsFile(outPath);
        Assert.True(Math.Abs(got.GetFloats("loss")[0]) < 1e-10);
        Assert.True(got.GetFloats("head.weight").ToArray().Max(Math.Abs) < 1e-5);
    }

    static string SmallModel(string dir, string name, int classes, int imageSize)
    {
        var c = VitConfig.Uniform(name, 16, 1, 2, classes: classes, imageSize: imageSize, patchSize: 4, inChannels: 1) with { Mean = [0.5f], Std = [0.5f] };
        string path = Path.Combine(dir, name + ".safetensors");
        VitModel.Save(path, c, new SeededWeights(c, 3));
        return path;
    }

    public static TheoryData<string, string[]> BadInputs() => new()
    {
        { "--labels", ["--loss", "ce", "--labels", "LABELS_OUT_OF_RANGE"] },
        { "--labels", ["--loss", "ce", "--labels", "LABELS_TOO_FEW"] },
        { "--labels", ["--loss", "ce"] },
        { "--labels", ["--loss", "sq", "--labels", "LABELS"] },
        { "--teacher", ["--loss", "kl"] },
        { "--teacher", ["--loss", "kl", "--teacher", "TEACHER_7_CLASSES"] },
        { "--teacher", ["--loss", "mse", "--teacher", "TEACHER_16_PIXELS"] },
        { "--loss", ["--loss", "hinge"] },
        { "--label-smoothing", ["--loss", "ce", "--labels", "LABELS", "--label-smoothing", "1"] },
        { "--temperature", ["--loss", "kl", "--teacher", "MODEL", "--temperature", "0"] },
        { "--output", ["--loss", "sq", "-o", "NO_SUCH_DIR"] },
        { "--output", ["--loss", "sq", "-o", "A_DIRECTORY"] },
        { "--input", ["--loss", "sq", "--input", "WRONG_SHAPE"] },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void Bad_input_is_one_line_naming_the_argument_and_writes_nothing(string argument, string[] args)
    {
        var (dir, x, y) = Batch("uniform");
        string outPath = Path.Combine(dir, "g.safetensors");
        var bad = Path.Combine(dir, "bad.npy");
        var subst = new Dictionary<string, Func<string>>
        {
            ["LABELS"] = () => y,
            ["LABELS_OUT_OF_RANGE"] = () => { WriteLabels(bad, [0, 5, 1]); return bad; },
            ["LABELS_TOO_FEW"] = () => { WriteLabels(bad, [0, 1]); return bad; },
            ["TEACHER_7_CLASSES"] = () => SmallModel(dir, "seven", 7, 8),
            ["TEACHER_16_PIXELS"] = () => SmallModel(dir, "big", 5, 16),
            ["MODEL"] = () => Model("uniform"),
            ["NO_SUCH_DIR"] = () => outPath = Path.Combine(dir, "missing", "g.safetensors"),
            ["A_DIRECTORY"] = () => outPath = dir,
            ["WRONG_SHAPE"] = () => { Npy.Write(bad, [2, 1, 4, 4], new float[32]); return bad; },
        };
        var full = new List<string> { "grad", "--weights", Model("uniform") };
        if (!args.Contains("--input")) full.AddRange(["--input", x]);
        if (!args.Contains("-o")) full.AddRange(["-o", outPath]);
        full.AddRange(args.Select(a => subst.TryGetValue(a, out var f) ? f() : a));
        var (code, _, err) = Fixtures.Cli(full.ToArray());
        Assert.Equal(VitSparse.Cli.CliApp.InputError, code);
        Assert.StartsWith($"error: {argument}", err);
        Assert.Single(err.TrimEnd().Split('\n'));
        if (outPath != dir) Assert.False(File.Exists(outPath));
    }
}
