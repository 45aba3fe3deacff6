using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using VitSparse.Kernels;

namespace VitSparse.Runtime.Backends;

/// <summary>A device that cannot be used: not found, out of range, out of memory, or a kernel that failed to launch.</summary>
public sealed class DeviceException(string problem, Exception? inner = null) : VitSparseException(problem, inner);

/// <summary>
/// Implemented by VitSparse.Gpu (class <c>VitSparse.Gpu.IlgpuBackendFactory</c>): opens an ILGPU device by its
/// `--device` name. Runtime knows the GPU backend only through this, so Runtime, Kernels and Pruning stay free
/// of ILGPU (which emits code at run time and cannot be compiled ahead of time).
/// </summary>
public interface IGpuBackendFactory
{
    /// <summary>Opens "gpu", "gpu:N" or "ilgpu-cpu"; throws <see cref="DeviceException"/> naming the devices found when there is no such device.</summary>
    IVitBackend Open(string device, bool halfWeights);
}

/// <summary>The `--device` names and the backend each opens.</summary>
public static class Devices
{
    /// <summary>The device names `--device` takes (gpu:N for the N-th GPU).</summary>
    public static readonly string[] Names = ["cpu", "gpu", "gpu:N", "ilgpu-cpu"];

    const string GpuAssembly = "VitSparse.Gpu", FactoryType = "VitSparse.Gpu.IlgpuBackendFactory";

    /// <summary>False in a NativeAOT build, where ILGPU (which emits code at run time) cannot run: GPU devices then fail with a message.</summary>
    public static bool GpuSupported => System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeSupported;

    /// <summary>Whether <paramref name="device"/> names a GPU backend (anything but "cpu").</summary>
    public static bool IsGpu(string device) => !string.Equals(device, "cpu", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The backend for a `--device` value: "cpu" (SIMD kernels on <paramref name="threads"/> threads), "gpu" (first
    /// CUDA device, else an OpenCL GPU), "gpu:N", or "ilgpu-cpu" (ILGPU's CPU accelerator: slow, checks the GPU kernels
    /// without a GPU). <paramref name="halfWeights"/> stores GPU weights as fp16 (fp32 accumulation).
    /// </summary>
    public static IVitBackend Open(string device, int threads = 0, SimdWidth simd = 0, bool halfWeights = false)
    {
        device = Validate(device);
        if (device == "cpu")
        {
            if (halfWeights) throw new InputException("--half", "fp16 weights are a GPU option; the CPU backend keeps fp32");
            return new CpuBackend(threads, simd);
        }
        if (!GpuSupported)
            throw new DeviceException($"device '{device}': this build of vitsparse is compiled ahead of time (NativeAOT) and has no GPU backend; use the JIT build (tools/install-cli.sh) for GPU devices");
        return LoadFactory().Open(device, halfWeights);
    }

    // Only reached when dynamic code is supported (a JIT build, never NativeAOT or trimmed: the CLI's AOT publish
    // has no VitSparse.Gpu to load, and says so above); the factory type is public and has a public default constructor.
    /// <summary>The device name normalised (trimmed, lower case); an <see cref="InputException"/> for "--device" when it is not one of <see cref="Names"/>.</summary>
    public static string Validate(string device)
    {
        device = device.Trim().ToLowerInvariant();
        if (device is "cpu" or "gpu" or "ilgpu-cpu") return device;
        if (device.StartsWith("gpu:", StringComparison.Ordinal) && int.TryParse(device.AsSpan(4), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _))
            return device;
        throw new InputException("--device", $"'{device}' is not one of {string.Join(", ", Names)}{Text.DidYouMean.Hint(device, ["cpu", "gpu", "ilgpu-cpu"])}");
    }

    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "JIT builds only; VitSparse.Gpu is loaded whole, never trimmed")]
    [UnconditionalSuppressMessage("Trimming", "IL2072", Justification = "JIT builds only; VitSparse.Gpu is loaded whole, never trimmed")]
    static IGpuBackendFactory LoadFactory()
    {
        Assembly asm;
        try { asm = Assembly.Load(GpuAssembly); }
        catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException)
        {
            throw new DeviceException($"GPU devices need {GpuAssembly}.dll and ILGPU beside the program ({AppContext.BaseDirectory}); it was not found: {e.Message}", e);
        }
        var type = asm.GetType(FactoryType, throwOnError: true)!;
        return (IGpuBackendFactory)Activator.CreateInstance(type)!;
    }
}
