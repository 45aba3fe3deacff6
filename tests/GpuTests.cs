using VitSparse.Gpu;
using VitSparse.Kernels;
using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Backends;
using VitSparse.Runtime.Models;
using Xunit;
using Xunit.Abstractions;

namespace VitSparse.Tests;

/// <summary>One ILGPU CPU accelerator (kernels compiled once) for the kernel tests of a class.</summary>
public sealed class IlgpuCpuDevice : IDisposable
{
    public IVitBackend Backend { get; } = Devices.Open("ilgpu-cpu");
    public void Dispose() => Backend.Dispose();
}

/// <summary>
/// Each ILGPU kernel against the CPU SIMD kernel doing the same op, through the one <see cref="IVitBackend"/>
/// interface, on ILGPU's CPU accelerator (no GPU here): ragged shapes, every epilogue, strided rows.
/// </summary>
[Trait("Category", "Gpu")]
public class GpuKernelTests(IlgpuCpuDevice device) : IClassFixture<IlgpuCpuDevice>
{
    readonly IVitBackend _gpu = device.Backend;

    static float[] Linear(IVitBackend be, ILinear layer, float[] x, int m, int ldx, float[] y0, int ldy, Epilogue ep)
    {
        using var l = be.Linear(layer);
        using var bx = be.Allocate(x.Length);
        using var by = be.Allocate(y0.Length);
        be.Upload(x, bx);
        be.Upload(y0, by);
        be.LinearForward(l, bx, m, ldx, by, ldy, ep);
        return be.Read(by, y0.Length).ToArray();
    }

    void AssertLinearMatches(ILinear layer, int m, int ldx, int ldy, string what)
    {
        var x = Fixtures.Random(m * ldx, 1);
        var y0 = Fixtures.Random(m * ldy, 2);
        using var cpu = new CpuBackend(2);
        foreach (var ep in Enum.GetValues<Epilogue>())
            Fixtures.AssertClose(Linear(cpu, layer, x, m, ldx, y0, ldy, ep), Linear(_gpu, layer, x, m, ldx, y0, ldy, ep), 1e-5, $"{what} {ep}");
    }

    [Theory]
    [InlineData(7, 70, 33)]     // every dimension ragged against the 64×64×16 tile
    [InlineData(65, 64, 16)]    // one row past a tile
    [InlineData(1, 10, 192)]    // a head at batch 1
    public void Dense_gemm_matches_the_packed_cpu_gemm(int m, int n, int k)
    {
        var w = Fixtures.Random(n * k, 3, 0.2f);
        AssertLinearMatches(PackedLinear.Pack(w, n, k, Fixtures.Random(n, 4)), m, k + 3, n + 5, $"dense {m}×{n}×{k}");
    }

    [Theory]
    [InlineData(5, 70, 1000)]    // ragged rows and columns, K split into 3 slices of 336 (the last one short)
    [InlineData(65, 64, 530)]    // K not a multiple of the 16-deep stage
    public void Split_k_gemm_matches_the_packed_cpu_gemm(int m, int n, int k)
    {
        var gpu = (IlgpuBackend)_gpu;
        int before = gpu.SplitKBelowTiles;
        long launches = gpu.Launches;
        gpu.SplitKBelowTiles = 1000;   // ILGPU's CPU accelerator has one multiprocessor: force the split
        try
        {
            var w = Fixtures.Random(n * k, 3, 0.2f);
            AssertLinearMatches(PackedLinear.Pack(w, n, k, Fixtures.Random(n, 4)), m, k + 3, n + 5, $"split-K {m}×{n}×{k}");
            Assert.Equal(2 * Enum.GetValues<Epilogue>().Length, gpu.Launches - launches);   // the GEMM and the reduction, per epilogue
        }
        finally { gpu.SplitKBelowTiles = before; }
    }

    [Theory]
    [InlineData(24, 1536, 264, 6)]   // DeiT-S fc2 at batch 1 on an H100/H200 (132 multiprocessors)
    [InlineData(24, 384, 264, 1)]    // K too short to split
    [InlineData(300, 1536, 264, 1)]  // enough tiles already
    [InlineData(1, 8192, 264, 8)]    // at most 8 slices
    public void Split_k_slices_fill_the_device_without_slicing_thin(int tiles, int k, int below, int slices) =>
        Assert.Equal(slices, IlgpuBackend.KSlices(tiles, k, below));

