namespace VitSparse.Runtime.Energy;

/// <summary>
/// NVIDIA GPUs through NVML: a counter meter over nvmlDeviceGetTotalEnergyConsumption (mJ, Volta and newer)
/// when every GPU supports it, else a power meter over nvmlDeviceGetPowerUsage (mW) that the recorder
/// integrates. One channel per GPU, all summed. Needs the driver's libnvidia-ml.so.1; without it the probe
/// says so. NVML energy updates every 20–100 ms, so windows span seconds.
/// </summary>
public sealed class NvmlMeter : IEnergyMeter
{
    readonly NvmlSession _session;
    readonly IntPtr[] _devices;
    readonly ulong[] _first;

    NvmlMeter(NvmlSession session, IntPtr[] devices, string[] names, MeterKind kind, ulong[] first)
    {
        (_session, _devices, Kind, _first) = (session, devices, kind, first);
        Channels = names.Select((n, i) => new MeterChannel($"gpu{i} {n}", true)).ToList();
    }

    /// <inheritdoc />
    public string Name => "nvml";
    /// <inheritdoc />
    public string Source => NvmlNative.Library;
    /// <inheritdoc />
    public MeterKind Kind { get; }
    /// <inheritdoc />
    public IReadOnlyList<MeterChannel> Channels { get; }
    /// <summary>The slowest documented refresh: energy counters every 20–100 ms; Ampere's power is a 1 s average.</summary>
    public TimeSpan UpdateInterval => TimeSpan.FromMilliseconds(100);
    /// <inheritdoc />
    public double Resolution => 1e-3;

    /// <summary>Opens NVML and every GPU it lists; unavailable with the reason when the library or a device is missing.</summary>
    public static MeterProbe Probe()
    {
        if (NvmlNative.Unloadable() is { } why) return MeterProbe.Missing("nvml", "energy counter", NvmlNative.Library, why);
        NvmlSession? session = null;
        try
        {
            session = NvmlSession.Open();
            Check(NvmlNative.DeviceGetCount(out uint count), "nvmlDeviceGetCount_v2");
            if (count == 0) { session.Dispose(); return MeterProbe.Missing("nvml", "energy counter", NvmlNative.Library, "NVML reports no GPU"); }
            var devices = new IntPtr[count];
            var names = new string[count];
            var first = new ulong[count];
            bool counters = true;
            for (uint i = 0; i < count; i++)
            {
                Check(NvmlNative.DeviceGetHandleByIndex(i, out devices[i]), $"nvmlDeviceGetHandleByIndex_v2({i})");
                names[i] = DeviceName(devices[i]);
                int r = NvmlNative.DeviceGetTotalEnergyConsumption(devices[i], out first[i]);
                if (r == NvmlNative.NotSupported) counters = false;   // older than Volta: integrate power instead
                else Check(r, $"nvmlDeviceGetTotalEnergyConsumption(gpu{i})");
            }
            if (!counters)
                for (uint i = 0; i < count; i++) Check(NvmlNative.DeviceGetPowerUsage(devices[i], out _), $"nvmlDeviceGetPowerUsage(gpu{i})");
            return MeterProbe.Of(new NvmlMeter(session, devices, names, counters ? MeterKind.Counter : MeterKind.Power, first));
        }
        catch (SensorException e)
        {
            session?.Dispose();
            return MeterProbe.Missing("nvml", "energy counter", NvmlNative.Library, e.Message);
        }
    }

    static unsafe string DeviceName(IntPtr device)
    {
        const uint length = 96;   // NVML_DEVICE_NAME_V2_BUFFER_SIZE
        byte* buffer = stackalloc byte[(int)length];
        return NvmlNative.DeviceGetName(device, buffer, length) == NvmlNative.Success
            ? new string((sbyte*)buffer) : "(name unavailable)";
    }

    static void Check(int result, string call)
    {
        if (result != NvmlNative.Success) throw new SensorException($"{NvmlNative.Library} {call}", NvmlNative.Describe(result), SensorFault.Failed);
    }

    /// <inheritdoc />
    public void Read(Span<double> values)
    {
        ObjectDisposedException.ThrowIf(_session.IsClosed, this);
        for (int i = 0; i < _devices.Length; i++)
        {
            if (Kind == MeterKind.Counter)
            {
                Check(NvmlNative.DeviceGetTotalEnergyConsumption(_devices[i], out ulong mj), $"nvmlDeviceGetTotalEnergyConsumption(gpu{i})");
                if (mj < _first[i])
                    throw new SensorException($"{NvmlNative.Library} nvmlDeviceGetTotalEnergyConsumption(gpu{i})",
                        $"energy went backwards ({_first[i]} → {mj} mJ): was the driver reloaded during the measurement?", SensorFault.Malformed);
                values[i] = (mj - _first[i]) * 1e-3;
            }
            else
            {
                Check(NvmlNative.DeviceGetPowerUsage(_devices[i], out uint mw), $"nvmlDeviceGetPowerUsage(gpu{i})");
                values[i] = mw * 1e-3;
            }
        }
    }

    /// <inheritdoc />
    public void Dispose() => _session.Dispose();
}
