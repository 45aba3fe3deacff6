using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using VitSparse.Runtime;
using VitSparse.Runtime.Backends;

namespace VitSparse.Gpu;

/// <summary>
/// Opens ILGPU devices by their `--device` names; Runtime's <see cref="Devices.Open"/> finds this class by name,
/// so nothing below VitSparse.Gpu depends on ILGPU. "gpu" is the first CUDA device, else the first OpenCL GPU
/// ILGPU accepts; "gpu:N" the N-th of those (CUDA devices first); "ilgpu-cpu" ILGPU's CPU accelerator.
/// </summary>
public sealed class IlgpuBackendFactory : IGpuBackendFactory
{
    /// <inheritdoc/>
    public IVitBackend Open(string device, bool halfWeights)
    {
        Context? context = null;
        try
        {
            if (device == "ilgpu-cpu")
            {
                // ILGPU's default CPU device allows groups of 16 threads; ours have 64 (two warps on a GPU), so the simulated
                // device gets warps of 32 and 2 warps per multiprocessor (each group thread is an OS thread there).
                var cpuDevice = new CPUDevice(32, 2, Math.Max(1, Environment.ProcessorCount / 2));
                context = Context.Create(b => b.CPU(cpuDevice).EnableAlgorithms());
                return new IlgpuBackend(context, context.GetCPUDevice(0).CreateAccelerator(context), device, halfWeights);
            }
            int index = device == "gpu" ? 0 : int.Parse(device.AsSpan(4), System.Globalization.CultureInfo.InvariantCulture);
            var level = OptimizationFromEnvironment();
            context = Context.Create(b => b.Cuda().OpenCL(d => d.DeviceType == CLDeviceType.CL_DEVICE_TYPE_GPU).EnableAlgorithms().Optimize(level));
            var gpus = context.Devices.Where(d => d.AcceleratorType is AcceleratorType.Cuda or AcceleratorType.OpenCL)
                .OrderBy(d => d.AcceleratorType == AcceleratorType.Cuda ? 0 : 1).ToList();
            if (index >= gpus.Count)
            {
                string found = gpus.Count == 0 ? "no CUDA device and no OpenCL GPU that ILGPU accepts" : $"{gpus.Count} GPU(s): {string.Join(", ", gpus.Select((d, i) => $"gpu:{i} {d.Name} ({d.AcceleratorType})"))}";
                throw new DeviceException($"device '{device}' not found: ILGPU found {found}; 'ilgpu-cpu' runs the GPU kernels on ILGPU's CPU accelerator");
            }
            var chosen = gpus[index];
            return new IlgpuBackend(context, chosen.CreateAccelerator(context), device, halfWeights);
        }
        catch (DeviceException) { context?.Dispose(); throw; }
        catch (InputException) { context?.Dispose(); throw; }
        catch (Exception e)
        {
            context?.Dispose();
            throw new DeviceException($"device '{device}': ILGPU could not open it: {e.Message}", e);
        }
    }

    /// <summary>
    /// ILGPU's optimisation level for real GPUs: O1 (ILGPU's default), or what VITSPARSE_GPU_OPTIMIZATION says
    /// (O0, O1, O2): a diagnostic for comparing ILGPU's code generation on a device, not a tuning knob users need.
    /// </summary>
    static OptimizationLevel OptimizationFromEnvironment() => Environment.GetEnvironmentVariable("VITSPARSE_GPU_OPTIMIZATION") switch
    {
        null or "" or "O1" => OptimizationLevel.O1,
        "O0" => OptimizationLevel.O0,
        "O2" => OptimizationLevel.O2,
        var other => throw new InputException("VITSPARSE_GPU_OPTIMIZATION", $"'{other}' is not one of O0, O1, O2"),
    };
}
