namespace VitSparse.Runtime.Energy;

/// <summary>Finds the meters this machine has and picks one for --meter.</summary>
public static class EnergyMeters
{
    /// <summary>
    /// --meter values. auto takes the sensor that sees the CPU running VitSparse: a Jetson's module rail, else the
    /// CPU package (RAPL), else a Jetson's tegrastats output. NVML sees only the GPU board, which a CPU runtime
    /// leaves idle, so it must be named.
    /// </summary>
    public static readonly string[] Choices = ["auto", "ina3221", "rapl", "nvml", "tegrastats"];

    /// <summary>
    /// Probes every kind. A sensor that is absent, not permitted or gives a malformed value is reported as
    /// unavailable with the reason (naming the file); available ones come back open, for the caller to dispose.
    /// </summary>
    public static List<MeterProbe> ProbeAll(Sysfs fs) => [Probe("ina3221", fs), Probe("rapl", fs), Probe("tegrastats", fs), Probe("nvml", fs)];

    static MeterProbe Probe(string name, Sysfs fs)
    {
        try
        {
            return name switch
            {
                "rapl" => RaplMeter.Probe(fs),
                "ina3221" => Ina3221Meter.Probe(fs),
                "nvml" => NvmlMeter.Probe(),
                "tegrastats" => TegrastatsMeter.Probe(),
                _ => throw new InputException("--meter", $"unknown meter '{name}'; known: {string.Join(", ", Choices)}"),
            };
        }
        catch (SensorException e)
        {
            return MeterProbe.Missing(name, name is "ina3221" or "tegrastats" ? "power (integrated)" : "energy counter", e.Sensor, e.Message);
        }
    }

    /// <summary>
    /// The meter --meter asks for. "auto" returns null when no sensor is available (the caller then prints the
    /// modelled estimate); a named meter that is unavailable is an error carrying the reason.
    /// </summary>
    public static IEnergyMeter? Select(string choice, Sysfs fs, out List<MeterStatus> statuses)
    {
        if (!Choices.Contains(choice)) throw new InputException("--meter", $"unknown meter '{choice}'; known: {string.Join(", ", Choices)}");
        var probes = ProbeAll(fs);
        statuses = probes.Select(p => p.Status).ToList();
        var chosen = choice == "auto" ? probes.FirstOrDefault(p => p.Meter != null && p.Status.Name != "nvml") : probes.Single(p => p.Status.Name == choice);
        foreach (var p in probes) if (p != chosen) p.Meter?.Dispose();
        if (chosen == null) return null;
        if (chosen.Meter == null) throw new InputException("--meter", $"{choice} is unavailable: {chosen.Status.Unavailable}");
        return chosen.Meter;
    }
}
