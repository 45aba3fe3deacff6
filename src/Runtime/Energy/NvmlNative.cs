using System.Runtime.InteropServices;

namespace VitSparse.Runtime.Energy;

/// <summary>
/// The few NVML calls the meter needs, bound to the driver's libnvidia-ml.so.1 (signatures from nvml.h;
/// every call returns nvmlReturn_t, 0 = NVML_SUCCESS). The library is probed with NativeLibrary.TryLoad
/// before the first call, so a machine without the NVIDIA driver is "unavailable", not a DllNotFoundException.
/// </summary>
internal static partial class NvmlNative
{
    public const string Library = "libnvidia-ml.so.1";
    public const int Success = 0;
    public const int NotSupported = 3;

    [LibraryImport(Library, EntryPoint = "nvmlInit_v2")]
    public static partial int Init();

    [LibraryImport(Library, EntryPoint = "nvmlShutdown")]
    public static partial int Shutdown();

    /// <summary>const char* nvmlErrorString(nvmlReturn_t result): a static string owned by NVML.</summary>
    [LibraryImport(Library, EntryPoint = "nvmlErrorString")]
    public static partial IntPtr ErrorString(int result);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetCount_v2")]
    public static partial int DeviceGetCount(out uint count);

    /// <summary>nvmlDevice_t is an opaque pointer, valid until nvmlShutdown.</summary>
    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetHandleByIndex_v2")]
    public static partial int DeviceGetHandleByIndex(uint index, out IntPtr device);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetName")]
    public static unsafe partial int DeviceGetName(IntPtr device, byte* name, uint length);

    /// <summary>Energy in mJ since the driver was last reloaded (Volta and newer).</summary>
    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetTotalEnergyConsumption")]
    public static partial int DeviceGetTotalEnergyConsumption(IntPtr device, out ulong millijoules);

    /// <summary>Board power in mW (averaged over 1 s on Ampere and newer except GA100, instantaneous before).</summary>
    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetPowerUsage")]
    public static partial int DeviceGetPowerUsage(IntPtr device, out uint milliwatts);

    public static string Describe(int result)
    {
        IntPtr s = ErrorString(result);
        return s == IntPtr.Zero ? $"NVML error {result}" : $"{Marshal.PtrToStringUTF8(s)} (NVML error {result})";
    }

    /// <summary>Null when the library loads; otherwise why not.</summary>
    public static string? Unloadable()
    {
        if (NativeLibrary.TryLoad(Library, typeof(NvmlNative).Assembly, null, out _)) return null;
        return $"{Library} not found (it comes with the NVIDIA driver; NVML does not exist on Jetson, use --meter ina3221 there)";
    }
}

/// <summary>One nvmlInit_v2 … nvmlShutdown span; NVML counts its inits, so each session shuts down exactly once.</summary>
internal sealed class NvmlSession : SafeHandle
{
    NvmlSession() : base(IntPtr.Zero, ownsHandle: true) { }

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>Initialises NVML; the handle is a marker (NVML has no handle of its own), set only after success.</summary>
    public static NvmlSession Open()
    {
        var s = new NvmlSession();
        int r = NvmlNative.Init();
        if (r != NvmlNative.Success) throw new SensorException($"{NvmlNative.Library} nvmlInit_v2", NvmlNative.Describe(r), SensorFault.Failed);
        s.SetHandle(1);
        return s;
    }

    protected override bool ReleaseHandle() => NvmlNative.Shutdown() == NvmlNative.Success;
}
