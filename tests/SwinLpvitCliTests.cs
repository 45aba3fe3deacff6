using System.Text.Json;
using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>`prune --method lpvit | block-magnitude | block-global` on a small Swin: BSR layers in a Swin compact file.</summary>
public class SwinLpvitCliTests
{
    // 8×8 blocks on a 16×12 patch conv, a 10×32 head and merges of 32×64: ragged edge blocks, a merge without bias.
    static readonly SwinConfig Mini = SwinConfig.Uniform("mini_swin", 16, [2, 2], [1, 2], window: 4, classes: 10, imageSize: 32, patchSize: 2);

    /// <summary>A small Swin file (seeded weights) and three seeded calibration images at its size, in a fresh folder.</summary>
    static (string Dir, string Model, string Calib) Files()
    {
        string dir = Fixtures.TempDir(), model = Path.Combine(dir, "mini.safetensors"), calib = Path.Combine(dir, "calib.npy");
        SwinFile.Save(model, Mini, new SeededSwinWeights(Mini, 3));
        var x = new float[3 * Mini.ImageElements];
        for (int i = 0; i < 3; i++) SeededWeights.FillInput(x.AsSpan(i * Mini.ImageElements, Mini.ImageElements), (ulong)i + 1);
        Npy.Write(calib, [3, 3, 32, 32], x);
        return (dir, model, calib);
    }

    static SwinTensors Read(string path)
    {
        using var f = new SafeTensorsFile(path);
        return SwinTensors.From(new SafeTensorsSource(f), SwinFile.ReadConfig(f, null));
    }

    static float[] Logits(SwinModel m, float[] x)
    {
        var l = new float[2 * Mini.NumClasses];
        using var s = new SwinSession(m, 1);
        s.Run(x, 2, l);
        return l;
    }

    [Theory]
    [InlineData("lpvit", 0.6)]
    [InlineData("block-global", 0.5)]
    public void A_swin_is_block_pruned_into_bsr_layers_that_run_like_its_zeroed_dense_model(string method, double flops)
    {
        var (dir, model, calib) = Files();
        string output = Path.Combine(dir, "p.safetensors"), report = Path.Combine(dir, "r.json");
        string[] args = ["prune", "--method", method, "--weights", model, "--flops", flops.ToString(System.Globalization.CultureInfo.InvariantCulture), "--block", "8x8", "-o", output, "--report", report];
        var (code, stdout, err) = Fixtures.Cli(method == "lpvit" ? [.. args, "--calib", calib] : args);
        Assert.True(code == 0, err);
        Assert.Contains("| layers.1.downsample.reduction ", stdout);
        Assert.Contains("| head.fc ", stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(report));
        var r = doc.RootElement;
        Assert.Equal("mini_swin", r.GetProperty("model").GetString());
        // patch conv, 4 per block in 4 blocks, one merge, the head
        Assert.Equal(1 + 4 * 4 + 1 + 1, r.GetProperty("layers").GetArrayLength());
        double ratio = r.GetProperty("flops_ratio").GetDouble();
        if (method == "lpvit") Assert.True(Math.Abs(ratio - flops) <= 0.02 + 1e-9, $"ratio {ratio}: {err}");
        else Assert.InRange(ratio, flops - 0.05, flops);

        var dense = Read(model);
        var pruned = Read(output);
        var keptBlocks = r.GetProperty("layers").EnumerateArray().ToDictionary(l => l.GetProperty("layer").GetString()! + ".weight", l => l.GetProperty("kept_blocks").GetInt32());
        using (var file = new SafeTensorsFile(output))
        {
            var stored = SparseStorage.Read(file);
            Assert.NotEmpty(stored);
            Assert.All(stored.Values, l => Assert.Equal((WeightFormat.Bsr, 8, 8), (l.Format, l.BlockHeight, l.BlockWidth)));
        }
        long zeroed = 0;
        foreach (var (name, t) in dense.Tensors)
        {
            var after = pruned.Floats(name).ToArray();
            if (!keptBlocks.TryGetValue(name, out int kept)) { Assert.Equal(t.Data, after); continue; }
            // Every weight is kept as it was or exactly zero, in whole 8×8 blocks (ragged at the edges).
            int rows = (int)t.Shape[0], cols = t.Data.Length / rows, blockCols = (cols + 7) / 8, nonZeroBlocks = 0;
            for (int b = 0; b < (rows + 7) / 8 * blockCols; b++)
            {
                int r0 = b / blockCols * 8, c0 = b % blockCols * 8;
                bool any = false, all = true;
                for (int i = r0; i < Math.Min(rows, r0 + 8); i++)
                    for (int j = c0; j < Math.Min(cols, c0 + 8); j++)
                    {
                        float v = after[i * cols + j];
                        Assert.True(v == 0 || v == t.Data[i * cols + j], $"{name}[{i},{j}] changed");
                        any |= v != 0; all &= v == t.Data[i * cols + j];
                    }
                if (any) { Assert.True(all, $"{name}: block {b} partly zeroed"); nonZeroBlocks++; }
                else zeroed++;
            }
            Assert.Equal(kept, nonZeroBlocks);
        }
        Assert.True(zeroed > 0);

        var x = new float[2 * Mini.ImageElements];
        SeededWeights.FillInput(x, 11);
        var sparse = SwinModel.Load(output);
        Assert.Contains(sparse.LinearLayers, l => l.Format == WeightFormat.Bsr);
        var zeroedDense = SwinModel.FromSource(pruned, Mini, new LoadOptions { Sparse = SparseMode.Off });
        Fixtures.AssertClose(Logits(zeroedDense, x), Logits(sparse, x), 1e-4, "bsr vs dense with the same zeros");
    }