    [Theory]
    [InlineData(16, 16, 48, 40)]
    [InlineData(64, 32, 100, 70)]   // ragged edge blocks in both directions
    [InlineData(8, 8, 24, 20)]
    public void Bsr_gemm_matches_the_cpu_bsr_kernel(int bh, int bw, int n, int k)
    {
        var w = Fixtures.Random(n * k, 5, 0.2f);
        var mask = SparseKernelTests.BlockMasked(n, k, bh, bw, 0.5, 6);
        for (int i = 0; i < w.Length; i++) w[i] *= mask[i];
        var bsr = BsrLinear.FromDense(w, n, k, bh, bw, Fixtures.Random(n, 7));
        Assert.True(IlgpuBackend.BsrRowsPerGroup(bh, bw) > 0);
        AssertLinearMatches(bsr, 37, k, n, $"bsr {bh}×{bw}");
    }

    [Fact]
    public void Unstructured_layers_run_densified_with_the_cpu_csr_results()
    {
        var w = Fixtures.Random(30 * 50, 8, 0.2f);
        var mask = SparseKernelTests.Masked(30, 50, 0.2, 9);
        for (int i = 0; i < w.Length; i++) w[i] *= mask[i];
        AssertLinearMatches(CsrLinear.FromDense(w, 30, 50, Fixtures.Random(30, 10)), 9, 50, 30, "csr");
    }

    [Fact]
    public void Fp16_weights_stay_within_half_precision_of_fp32()
    {
        int m = 20, n = 96, k = 200;
        var w = Fixtures.Random(n * k, 11, 0.1f);
        var layer = PackedLinear.Pack(w, n, k, Fixtures.Random(n, 12));
        var x = Fixtures.Random(m * k, 13);
        using var half = Devices.Open("ilgpu-cpu", halfWeights: true);
        var exact = Linear(_gpu, layer, x, m, k, new float[m * n], n, Epilogue.Bias);
        var rounded = Linear(half, layer, x, m, k, new float[m * n], n, Epilogue.Bias);
        // fp16 keeps 11 bits: each weight is off by up to 2^-11 relative, a sum of 200 random-signed terms by about √200 of that.
        Fixtures.AssertClose(exact, rounded, 2e-3, "fp16 weights");
        Assert.NotEqual(exact, rounded);
    }

    [Fact]
    public void Layer_norm_matches_the_cpu_kernel_in_place_and_not()
    {
        int rows = 5, width = 70;
        var x = Fixtures.Random(rows * width, 14, 3f);
        var g = Fixtures.Random(width, 15);
        var b = Fixtures.Random(width, 16);
        float[] Run(IVitBackend be, bool inPlace)
        {
            using var bx = be.Allocate(x.Length);
            using var by = be.Allocate(x.Length);
            using var gv = be.Vector(g);
            using var bv = be.Vector(b);
            be.Upload(x, bx);
            be.LayerNorm(bx, rows, width, gv, bv, 1e-6f, inPlace ? bx : by);
            return be.Read(inPlace ? bx : by, x.Length).ToArray();
        }
        using var cpu = new CpuBackend(1);
        Fixtures.AssertClose(Run(cpu, false), Run(_gpu, false), 1e-5, "layernorm");
        Fixtures.AssertClose(Run(cpu, true), Run(_gpu, true), 1e-5, "layernorm in place");
    }

    [Fact]
    public void Ragged_attention_matches_the_cpu_kernel()
    {
        var layout = new HeadLayout([5, 9, 13], [7, 4, 11]);
        int tokens = 37, batch = 2, ldq = layout.RowWidth + 3, ldo = layout.VTotal + 2;
        var qkv = Fixtures.Random(batch * tokens * ldq, 17, 2f);
        float[] Run(IVitBackend be)
        {
            using var heads = be.Heads(layout, tokens);
            using var bq = be.Allocate(qkv.Length);
            using var bo = be.Allocate(batch * tokens * ldo);
            be.Upload(qkv, bq);
            be.Upload(new float[batch * tokens * ldo], bo);
            be.Attention(heads, bq, batch, ldq, 0.3f, bo, ldo);
            return be.Read(bo, batch * tokens * ldo).ToArray();
        }
        using var cpu = new CpuBackend(2);
        Fixtures.AssertClose(Run(cpu), Run(_gpu), 1e-5, "attention");
    }

