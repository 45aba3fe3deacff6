using System.Text.Json;
using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

public class DimapCliTests
{
    static (int Code, string Out, string Err) Run(params string[] args) => Fixtures.Cli(args);

    static readonly SwinConfig Mini = SwinConfig.Uniform("mini_swin", 16, [2, 2], [1, 2], window: 4, classes: 10, imageSize: 32, patchSize: 2);

    /// <summary>A small Swin file (seeded weights, our metadata) in a fresh folder.</summary>
    static (string Dir, string Path) MiniFile()
    {
        string dir = Fixtures.TempDir(), path = System.IO.Path.Combine(dir, "mini.safetensors");
        SwinFile.Save(path, Mini, new SeededSwinWeights(Mini, 3));
        return (dir, path);
    }

    static SwinTensors Read(string path)
    {
        using var f = new SafeTensorsFile(path);
        return SwinTensors.From(new SafeTensorsSource(f), SwinFile.ReadConfig(f, null));
    }

    [Fact]
    public void Dimap_prunes_seeded_swin_t_to_table_1_and_stores_csr()
    {
        string dir = Fixtures.TempDir(), output = Path.Combine(dir, "t.safetensors"), report = Path.Combine(dir, "t.json");
        var (code, stdout, err) = Run("prune", "--method", "dimap", "--weights", "seeded:swin_t", "--level", "2", "-o", output, "--report", report);
        Assert.True(code == 0, err);
        Assert.Contains("synthetic weights", stdout);
        Assert.Contains("| Qkv ", stdout);
        var pruned = Read(output);
        Assert.InRange(pruned.NonZeros() / 1e6, 19.2 * 0.99, 19.2 * 1.01);
        using (var f = new SafeTensorsFile(output))
        {
            var stored = new SafeTensorsSource(f).Stored;
            Assert.Equal(12 * 4, stored.Count);   // every qkv, proj, fc1, fc2 of the 12 blocks
            Assert.All(stored.Values, l => Assert.Equal(WeightFormat.Unstructured, l.Format));
            Assert.Equal("seeded:swin_t", Synthetic.Origin(f));
        }
        using var doc = JsonDocument.Parse(File.ReadAllText(report));
        Assert.Equal(0.32, doc.RootElement.GetProperty("params_removed").GetDouble());
        Assert.Equal(48, doc.RootElement.GetProperty("layers").GetArrayLength());
    }

    [Theory]
    [InlineData("dimap", "block:8x8")]
    [InlineData("magnitude", "unstructured")]
    public void A_swin_file_round_trips_pruned(string method, string granularity)
    {
        var (dir, input) = MiniFile();
        string output = Path.Combine(dir, "p.safetensors");
        var (code, _, err) = Run("prune", "--method", method, "--weights", input, "--params-removed", "0.5", "--granularity", granularity, "-o", output);
        Assert.True(code == 0, err);
        var dense = Read(input);
        var pruned = Read(output);
        long total = dense.Tensors.Sum(kv => kv.Value.Data.LongLength);
        Assert.InRange(pruned.NonZeros(), total - (long)Math.Round(0.5 * total) - 3 * 64, total - (long)Math.Round(0.5 * total));
        foreach (var (name, t) in dense.Tensors.Where(kv => DimapModules.Of(kv.Key) == DimapModule.Aux))
            Assert.Equal(t.Data, pruned.Floats(name).ToArray());
        using var f = new SafeTensorsFile(output);
        var expectFormat = granularity == "unstructured" ? WeightFormat.Unstructured : WeightFormat.Bsr;
        Assert.All(new SafeTensorsSource(f).Stored.Values, l => Assert.Equal(expectFormat, l.Format));
        // Pruning the pruned file again reads its sparse tensors back.
        var (again, _, err2) = Run("prune", "--method", method, "--weights", output, "--params-removed", "0.5", "--granularity", granularity, "-o", Path.Combine(dir, "q.safetensors"));
        Assert.True(again == 0, err2);
    }

