using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;
using Xunit.Abstractions;

namespace VitSparse.Tests;

/// <summary>
/// Swin's one forward (SwinForward over IVitBackend) on ILGPU's CPU accelerator against the CPU SIMD path and
/// PyTorch's logits: both key layouts, shifted windows, and the fixture whose maps pad to whole windows.
/// </summary>
[Trait("Category", "Gpu")]
public class SwinGpuTests(ITestOutputHelper output)
{
    static SwinModel Load(string name)
    {
        string path = Fixtures.Path_(name + ".safetensors");
        if (!name.EndsWith("legacy", StringComparison.Ordinal)) return SwinModel.Load(path);
        using var file = new SafeTensorsFile(path);
        var config = SwinFile.ReadConfig(file, null) with { ImageSize = 32 };
        return SwinModel.FromSource(new SafeTensorsSource(file), config);
    }

    [Theory]
    [InlineData("swin_tiny_t09")]
    [InlineData("swin_tiny_legacy")]
    [InlineData("swin_pad_t09")]
    public void Ilgpu_cpu_logits_match_the_cpu_path_and_pytorch(string name)
    {
        var model = Load(name);
        var input = Fixtures.Npy_(name + ".input.npy");
        var golden = Fixtures.Npy_(name + ".logits.npy");
        int batch = input.Shape[0], k = model.Config.NumClasses;
        var cpu = new float[batch * k];
        var gpu = new float[batch * k];
        using (var s = new SwinSession(model, 2)) s.Run(input.Data, batch, cpu);
        using (var s = new SwinSession(model, "ilgpu-cpu"))
        {
            Assert.StartsWith("ilgpu-cpu", s.Backend.Device);
            s.Run(input.Data, batch, gpu);
            Assert.True(s.Backend.Launches > 0);
        }
        double max = Math.Max(1, cpu.Max(MathF.Abs)), diff = cpu.Zip(gpu, (a, b) => Math.Abs(a - b)).Max();
        output.WriteLine($"{name}: max |cpu − ilgpu-cpu| = {diff:E2} (max |logit| {max:F2})");
        Fixtures.AssertClose(cpu, gpu, 1e-4, $"{name} ilgpu-cpu vs cpu");
        Fixtures.AssertClose(golden.Data, gpu, 1e-4, $"{name} ilgpu-cpu vs pytorch");
    }

    [Fact]
    public void Infer_runs_a_swin_on_device_ilgpu_cpu()
    {
        string output = Path.Combine(Fixtures.TempDir(), "swin_ilgpu.npy");
        var (code, stdout, err) = Fixtures.Cli("infer", "--weights", Fixtures.Path_("swin_tiny_t09.safetensors"),
            "--input", Fixtures.Path_("swin_tiny_t09.input.npy"), "--output", output, "--device", "ilgpu-cpu");
        Assert.True(code == 0, err);
        Assert.Contains("wrote 2×10 logits", stdout);
        Fixtures.AssertClose(Fixtures.Npy_("swin_tiny_t09.logits.npy").Data, Npy.Read(output).Data, 1e-4);
    }
}
