using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using VitSparse.Training;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// `vitsparse finetune` and <see cref="FineTuner"/> on the small masked (BSR + CSR) grad fixture: the pruned
/// structure and class names survive, a resumed run equals an uninterrupted one bit for bit, thread counts
/// agree bit for bit, steps allocate nothing, and every bad input is one line of ours.
/// </summary>
public class FinetuneTests
{
    const int Images = 24, Classes = 5;
    static readonly string[] Names = ["zero", "one", "two", "three", "four"];

    /// <summary>The masked fixture saved as a compact model with class names and its sparse layouts, and a small labelled set.</summary>
    static (string Dir, string Model, string X, string Y) Setup()
    {
        string dir = Fixtures.TempDir();
        var p = ParameterSet.Load(Fixtures.Path_("grad/masked.safetensors"), null);
        string model = Path.Combine(dir, "pruned.safetensors");
        VitModel.Save(model, p.Config, p, classNames: Names, sparse: p.Masks.ToDictionary(kv => kv.Key, kv => kv.Value.Stored!));
        var x = Fixtures.Random(Images * 64, 7);
        Npy.Write(Path.Combine(dir, "x.npy"), [Images, 1, 8, 8], x);
        GradCliTests.WriteLabels(Path.Combine(dir, "y.npy"), Enumerable.Range(0, Images).Select(i => (long)(i % Classes)).ToArray());
        return (dir, model, Path.Combine(dir, "x.npy"), Path.Combine(dir, "y.npy"));
    }

    static string[] Args(string model, string x, string y, string outPath, params string[] more) => Args(2, "3e-3", model, x, y, outPath, more);

    static string[] Args(int epochs, string lr, string model, string x, string y, string outPath, params string[] more) =>
        ["finetune", "--weights", model, "--npy", x, y, "--epochs", epochs.ToString(), "--batch", "8", "--lr", lr, "--threads", "2", "-o", outPath, .. more];

