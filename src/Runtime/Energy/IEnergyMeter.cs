namespace VitSparse.Runtime.Energy;

/// <summary>Counter meters report energy accumulated since they were opened; power meters report watts now.</summary>
public enum MeterKind
{
    /// <summary>Energy accumulated since the meter was opened, in joules.</summary>
    Counter,
    /// <summary>Instantaneous power in watts, integrated over time by the recorder.</summary>
    Power,
}

/// <summary>One RAPL domain, INA3221 rail or GPU; <see cref="InTotal"/> says whether it is summed into the total.</summary>
public sealed record MeterChannel(string Name, bool InTotal);

/// <summary>
/// A reader of one kind of sensor (RAPL, NVML, INA3221). <see cref="Read"/> fills one value per channel:
/// joules since the meter was opened (wrap-arounds already undone) for a counter, watts for a power meter,
/// which <see cref="EnergyRecorder"/> integrates over time. A value that cannot be read throws
/// <see cref="SensorException"/> naming its file or call.
/// </summary>
public interface IEnergyMeter : IDisposable
{
    /// <summary>rapl, nvml or ina3221: the value of --meter that selects it.</summary>
    string Name { get; }
    /// <summary>Where it reads: the sysfs directories or the library.</summary>
    string Source { get; }
    /// <summary>Whether <see cref="Read"/> gives accumulated joules or instantaneous watts.</summary>
    MeterKind Kind { get; }
    /// <summary>The domains, rails or devices, one value each in <see cref="Read"/>.</summary>
    IReadOnlyList<MeterChannel> Channels { get; }
    /// <summary>How often the sensor itself refreshes its value; windows must span many updates.</summary>
    TimeSpan UpdateInterval { get; }
    /// <summary>The smallest step of a value: joules for a counter, watts for a power meter.</summary>
    double Resolution { get; }
    /// <summary>One value per channel: joules since opened (counter) or watts now (power meter).</summary>
    void Read(Span<double> values);
}

/// <summary>What `vitsparse meters` prints for one kind of sensor.</summary>
public sealed record MeterStatus(string Name, string Kind, string Source, IReadOnlyList<MeterChannel> Channels, bool Available, string? Unavailable);

/// <summary>A probe's outcome: the status, and the opened meter when it is available (the caller disposes it).</summary>
public sealed record MeterProbe(MeterStatus Status, IEnergyMeter? Meter)
{
    /// <summary>A sensor that is not there or cannot be used, with the reason.</summary>
    public static MeterProbe Missing(string name, string kind, string source, string why) => new(new MeterStatus(name, kind, source, [], false, why), null);

    /// <summary>An available, opened meter.</summary>
    public static MeterProbe Of(IEnergyMeter m) =>
        new(new MeterStatus(m.Name, m.Kind == MeterKind.Counter ? "energy counter" : "power (integrated)", m.Source, m.Channels, true, null), m);
}