    [Fact]
    public void Single_module_reports_its_one_threshold()
    {
        var (dir, mini) = MiniFile();
        string report = Path.Combine(dir, "r.json");
        var (code, stdout, err) = Run("prune", "--method", "dimap", "--single-module", "--weights", mini, "--level", "3", "-o", Path.Combine(dir, "s.safetensors"), "--report", report);
        Assert.True(code == 0, err);
        Assert.Contains("with dimap single-module (unstructured)", stdout);
        Assert.Contains("one threshold over all prunable weights: ", stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(report));
        Assert.True(doc.RootElement.GetProperty("global_threshold").GetSingle() > 0);
    }

    /// <summary>The pruned file runs in the Swin runtime: stored CSR/BSR layers give the logits of the same zeros run dense.</summary>
    [Theory]
    [InlineData("swin_tiny_t09", "unstructured")]
    [InlineData("swin_tiny_t09", "block:8x8")]
    [InlineData("swin_tiny_legacy", "unstructured")]
    public void A_pruned_swin_runs_like_its_zeros_dense(string fixture, string granularity)
    {
        string dir = Fixtures.TempDir(), output = Path.Combine(dir, "p.safetensors");
        var (code, _, err) = Run("prune", "--method", "dimap", "--weights", Fixtures.Path_(fixture + ".safetensors"), "--params-removed", "0.4", "--granularity", granularity, "-o", output);
        Assert.True(code == 0, err);
        // Forced sparse kernels: at this size and density the cost model (auto) would run every layer dense.
        var sparse = SwinModel.Load(output, new LoadOptions { Sparse = granularity == "unstructured" ? SparseMode.Unstructured : SparseMode.Bsr });
        Assert.Contains(sparse.LinearLayers, l => l.Format != WeightFormat.Dense && l.Density < 1);
        var zerosDense = SwinModel.FromSource(Read(output), sparse.Config, new LoadOptions { Sparse = SparseMode.Off });
        var c = sparse.Config;
        var input = new float[2 * c.ImageElements];
        SeededWeights.FillInput(input);
        float[] Logits(SwinModel m) { var l = new float[2 * c.NumClasses]; using var s = new SwinSession(m, 2); s.Run(input, 2, l); return l; }
        var expected = Logits(zerosDense);
        Fixtures.AssertClose(expected, Logits(sparse), 1e-4, fixture);
        Assert.All(expected, v => Assert.True(float.IsFinite(v)));
        using var f = new SafeTensorsFile(output);
        Assert.Equal(fixture.EndsWith("legacy") ? SwinKeyLayout.Legacy : SwinKeyLayout.Timm09, SwinFile.ReadConfig(f, null).Layout);
    }

    [Theory]
    [InlineData("--weights", "seeded:deit_s", "--params-removed", "0.3", "is a DeiT; --method dimap prunes Swin models")]
    [InlineData("--weights", "seeded:swin_q", "--params-removed", "0.3", "unknown Swin architecture 'swin_q'")]
    [InlineData("--weights", "MINI", "--params-removed", "1", "outside [0, 1)")]
    [InlineData("--weights", "MINI", "--params-removed", "-0.2", "outside [0, 1)")]
    [InlineData("--weights", "MINI", "--params-removed", "0.97", "DIMAP may prune")]
    [InlineData("--weights", "MINI", "--level", "4", "not a DIMAP level")]
    [InlineData("--weights", "MINI", "--granularity", "block:0x8", "--granularity:")]
    [InlineData("--weights", "MINI", "--target", "deit_s_2.0g", "--target: does not apply to --method dimap")]
    [InlineData("--weights", "MINI", "--arch", "deit_s", "--arch: deit_s is a DeiT")]
    [InlineData("--weights", "MINI", "--calib", "seeded", "--calib: does not apply to --method dimap")]
    [InlineData("--weights", "DEIT", "--params-removed", "0.3", "is a DeiT; --method dimap prunes Swin models")]
    public void Mistakes_are_one_line_errors_without_output(string o1, string v1, string o2, string v2, string expected)
    {
        var (dir, mini) = MiniFile();
        string output = Path.Combine(dir, "out.safetensors");
        string Arg(string v) => v == "MINI" ? mini : v == "DEIT" ? Fixtures.Path_("ragged_tiny.safetensors") : v;
        var args = new List<string> { "prune", "--method", "dimap", o1, Arg(v1), o2, v2, "-o", output };
        if (o2 is not ("--params-removed" or "--level")) args.AddRange(["--level", "1"]);
        var (code, _, err) = Run([.. args]);
        Assert.Equal(2, code);
        Assert.Contains(expected, err);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.False(File.Exists(output));
        Assert.Single(Directory.GetFiles(dir));   // no staging leftovers
    }