    [Fact]
    public void Finetune_keeps_sparse_layouts_pruned_zeros_and_class_names_and_lowers_the_loss()
    {
        var (dir, model, x, y) = Setup();
        string outPath = Path.Combine(dir, "tuned.safetensors");
        var (code, stdout, err) = Fixtures.Cli(Args(model, x, y, outPath, "--val", x, y, "--flip", "--ema", "--teacher", model));
        Assert.True(code == 0, err);
        Assert.Contains("epoch 2/2", stdout);
        Assert.Contains("validation top-1", stdout);
        Assert.True(File.Exists(outPath + ".ckpt"));
        var losses = stdout.Split('\n').Where(l => l.StartsWith("epoch ") && l.Contains("train accuracy"))
            .Select(l => double.Parse(l.Split("loss ")[1].Split(',')[0], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(2, losses.Length);
        Assert.True(losses[1] < losses[0], $"loss {losses[0]} → {losses[1]}");

        var before = ParameterSet.Load(model, null);
        var after = ParameterSet.Load(outPath, null);
        using (var file = new SafeTensorsFile(outPath))
        using (var original = new SafeTensorsFile(model))
        {
            Assert.Equal(Names, ClassNames.FromMetadata(file, Classes));
            Assert.Equal(SparseStorage.Read(original).ToDictionary(kv => kv.Key, kv => kv.Value.Describe()),
                SparseStorage.Read(file).ToDictionary(kv => kv.Key, kv => kv.Value.Describe()));
        }
        Assert.Equal(before.Config.ToJson(), after.Config.ToJson());
        foreach (var (name, mask) in before.Masks)
        {
            var m2 = after.Masks[name];
            int moved = 0;
            for (int i = 0; i < mask.Rows * mask.Cols; i++)
            {
                int r = i / mask.Cols, c = i % mask.Cols;
                Assert.Equal(mask.IsKept(r, c), m2.IsKept(r, c));
                if (!mask.IsKept(r, c)) Assert.True(after[name][i] == 0, $"{name}[{i}] is pruned but {after[name][i]}");
                else if (after[name][i] != before[name][i]) moved++;
            }
            Assert.True(moved > 0, $"no kept weight of {name} was trained");
        }
    }

    static LabelledArrays TrainSet(VitConfig c)
    {
        var x = Fixtures.Random(Images * 64, 7);
        return LabelledArrays.From("test set", x, Enumerable.Range(0, Images).Select(i => i % Classes).ToArray(), Images, c, "--npy");
    }

    static FineTuneSettings Settings => new(Epochs: 2, Batch: 8, Lr: 3e-3, WarmupEpochs: 0.5, Flip: true, EmaDecay: 0.9, Seed: 3);

    [Fact]
    public void A_resumed_run_equals_an_uninterrupted_one_and_thread_counts_agree_bit_for_bit()
    {
        string dir = Fixtures.TempDir();
        ParameterSet Fresh() => ParameterSet.Load(Fixtures.Path_("grad/masked.safetensors"), null);

        // Uninterrupted, on 1 thread.
        var a = Fresh();
        using (var team = new ThreadTeam(1))
        {
            var t = new FineTuner(a, Settings, TrainSet(a.Config), null, team);
            t.RunEpoch(); t.RunEpoch();
            a = t.Result;
        }
        // One epoch, checkpoint, a new process's worth of objects, resume, the second epoch; on 3 threads.
        var b = Fresh();
        string origin = TrainingCheckpoint.Fingerprint(b), ckpt = Path.Combine(dir, "run.ckpt");
        using (var team = new ThreadTeam(3))
        {
            var t = new FineTuner(b, Settings, TrainSet(b.Config), null, team);
            t.RunEpoch();
            TrainingCheckpoint.Save(ckpt, origin, t, b, "test");
        }
        var c = Fresh();
        using (var team = new ThreadTeam(3))
        {
            var t = new FineTuner(c, Settings, TrainSet(c.Config), null, team);
            Assert.Equal(1, TrainingCheckpoint.Load(ckpt, TrainingCheckpoint.Fingerprint(c), t, c));
            t.RunEpoch();
            c = t.Result;
        }
        foreach (var name in a.Names) Assert.True(a[name].AsSpan().SequenceEqual(c[name]), $"{name} differs after resuming");
    }

    [Fact]
    public void A_steady_state_step_allocates_nothing()
    {
        var p = ParameterSet.Load(Fixtures.Path_("grad/masked.safetensors"), null);
        var t = new FineTuner(p, Settings with { Epochs = 8 }, TrainSet(p.Config), null, ThreadTeam.Single);
        t.RunEpoch();
        long perEpoch = Fixtures.ThreadAllocations(() => t.RunEpoch());   // 3 steps
        // The epoch's result record is the only allocation; none per step.
        Assert.True(perEpoch < 128, $"an epoch of 3 steps allocated {perEpoch} bytes");
    }

    [Fact]
    public void The_learning_rate_warms_up_linearly_then_decays_by_cosine()
    {
        var s = new FineTuneSettings(Epochs: 2, Lr: 1e-3, MinLr: 1e-5, WarmupEpochs: 0.5);
        // 10 steps per epoch, 20 in all, 5 of warm-up.
        Assert.Equal(2e-4, s.LearningRate(0, 20, 10), 12);
        Assert.Equal(1e-3, s.LearningRate(4, 20, 10), 12);
        Assert.Equal(1e-3, s.LearningRate(5, 20, 10), 12);
        Assert.Equal(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + Math.Cos(Math.PI * 6 / 15)), s.LearningRate(11, 20, 10), 12);
        Assert.True(s.LearningRate(19, 20, 10) < 2.5e-5);
        Assert.Equal(1e-5, s.LearningRate(20, 20, 10), 12);   // the end of the decay
        for (int i = 6; i < 20; i++) Assert.True(s.LearningRate(i, 20, 10) < s.LearningRate(i - 1, 20, 10));
    }

    [Fact]
    public void A_nan_loss_stops_naming_step_and_batch_and_keeps_the_last_good_checkpoint()
    {
        var (dir, model, x, y) = Setup();
        string outPath = Path.Combine(dir, "tuned.safetensors");
        // One good epoch: its checkpoint and model.
        var (code, _, err) = Fixtures.Cli(Args(1, "3e-3", model, x, y, outPath));
        Assert.True(code == 0, err);
        byte[] good = File.ReadAllBytes(outPath + ".ckpt"), goodModel = File.ReadAllBytes(outPath);
        // Resume it for a second epoch at an absurd learning rate: the weights blow up within that epoch.
        (code, _, err) = Fixtures.Cli(Args(2, "1e30", model, x, y, outPath, "--resume", outPath + ".ckpt"));
        Assert.Equal(VitSparse.Cli.CliApp.InputError, code);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Matches("(loss is|gradient is) .* at step \\d+ \\(epoch 2, batch \\d+\\)", err);
        Assert.Contains($"the last good checkpoint is {outPath}.ckpt (epoch 1)", err);
        Assert.Equal(good, File.ReadAllBytes(outPath + ".ckpt"));
        Assert.Equal(goodModel, File.ReadAllBytes(outPath));
    }

    [Fact]
    public void Resuming_from_another_models_checkpoint_is_refused()
    {
        var (dir, model, x, y) = Setup();
        string outPath = Path.Combine(dir, "tuned.safetensors");
        var (code, _, err) = Fixtures.Cli(Args(1, "3e-3", model, x, y, outPath));
        Assert.True(code == 0, err);
        // Same architecture, one weight changed: another model.
        var p = ParameterSet.Load(model, null);
        p["head.bias"][0] += 1;
        string other = Path.Combine(dir, "other.safetensors");
        VitModel.Save(other, p.Config, p, sparse: p.Masks.ToDictionary(kv => kv.Key, kv => kv.Value.Stored!));
        (code, _, err) = Fixtures.Cli(Args(other, x, y, Path.Combine(dir, "o2.safetensors"), "--resume", outPath + ".ckpt"));
        Assert.Equal(VitSparse.Cli.CliApp.InputError, code);
        Assert.StartsWith("error: --resume", err);
        Assert.Contains("other weights", err);
        // Another architecture.
        (code, _, err) = Fixtures.Cli(Args(Fixtures.Path_("grad/uniform.safetensors"), x, y, Path.Combine(dir, "o3.safetensors"), "--resume", outPath + ".ckpt"));
        Assert.Equal(VitSparse.Cli.CliApp.InputError, code);
        Assert.StartsWith("error: --resume", err);
        Assert.Contains("another architecture", err);
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
        { "bad.npy", ["--npy", "X", "LABELS_OUT_OF_RANGE"] },
        { "bad.npy", ["--npy", "X", "LABELS_TOO_FEW"] },
        { "--teacher", ["--teacher", "TEACHER_7_CLASSES"] },
        { "--teacher", ["--teacher", "TEACHER_16_PIXELS"] },
        { "--teacher", ["--distill", "soft"] },
        { "--lr", ["--lr", "0"] },
        { "--lr", ["--lr", "-1e-3"] },
        { "--epochs", ["--epochs", "0"] },
        { "--epochs", ["--epochs", "-2"] },
        { "--output", ["-o", "NO_SUCH_DIR"] },
        { "--output", ["-o", "A_DIRECTORY"] },
        { "--checkpoint", ["--checkpoint", "NO_SUCH_CKPT_DIR"] },
        { "--resume", ["--resume", "NOT_A_CHECKPOINT"] },
        { "--distill", ["--distill", "hard"] },
        { "--warmup", ["--warmup", "5"] },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void Bad_input_is_one_line_naming_the_argument_or_file_and_writes_nothing(string named, string[] args)
    {
        var (dir, model, x, y) = Setup();
        string outPath = Path.Combine(dir, "tuned.safetensors");
        var bad = Path.Combine(dir, "bad.npy");
        var subst = new Dictionary<string, Func<string>>
        {
            ["X"] = () => x,
            ["LABELS_OUT_OF_RANGE"] = () => { GradCliTests.WriteLabels(bad, Enumerable.Range(0, Images).Select(i => i == 5 ? 9L : 0L).ToArray()); return bad; },
            ["LABELS_TOO_FEW"] = () => { GradCliTests.WriteLabels(bad, new long[Images - 1]); return bad; },
            ["TEACHER_7_CLASSES"] = () => SmallModel(dir, "seven", 7, 8),
            ["TEACHER_16_PIXELS"] = () => SmallModel(dir, "big", 5, 16),
            ["NO_SUCH_DIR"] = () => outPath = Path.Combine(dir, "missing", "t.safetensors"),
            ["A_DIRECTORY"] = () => outPath = dir,
            ["NO_SUCH_CKPT_DIR"] = () => Path.Combine(dir, "missing", "t.ckpt"),
            ["NOT_A_CHECKPOINT"] = () => model,
        };
        var extra = args.Select(a => subst.TryGetValue(a, out var f) ? f() : a).ToList();
        var full = Args(model, x, y, outPath).ToList();
        // An option given by the case replaces the default one.
        foreach (var (option, width) in new[] { ("-o", 2), ("--epochs", 2), ("--lr", 2), ("--npy", 3) })
            if (extra.Contains(option)) full.RemoveRange(full.IndexOf(option), width);
        full.AddRange(extra);
        var (code, _, err) = Fixtures.Cli(full.ToArray());
        Assert.Equal(VitSparse.Cli.CliApp.InputError, code);
        Assert.StartsWith("error: ", err);
        Assert.Contains(named, err.Split('\n')[0]);
        Assert.Single(err.TrimEnd().Split('\n'));
        if (outPath != dir)
        {
            Assert.False(File.Exists(outPath));
            Assert.False(File.Exists(outPath + ".ckpt"));
        }
    }
}
