using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// Whole models with zeros: a plain checkpoint holding exact zeros is detected at load and runs sparse with
/// the logits of `--sparse off`; written with its sparse layouts it loads back to the same logits; a
/// sparse model's steady-state inference allocates nothing.
/// </summary>
public class SparseModelTests
{
    internal static readonly VitConfig Config = VitConfig.Uniform("sparse_small", embed: 64, depth: 2, heads: 2, classes: 10, imageSize: 32, patchSize: 8);

    /// <summary>Seeded weights with half the 16×16 blocks of qkv and fc1 zeroed, and 90 % of proj and fc2's weights.</summary>
    internal static DenseTensors ZeroHolding()
    {
        var t = DenseTensors.From(new SeededWeights(Config, 3), Config);
        for (int i = 0; i < Config.Depth; i++)
        {
            foreach (var layer in new[] { "attn.qkv", "mlp.fc1" })
            {
                var w = t[$"blocks.{i}.{layer}.weight"];
                var mask = SparseKernelTests.BlockMasked(w.Rows, w.RowLength, 16, 16, 0.5, 10 + i);
                for (int j = 0; j < w.Data.Length; j++) if (mask[j] == 0f) w.Data[j] = 0f;
            }
            foreach (var layer in new[] { "attn.proj", "mlp.fc2" })
            {
                var w = t[$"blocks.{i}.{layer}.weight"];
                var mask = SparseKernelTests.Masked(w.Rows, w.RowLength, 0.1, 20 + i);
                for (int j = 0; j < w.Data.Length; j++) if (mask[j] == 0f) w.Data[j] = 0f;
            }
        }
        return t;
    }

    static float[] Logits(VitModel model, int threads = 2)
    {
        var x = new float[2 * Config.ImageElements];
        SeededWeights.FillInput(x, 5);
        var logits = new float[2 * Config.NumClasses];
        using var session = new InferenceSession(model, threads);
        session.Run(x, 2, logits);
        return logits;
    }

    [Fact]
    public void A_checkpoint_with_exact_zeros_runs_sparse_with_the_logits_of_sparse_off()
    {
        string path = Path.Combine(Fixtures.TempDir(), "zeros.safetensors");
        VitModel.Save(path, Config, ZeroHolding());
        var off = VitModel.Load(path, new LoadOptions { Sparse = SparseMode.Off });
        var auto = VitModel.Load(path);
        Assert.Contains(auto.LinearLayers, l => l.Layer == "blocks.0.attn.qkv" && l.Format == WeightFormat.Bsr && l.BlockHeight == 16 && l.BlockWidth == 16);
        Assert.Contains(auto.LinearLayers, l => l.Layer == "blocks.1.mlp.fc2" && l.Format == WeightFormat.Unstructured);
        Assert.Contains(auto.LinearLayers, l => l.Layer == "head" && l.Format == WeightFormat.Dense);
        Assert.True(auto.KernelMacs() < off.KernelMacs());
        var expected = Logits(off);
        Fixtures.AssertClose(expected, Logits(auto), 1e-5, "auto vs off");
        foreach (var mode in new[] { SparseMode.Bsr, SparseMode.Unstructured })
            Fixtures.AssertClose(expected, Logits(VitModel.Load(path, new LoadOptions { Sparse = mode })), 1e-5, $"{mode} vs off");
        Assert.True(Logits(auto, 1).AsSpan().SequenceEqual(Logits(auto, 3)), "1 and 3 threads differ");
    }

    [Fact]
    public void A_model_written_with_its_sparse_layouts_keeps_them_and_its_logits()
    {
        var dir = Fixtures.TempDir();
        string plain = Path.Combine(dir, "zeros.safetensors"), compact = Path.Combine(dir, "compact.safetensors");
        var weights = ZeroHolding();
        VitModel.Save(plain, Config, weights);
        var auto = VitModel.Load(plain);
        VitModel.Save(compact, Config, weights, sparse: auto.SparseLayouts());
        using (var file = new SafeTensorsFile(compact))
        {
            Assert.False(file.Contains("blocks.0.attn.qkv.weight"));
            Assert.Equal(DType.I32, file.Info("blocks.0.attn.qkv.weight.bsr_col_indices").DType);
            Assert.True(file.Contains("blocks.1.mlp.fc2.weight.csr_values"));
            Assert.Contains("\"block\":[16,16]", file.Metadata[SparseStorage.MetadataKey]);
        }
        Assert.True(new FileInfo(compact).Length < new FileInfo(plain).Length, "the compact file is not smaller");
        var reloaded = VitModel.Load(compact);
        Assert.Equal(auto.LinearLayers.Select(l => l.Describe()), reloaded.LinearLayers.Select(l => l.Describe()));
        Fixtures.AssertClose(Logits(VitModel.Load(plain, new LoadOptions { Sparse = SparseMode.Off })), Logits(reloaded), 1e-5, "compact vs plain dense");
        // The dense view of the compact file is the plain file's weights, exactly.
        using var f = new SafeTensorsFile(compact);
        Assert.True(new SafeTensorsSource(f).Floats("blocks.0.attn.qkv.weight").SequenceEqual(weights["blocks.0.attn.qkv.weight"].Data));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Steady_state_sparse_inference_does_not_allocate(int threads)
    {
        var model = VitModel.FromSource(ZeroHolding(), Config);
        Assert.Contains(model.LinearLayers, l => l.Format == WeightFormat.Bsr);
        Assert.Contains(model.LinearLayers, l => l.Format == WeightFormat.Unstructured);
        var x = new float[2 * Config.ImageElements];
        SeededWeights.FillInput(x);
        var logits = new float[2 * Config.NumClasses];
        using var session = new InferenceSession(model, threads);
        for (int i = 0; i < 5; i++) session.Run(x, 2, logits);
        Assert.Equal(0, Fixtures.ThreadAllocations(() => { for (int i = 0; i < 20; i++) session.Run(x, 2, logits); }));
    }

    [Fact]
    public void Inspect_shows_each_linear_layers_format_and_sparse_refuses_unknown_modes()
    {
        string path = Path.Combine(Fixtures.TempDir(), "zeros.safetensors");
        VitModel.Save(path, Config, ZeroHolding());
        var (code, output, err) = Fixtures.Cli("inspect", path);
        Assert.True(code == 0, err);
        Assert.Contains("| blocks.0.attn.qkv ", output);
        Assert.Contains("bsr 16×16", output);
        Assert.Contains("unstructured", output);
        Assert.Contains("GMAC in the chosen kernels", output);
        (code, output, _) = Fixtures.Cli("inspect", path, "--sparse", "off");
        Assert.Equal(0, code);
        Assert.DoesNotContain("bsr 16×16", output);
        (code, _, err) = Fixtures.Cli("inspect", path, "--sparse", "csr");
        Assert.Equal(2, code);
        Assert.Contains("--sparse: 'csr' is not one of auto, off, dense, bsr, unstructured", err);
    }
}