    [Fact]
    public void Dimap_options_are_refused_with_snp_and_single_module_with_magnitude()
    {
        var (dir, mini) = MiniFile();
        var (code, _, err) = Run("prune", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--params-removed", "0.3", "--target", "deit_t", "-o", Path.Combine(dir, "o.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("--params-removed: applies to --method dimap or magnitude, not snp", err);
        (code, _, err) = Run("prune", "--method", "magnitude", "--single-module", "--weights", mini, "--level", "1", "-o", Path.Combine(dir, "o.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("--single-module: only applies with --method dimap", err);
        (code, _, err) = Run("prune", "--method", "dimap", "--weights", mini, "--level", "1", "--params-removed", "0.2", "-o", Path.Combine(dir, "o.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("exactly one of --params-removed and --level", err);
    }

    /// <summary>A pruned file whose CSR values do not match its row pointers: refused by tensor name, nothing written.</summary>
    [Fact]
    public void Sparse_tensors_of_the_wrong_shape_are_refused()
    {
        var (dir, mini) = MiniFile();
        string pruned = Path.Combine(dir, "p.safetensors"), bad = Path.Combine(dir, "bad.safetensors"), output = Path.Combine(dir, "o.safetensors");
        Assert.Equal(0, Run("prune", "--method", "dimap", "--weights", mini, "--level", "2", "-o", pruned).Code);
        using (var f = new SafeTensorsFile(pruned))
        {
            const string victim = "layers.0.blocks.0.mlp.fc1.weight.csr_values";
            var tensors = f.Tensors.Select(t => t.Name == victim
                ? new TensorToWrite(t.Name, [t.Shape[0] - 1], f.GetFloats(t.Name)[1..].ToArray())
                : t.DType == DType.I32 ? TensorToWrite.Int32(t.Name, t.Shape, f.GetI32(t.Name).ToArray()) : new TensorToWrite(t.Name, t.Shape, f.GetFloats(t.Name).ToArray())).ToList();
            SafeTensorsWriter.Write(bad, tensors, f.Metadata);
        }
        var (code, _, err) = Run("prune", "--method", "dimap", "--weights", bad, "--level", "1", "-o", output);
        Assert.Equal(2, code);
        Assert.Contains("layers.0.blocks.0.mlp.fc1.weight", err);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.False(File.Exists(output));
    }
}

public class DimapBenchTests
{
    [Theory]
    [InlineData("swin_t_dimap,deit_s", "--model: deit_s cannot be measured in one run with the DIMAP suite")]
    [InlineData("swin_q_dimap", "unknown Swin architecture 'swin_q'")]
    public void Bad_suite_requests_are_one_line_errors(string models, string expected)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(2, VitSparse.Bench.BenchApp.Run(["--model", models, "--iterations", "1"], o, e));
        Assert.Contains(expected, e.ToString());
        Assert.Single(e.ToString().TrimEnd().Split('\n'));
    }
}