    [Fact]
    public void Launches_are_counted_per_kernel()
    {
        long before = _gpu.Launches;
        using var a = _gpu.Allocate(8);
        _gpu.Upload(new float[8], a);
        _gpu.Average(a, a, 8, a);
        _gpu.GatherRows(a, 2, 4, 1, 1, a);
        Assert.Equal(before + 2, _gpu.Launches);
    }
}

/// <summary>Whole models on ILGPU's CPU accelerator against the CPU SIMD path: the same DeitForward on both backends.</summary>
[Trait("Category", "Gpu")]
public class GpuModelParityTests(ITestOutputHelper output)
{
    static (float[] Input, int Batch) Input(VitModel model, string? npy, int maxBatch)
    {
        if (npy == null)
        {
            var x = new float[maxBatch * model.Config.ImageElements];
            SeededWeights.FillInput(x, 5);
            return (x, maxBatch);
        }
        var input = Fixtures.Npy_(npy);
        int batch = Math.Min(maxBatch, input.Shape[0]);
        return (input.Data.AsSpan(0, batch * model.Config.ImageElements).ToArray(), batch);
    }

    static float[] Logits(VitModel model, float[] x, int batch, IVitBackend backend)
    {
        var logits = new float[batch * model.Config.NumClasses];
        using var session = new InferenceSession(model, backend);
        session.Run(x, batch, logits);
        return logits;
    }

    void AssertParity(VitModel model, string? npy, int batch, string what)
    {
        var (x, b) = Input(model, npy, batch);
        var cpu = Logits(model, x, b, new CpuBackend(2));
        var gpu = Logits(model, x, b, Devices.Open("ilgpu-cpu"));
        double max = Math.Max(1, cpu.Max(Math.Abs)), diff = cpu.Zip(gpu, (p, q) => Math.Abs(p - q)).Max();
        output.WriteLine($"{what}: max |Δlogit| = {diff:g3}, bound {1e-4 * max:g3}");
        Fixtures.AssertClose(cpu, gpu, 1e-4, what);
    }

    [Theory]
    [InlineData("deit_fmnist", "deit_fmnist.sample.input.npy")]
    [InlineData("ragged_tiny", "ragged_tiny.input.npy")]
    [InlineData("ragged_distilled_bf16", "ragged_distilled_bf16.input.npy")]
    public void Fixture_models_match_the_cpu_path(string name, string input) =>
        AssertParity(VitModel.Load(Fixtures.Path_(name + ".safetensors")), input, name == "ragged_tiny" ? 2 : 1, name);

    static readonly VitConfig Small = VitConfig.Uniform("gpu_sparse", embed: 64, depth: 2, heads: 2, classes: 10, imageSize: 32, patchSize: 8);

    /// <summary>Seeded weights with half the 16×16 blocks of every block linear zeroed.</summary>
    static DenseTensors BlockSparse()
    {
        var t = DenseTensors.From(new SeededWeights(Small, 3), Small);
        for (int i = 0; i < Small.Depth; i++)
            foreach (var layer in new[] { "attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2" })
            {
                var w = t[$"blocks.{i}.{layer}.weight"];
                var mask = SparseKernelTests.BlockMasked(w.Rows, w.RowLength, 16, 16, 0.5, 10 + i);
                for (int j = 0; j < w.Data.Length; j++) if (mask[j] == 0f) w.Data[j] = 0f;
            }
        return t;
    }

    [Theory]
    [InlineData(SparseMode.Bsr)]
    [InlineData(SparseMode.Unstructured)]
    public void A_sparse_model_built_here_matches_the_cpu_path(SparseMode mode)
    {
        var model = VitModel.FromSource(BlockSparse(), Small, new LoadOptions { Sparse = mode });
        Assert.Contains(model.LinearLayers, l => l.Format == (mode == SparseMode.Bsr ? WeightFormat.Bsr : WeightFormat.Unstructured));
        AssertParity(model, null, 2, $"sparse ({mode})");
    }

