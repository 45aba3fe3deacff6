using VitSparse.Kernels;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using VitSparse.Training;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// `vitsparse finetune` and <see cref="FineTuner"/> on a Swin: the small masked Swin fixture (BSR + CSR linears,
/// the merge's reduction among them) trains with a Swin teacher, keeps its sparse layouts, pruned zeros and class
/// names, thread counts agree bit for bit, and bad input is one line of ours.
/// </summary>
public class SwinFinetuneTests
{
    const int Images = 8, Classes = 5, Side = 32;
    static readonly string[] Names = ["a", "b", "c", "d", "e"];

    static ParameterSet Fixture() => ParameterSet.Load(Fixtures.Path_("swin_grad/masked.safetensors"), null);

    /// <summary>The masked Swin saved as a compact model with class names and its sparse layouts, and a small labelled set.</summary>
    static (string Dir, string Model, string X, string Y) Setup()
    {
        string dir = Fixtures.TempDir();
        var p = Fixture();
        string model = Path.Combine(dir, "pruned_swin.safetensors");
        SwinFile.Save(model, p.Swin!, p, classNames: Names, sparse: p.Masks.ToDictionary(kv => kv.Key, kv => kv.Value.Stored!));
        Npy.Write(Path.Combine(dir, "x.npy"), [Images, 3, Side, Side], Fixtures.Random(Images * 3 * Side * Side, 11));
        GradCliTests.WriteLabels(Path.Combine(dir, "y.npy"), Enumerable.Range(0, Images).Select(i => (long)(i % Classes)).ToArray());
        return (dir, model, Path.Combine(dir, "x.npy"), Path.Combine(dir, "y.npy"));
    }

    static string[] Args(string model, string x, string y, string outPath, params string[] more) =>
        ["finetune", "--weights", model, "--npy", x, y, "--epochs", "1", "--batch", "4", "--lr", "3e-3", "--threads", "2", "-o", outPath, .. more];

    [Fact]
    public void Finetune_trains_a_swin_keeping_sparse_layouts_pruned_zeros_and_class_names()
    {
        var (dir, model, x, y) = Setup();
        string outPath = Path.Combine(dir, "tuned.safetensors");
        var (code, stdout, err) = Fixtures.Cli(Args(model, x, y, outPath, "--val", x, y, "--ema", "--teacher", model));
        Assert.True(code == 0, err);
        Assert.Contains("epoch 1/1", stdout);
        Assert.Contains("validation top-1", stdout);
        Assert.True(File.Exists(outPath + ".ckpt"));

        var before = ParameterSet.Load(model, null);
        var after = ParameterSet.Load(outPath, null);
        Assert.Equal(before.Swin!.ToJson(), after.Swin!.ToJson());
        using (var file = new SafeTensorsFile(outPath))
        using (var original = new SafeTensorsFile(model))
        {
            Assert.Equal(Names, ClassNames.FromMetadata(file, Classes));
            Assert.Equal(SparseStorage.Read(original).ToDictionary(kv => kv.Key, kv => kv.Value.Describe()),
                SparseStorage.Read(file).ToDictionary(kv => kv.Key, kv => kv.Value.Describe()));
        }
        Assert.Contains("layers.1.downsample.reduction.weight", before.Masks.Keys);
        foreach (var (name, mask) in before.Masks)
        {
            int moved = 0;
            for (int i = 0; i < mask.Rows * mask.Cols; i++)
            {
                if (!mask.IsKept(i / mask.Cols, i % mask.Cols)) Assert.True(after[name][i] == 0, $"{name}[{i}] is pruned but {after[name][i]}");
                else if (after[name][i] != before[name][i]) moved++;
            }
            Assert.True(moved > 0, $"no kept weight of {name} was trained");
        }
        // The tuned file runs in the Swin inference runtime.
        var (inferCode, _, inferErr) = Fixtures.Cli("infer", "--weights", outPath, "--input", x, "--output", Path.Combine(dir, "logits.npy"));
        Assert.True(inferCode == 0, inferErr);
    }

    [Fact]
    public void Thread_counts_agree_bit_for_bit_and_the_loss_falls()
    {
        var settings = new FineTuneSettings(Epochs: 2, Batch: 4, Lr: 3e-3, WarmupEpochs: 0.5, Flip: true, Seed: 5);
        ParameterSet? first = null;
        foreach (int threads in new[] { 1, 3 })
        {
            var p = Fixture();
            var train = LabelledArrays.From("test set", Fixtures.Random(Images * 3 * Side * Side, 11), Enumerable.Range(0, Images).Select(i => i % Classes).ToArray(), Images, p.Model, "--npy");
            using var team = new ThreadTeam(threads);
            var tuner = new FineTuner(p, settings, train, team, null);
            var e1 = tuner.RunEpoch()!;
            var e2 = tuner.RunEpoch()!;
            Assert.True(e2.Loss < e1.Loss, $"loss {e1.Loss} → {e2.Loss}");
            if (first == null) { first = p; continue; }
            foreach (var name in p.Names) Assert.True(first[name].AsSpan().SequenceEqual(p[name]), $"{name} differs between 1 and {threads} threads");
        }
    }

    public static TheoryData<string, string[]> BadInputs() => new()
    {
        // A teacher of another input size (20×20 images).
        { "--teacher", ["--teacher", "PAD_MODEL"] },
        // A DeiT's images for the Swin.
        { "--npy", ["--npy", "DEIT_X", "Y"] },
        // A checkpoint of a DeiT run.
        { "--resume", ["--resume", "DEIT_CKPT"] },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void Bad_input_is_one_line_naming_the_argument(string argument, string[] args)
    {
        var (dir, model, x, y) = Setup();
        string outPath = Path.Combine(dir, "tuned.safetensors");
        var subst = new Dictionary<string, Func<string>>
        {
            ["PAD_MODEL"] = () => Fixtures.Path_("swin_grad/pad.safetensors"),
            ["Y"] = () => y,
            ["DEIT_X"] = () => { string p = Path.Combine(dir, "deit_x.npy"); Npy.Write(p, [Images, 1, 8, 8], new float[Images * 64]); return p; },
            ["DEIT_CKPT"] = () => DeitCheckpoint(dir),
        };
        var full = new List<string>(Args(model, x, y, outPath));
        if (args[0] == "--npy") full.RemoveRange(full.IndexOf("--npy"), 3);
        full.AddRange(args.Select(a => subst.TryGetValue(a, out var f) ? f() : a));
        var (code, _, err) = Fixtures.Cli(full.ToArray());
        Assert.Equal(VitSparse.Cli.CliApp.InputError, code);
        Assert.StartsWith($"error: {argument}", err);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.False(File.Exists(outPath));
    }

    /// <summary>A finetune checkpoint of the small DeiT grad fixture (one epoch on 8×8 images).</summary>
    static string DeitCheckpoint(string dir)
    {
        string x = Path.Combine(dir, "dx.npy"), y = Path.Combine(dir, "dy.npy"), o = Path.Combine(dir, "deit.safetensors");
        Npy.Write(x, [4, 1, 8, 8], Fixtures.Random(4 * 64, 3));
        GradCliTests.WriteLabels(y, [0, 1, 2, 3]);
        var (code, _, err) = Fixtures.Cli("finetune", "--weights", Fixtures.Path_("grad/uniform.safetensors"), "--npy", x, y, "--epochs", "1", "--batch", "4", "-o", o);
        Assert.True(code == 0, err);
        return o + ".ckpt";
    }
}
