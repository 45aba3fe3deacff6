namespace VitSparse.Runtime.Energy;

/// <summary>
/// Jetson INA3221 power monitors, in both sysfs layouts, found by glob:
/// JetPack 4 (Nano, TX1, TX2; NVIDIA's ina3221x IIO driver): …/ina3221x/*/iio:device*/rail_name_N and in_powerN_input (mW);
/// JetPack 5/6 (Orin; mainline ina3221 hwmon driver): …/ina3221/*/hwmon/hwmon*/inN_label, inN_input (mV), currN_input (mA).
/// A power meter: the recorder samples and integrates it. The module input rail (POM_5V_IN, VDD_IN) is the
/// total when present; otherwise the total is the sum of the rails. The carrier board is never measured.
/// </summary>
public sealed class Ina3221Meter : IEnergyMeter
{
    /// <summary>One rail: either a power file (mW) or a voltage (mV) and current (mA) pair.</summary>
    sealed record Rail(string Name, string Chip, string? PowerFile, string? VoltageFile, string? CurrentFile);

    readonly Sysfs _fs;
    readonly Rail[] _rails;

    Ina3221Meter(Sysfs fs, string source, Rail[] rails, TimeSpan update)
    {
        (_fs, Source, _rails, UpdateInterval) = (fs, source, rails, update);
        bool hasInput = rails.Any(r => IsModuleInput(r.Name));
        Channels = rails.Select(r => new MeterChannel(r.Name, !hasInput || IsModuleInput(r.Name))).ToList();
    }

    /// <inheritdoc />
    public string Name => "ina3221";
    /// <inheritdoc />
    public string Source { get; }
    /// <inheritdoc />
    public MeterKind Kind => MeterKind.Power;
    /// <inheritdoc />
    public IReadOnlyList<MeterChannel> Channels { get; }
    /// <inheritdoc />
    public TimeSpan UpdateInterval { get; }
    /// <summary>The drivers report whole milliwatts (IIO) or mV × mA.</summary>
    public double Resolution => 1e-3;

    /// <summary>The rail that feeds the whole module: Nano's POM_5V_IN, Orin Nano/NX's and TX2's VDD_IN.</summary>
    static bool IsModuleInput(string rail) => rail is "POM_5V_IN" or "VDD_IN";

    /// <summary>Finds INA3221 rails (JetPack 4 IIO or JetPack 5/6 hwmon layout) under the root; unavailable with the reason otherwise.</summary>
    public static MeterProbe Probe(Sysfs fs)
    {
        string iioPattern = "sys/bus/i2c/drivers/ina3221x/*/iio:device*";
        string hwmonPattern = "sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*";
        var rails = new List<Rail>();
        var sources = new List<string>();
        TimeSpan update = TimeSpan.FromMilliseconds(1);
        try
        {
            foreach (var dir in fs.Glob(iioPattern).Concat(fs.Glob("sys/bus/i2c/drivers/ina3221x/*/iio_device")))
            {
                sources.Add(dir);
                foreach (var nameFile in fs.Files(dir, "rail_name_*"))
                {
                    string n = Path.GetFileName(nameFile)["rail_name_".Length..];
                    rails.Add(new Rail(fs.ReadText(nameFile), Path.GetFileName(Path.GetDirectoryName(dir))!, Path.Combine(dir, $"in_power{n}_input"), null, null));
                }
            }
            var hwmon = fs.Glob(hwmonPattern).ToList();
            if (hwmon.Count == 0)   // a container may only have /sys/class/hwmon
                hwmon = fs.Glob("sys/class/hwmon/hwmon*").Where(d => fs.Exists(Path.Combine(d, "name")) && fs.ReadText(Path.Combine(d, "name")) == "ina3221").ToList();
            foreach (var dir in hwmon)
            {
                sources.Add(dir);
                foreach (var labelFile in fs.Files(dir, "in*_label"))
                {
                    string n = Path.GetFileName(labelFile)[2..^"_label".Length];
                    string label = fs.ReadText(labelFile);
                    if (label == "NC") continue;   // "not connected" in NVIDIA's device trees
                    rails.Add(new Rail(label, Chip(dir), null, Path.Combine(dir, $"in{n}_input"), Path.Combine(dir, $"curr{n}_input")));
                }
                string interval = Path.Combine(dir, "update_interval");   // hwmon's own refresh period, ms
                if (fs.Exists(interval)) update = TimeSpan.FromMilliseconds(Math.Max(1, fs.ReadInteger(interval)));
            }
            if (rails.Count == 0)
                return MeterProbe.Missing("ina3221", "power (integrated)", fs.PathOf("sys/bus/i2c/drivers"),
                    sources.Count == 0
                        ? $"no INA3221 under {fs.PathOf("sys/bus/i2c/drivers")} (ina3221x/*/iio:device* for JetPack 4, ina3221/*/hwmon/hwmon* for JetPack 5/6): not a Jetson, or /sys is not mounted from the host"
                        : $"INA3221 found at {string.Join(", ", sources)} but no labelled rails (rail_name_N or inN_label)");
            var meter = new Ina3221Meter(fs, string.Join(", ", sources), [.. Unique(rails)], update);
            meter.ReadRails(new double[rails.Count]);   // every rail readable now, or the reason why not
            return MeterProbe.Of(meter);
        }
        catch (SensorException e) when (e.Fault is SensorFault.NotFound or SensorFault.PermissionDenied)
        {
            return MeterProbe.Missing("ina3221", "power (integrated)", sources.Count > 0 ? string.Join(", ", sources) : fs.PathOf("sys/bus/i2c/drivers"),
                e.Fault == SensorFault.PermissionDenied ? $"{e.Message}: run as root or make the file readable (chmod a+r)" : e.Message);
        }
    }

    /// <summary>The I2C device of a hwmon directory (…/1-0040/hwmon/hwmon3 → 1-0040), or of a class/hwmon entry its own name.</summary>
    static string Chip(string hwmonDir)
    {
        var parent = Path.GetDirectoryName(hwmonDir)!;
        return Path.GetFileName(parent) == "hwmon" ? Path.GetFileName(Path.GetDirectoryName(parent))! : Path.GetFileName(hwmonDir);
    }

    /// <summary>AGX Orin has two chips; a label that repeats gets its chip (1-0041) appended.</summary>
    static IEnumerable<Rail> Unique(List<Rail> rails)
    {
        var seen = new HashSet<string>();
        foreach (var r in rails) yield return seen.Add(r.Name) ? r : r with { Name = $"{r.Name}@{r.Chip}" };
    }

    void ReadRails(Span<double> values)
    {
        for (int i = 0; i < _rails.Length; i++)
        {
            var r = _rails[i];
            values[i] = r.PowerFile != null
                ? _fs.ReadInteger(r.PowerFile) * 1e-3
                : _fs.ReadInteger(r.VoltageFile!) * (double)_fs.ReadInteger(r.CurrentFile!) * 1e-6;
        }
    }

    /// <inheritdoc />
    public void Read(Span<double> values)
    {
        try { ReadRails(values); }
        catch (SensorException e) when (e.Fault is SensorFault.NotFound or SensorFault.PermissionDenied)
        {
            throw new SensorException(e.Sensor, $"the rail {(e.Fault == SensorFault.NotFound ? "disappeared" : "became unreadable")} during the measurement", e.Fault, e);
        }
    }

    /// <inheritdoc />
    public void Dispose() { }
}