    [Fact]
    public void Fp16_weights_error_is_measured_on_fp32_weights()
    {
        // deit_fmnist is stored in F16, which fp16 storage keeps exactly: seeded fp32 weights show the rounding.
        var model = VitModel.FromSource(new SeededWeights(Small, 4), Small);
        var (x, b) = Input(model, null, 1);
        var cpu = Logits(model, x, b, new CpuBackend(2));
        var full = Logits(model, x, b, Devices.Open("ilgpu-cpu"));
        var half = Logits(model, x, b, Devices.Open("ilgpu-cpu", halfWeights: true));
        double max = Math.Max(1, cpu.Max(Math.Abs));
        double fullDiff = cpu.Zip(full, (p, q) => Math.Abs(p - q)).Max(), halfDiff = cpu.Zip(half, (p, q) => Math.Abs(p - q)).Max();
        output.WriteLine($"fp16 weights, seeded {Small.Name}: max |Δlogit| = {halfDiff:g3} = {halfDiff / max:g3} of max(1, max|logit|) ({max:g3}); fp32 weights on the same device: {fullDiff:g3}");
        Assert.True(halfDiff / max < 1e-2, $"fp16 weights moved logits by {halfDiff / max:g3} relative");
        Assert.True(halfDiff > fullDiff, $"fp16 weights ({halfDiff:g3}) are no further from the CPU than fp32 ({fullDiff:g3}): were they stored as fp16?");
    }

    [Fact]
    public void Launches_per_inference_are_seven_per_block_plus_the_ends_and_buffers_are_reused()
    {
        var model = VitModel.Load(Fixtures.Path_("ragged_tiny.safetensors"));
        var (x, b) = Input(model, "ragged_tiny.input.npy", 2);
        var logits = new float[b * model.Config.NumClasses];
        using var session = new InferenceSession(model, "ilgpu-cpu");
        session.Run(x, b, logits);
        var first = logits.ToArray();
        long before = session.Backend.Launches;
        session.Run(x, b, logits);
        Assert.Equal(first, logits);
        // patches, patch embedding, tokens; 7 per block; gather, norm, head (+ gather, norm, head, average when distilled)
        Assert.Equal(3 + 7 * model.Config.Depth + 3, session.Backend.Launches - before);
    }
}

/// <summary>Device selection errors: ours, one line, naming what was asked and what was found.</summary>
[Trait("Category", "Gpu")]
public class DeviceErrorTests
{
    [Fact]
    public void An_unknown_device_name_lists_the_known_ones()
    {
        var e = Assert.Throws<InputException>(() => Devices.Open("tpu"));
        Assert.Contains("'tpu' is not one of cpu, gpu, gpu:N, ilgpu-cpu", e.Message);
        Assert.Throws<InputException>(() => Devices.Open("gpu:-1"));
        Assert.Throws<InputException>(() => Devices.Open("gpu:x"));
    }

    [Fact]
    public void A_missing_gpu_is_a_device_error_naming_what_was_found()
    {
        // No GPU on the machines this runs on in CI: gpu:7 is out of range wherever it runs.
        var e = Assert.Throws<DeviceException>(() => Devices.Open("gpu:7"));
        Assert.Contains("device 'gpu:7' not found: ILGPU found", e.Message);
    }

    [Fact]
    public void An_unknown_gpu_optimisation_level_is_refused_naming_the_variable()
    {
        // Only this class opens real GPU devices, and its tests run one at a time: the variable is seen by this test alone.
        Environment.SetEnvironmentVariable("VITSPARSE_GPU_OPTIMIZATION", "O9");
        try
        {
            var e = Assert.Throws<InputException>(() => Devices.Open("gpu"));
            Assert.Equal("VITSPARSE_GPU_OPTIMIZATION", e.Argument);
            Assert.Contains("'O9' is not one of O0, O1, O2", e.Message);
        }
        finally { Environment.SetEnvironmentVariable("VITSPARSE_GPU_OPTIMIZATION", null); }
    }

    [Fact]
    public void Out_of_device_memory_names_the_request_and_the_free_memory()
    {
        using var be = Devices.Open("ilgpu-cpu");
        var e = Assert.Throws<DeviceException>(() => be.Allocate(long.MaxValue / 8));
        Assert.Contains("out of device memory", e.Message);
        Assert.Contains("free of", e.Message);
    }

    [Fact]
    public void The_cli_refuses_an_unknown_device_with_exit_code_2()
    {
        var (code, _, err) = Fixtures.Cli("infer", "--weights", Fixtures.Path_("deit_fmnist.safetensors"), "--input", Fixtures.Path_("deit_fmnist.sample.input.npy"), "--device", "tpu");
        Assert.Equal(2, code);
        Assert.True(err.Contains("--device: 'tpu' is not one of"), err);
    }
}