    static void AssertRefused(string[] args, string message, string output)
    {
        var (code, _, err) = Fixtures.Cli(args);
        Assert.Equal(2, code);
        Assert.Contains(message, err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.False(File.Exists(output), "nothing is written on an error");
    }

    [Fact]
    public void Bad_input_on_a_swin_is_one_line_and_writes_nothing()
    {
        var (dir, model, calib) = Files();
        string o = Path.Combine(dir, "p.safetensors");
        string[] Args(params string[] extra) => ["prune", "--weights", model, "-o", o, .. extra];
        AssertRefused(Args("--method", "lpvit", "--calib", calib, "--flops", "1.5"), "--flops: must be in (0, 1]", o);
        AssertRefused(Args("--method", "block-magnitude", "--flops", "0"), "--flops: must be in (0, 1]", o);
        AssertRefused(Args("--method", "lpvit", "--calib", calib, "--flops", "0.5", "--block", "64x64"), "larger than layer patch_embed.proj (16×12)", o);
        string wrong = Path.Combine(dir, "wrong.npy");
        Npy.Write(wrong, [2, 3, 28, 28], new float[2 * 3 * 28 * 28]);
        AssertRefused(Args("--method", "lpvit", "--calib", wrong, "--flops", "0.5", "--block", "8x8"), "needs (batch, 3, 32, 32)", o);
    }
}

public class SwinLpvitBenchTests
{
    [Theory]
    [InlineData("swin_t_lpvit,deit_s", "--model: deit_s cannot be measured in one run with the Swin LPViT suite")]
    [InlineData("swin_q_lpvit", "unknown Swin architecture 'swin_q'")]
    public void Bad_suite_requests_are_one_line_errors(string models, string expected)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(2, VitSparse.Bench.BenchApp.Run(["--model", models, "--iterations", "1"], o, e));
        Assert.Contains(expected, e.ToString());
        Assert.Single(e.ToString().TrimEnd().Split('\n'));
    }

    [Fact]
    public void Deit_lpvit_names_stay_with_the_deit_suite()
    {
        Assert.True(VitSparse.Bench.SwinLpvitBench.Handles("swin_t_lpvit"));
        Assert.False(VitSparse.Bench.SwinLpvitBench.Handles("deit_s_lpvit"));
        Assert.False(VitSparse.Bench.SwinLpvitBench.Handles("swin_t_dimap"));
    }
}
