namespace VitSparse.Runtime.Energy;

/// <summary>
/// Linux powercap RAPL (Intel, and AMD Zen under the same intel-rapl control type): each zone's energy_uj is a
/// µJ counter that wraps at max_energy_range_uj. Read keeps the last raw value of every zone and adds the
/// delta, undoing a wrap with the range; a counter that goes backwards without a range is an error, not 0.
/// Total = package and dram domains (core, uncore and psys overlap the package, so they are listed, not summed).
/// </summary>
public sealed class RaplMeter : IEnergyMeter
{
    sealed class Zone(string file, string channel, long range, long first)
    {
        public readonly string File = file;
        public readonly string Channel = channel;
        public readonly long Range = range;
        public long Last = first;
        public double Microjoules;
    }

    readonly Sysfs _fs;
    readonly Zone[] _zones;

    RaplMeter(Sysfs fs, string source, Zone[] zones)
    {
        (_fs, Source, _zones) = (fs, source, zones);
        Channels = zones.Select(z => new MeterChannel(z.Channel, IsSummed(z.Channel))).ToList();
    }

    /// <inheritdoc />
    public string Name => "rapl";
    /// <inheritdoc />
    public string Source { get; }
    /// <inheritdoc />
    public MeterKind Kind => MeterKind.Counter;
    /// <inheritdoc />
    public IReadOnlyList<MeterChannel> Channels { get; }
    /// <summary>RAPL MSRs update about every millisecond.</summary>
    public TimeSpan UpdateInterval => TimeSpan.FromMilliseconds(1);
    /// <summary>The energy status unit: 61 µJ on client parts, 15.3 µJ on servers; the coarser one is assumed.</summary>
    public double Resolution => 61e-6;

    internal const string PermissionAdvice =
        "energy_uj is root-only since Linux 5.10 (PLATYPUS, CVE-2020-8694); run as root, or allow reading until the next boot with " +
        "`sudo chmod 0444 /sys/class/powercap/intel-rapl:*/energy_uj /sys/class/powercap/intel-rapl:*:*/energy_uj` " +
        "(a udev rule or /etc/sysfs.conf `mode class/powercap/intel-rapl:0/energy_uj = 0444` makes it stick)";

    /// <summary>Finds the powercap RAPL zones under the root; unavailable with the reason (absent, or root-only) otherwise.</summary>
    public static MeterProbe Probe(Sysfs fs)
    {
        var dirs = fs.Glob("sys/class/powercap/intel-rapl:*").ToList();
        string where = fs.PathOf("sys/class/powercap");
        if (dirs.Count == 0)
        {
            // Older kernels and some containers only have the devices/virtual tree (package zones with sub-zones inside).
            var top = fs.Glob("sys/devices/virtual/powercap/intel-rapl/intel-rapl:*");
            dirs = top.Concat(top.SelectMany(t => fs.Glob(Path.GetRelativePath(fs.Root, t) + "/intel-rapl:*"))).ToList();
            if (dirs.Count > 0) where = fs.PathOf("sys/devices/virtual/powercap/intel-rapl");
        }
        if (dirs.Count == 0)
            return MeterProbe.Missing("rapl", "energy counter", where,
                $"no intel-rapl zones under {where} (not an Intel or AMD Zen CPU, a VM that does not expose RAPL, or the intel_rapl_common module is not loaded)");
        var names = new Dictionary<string, string>();   // zone id (intel-rapl:0) -> name (package-0)
        var zones = new List<Zone>();
        try
        {
            foreach (var d in dirs) names[Path.GetFileName(d)] = fs.ReadText(Path.Combine(d, "name"));
            foreach (var d in dirs.OrderBy(Path.GetFileName, StringComparer.Ordinal))
            {
                string id = Path.GetFileName(d);
                string channel = names[id];
                int lastColon = id.LastIndexOf(':');
                if (id.Count(c => c == ':') == 2 && names.TryGetValue(id[..lastColon], out var parent)) channel = $"{parent}/{channel}";
                string rangeFile = Path.Combine(d, "max_energy_range_uj");
                long range = fs.Exists(rangeFile) ? fs.ReadInteger(rangeFile) : 0;
                string energy = Path.Combine(d, "energy_uj");
                zones.Add(new Zone(energy, channel, range, fs.ReadInteger(energy)));
            }
        }
        catch (SensorException e) when (e.Fault == SensorFault.PermissionDenied)
        {
            return MeterProbe.Missing("rapl", "energy counter", where, $"{e.Message}: {PermissionAdvice}");
        }
        catch (SensorException e) when (e.Fault == SensorFault.NotFound)
        {
            return MeterProbe.Missing("rapl", "energy counter", where, e.Message);
        }
        return MeterProbe.Of(new RaplMeter(fs, where, [.. zones]));
    }

    /// <summary>Packages and DRAM are disjoint; core, uncore (parts of the package) and psys (the platform) are not summed.</summary>
    static bool IsSummed(string channel)
    {
        string leaf = channel[(channel.LastIndexOf('/') + 1)..];
        return leaf.StartsWith("package", StringComparison.Ordinal) || leaf == "dram";
    }

    /// <inheritdoc />
    public void Read(Span<double> values)
    {
        for (int i = 0; i < _zones.Length; i++)
        {
            var z = _zones[i];
            long raw;
            try { raw = _fs.ReadInteger(z.File); }
            catch (SensorException e) when (e.Fault is SensorFault.NotFound or SensorFault.PermissionDenied)
            { throw new SensorException(z.File, $"{(e.Fault == SensorFault.NotFound ? "disappeared" : "became unreadable")} during the measurement", e.Fault, e); }
            if (z.Range > 0 && (raw < 0 || raw > z.Range))
                throw new SensorException(z.File, $"{raw} µJ is outside [0, max_energy_range_uj = {z.Range}]", SensorFault.Malformed);
            long delta = raw - z.Last;
            if (delta < 0)
            {
                if (z.Range <= 0)
                    throw new SensorException(z.File, $"counter went backwards ({z.Last} → {raw} µJ) and there is no max_energy_range_uj to undo a wrap-around", SensorFault.Malformed);
                delta += z.Range;   // one wrap: windows are ≤ 600 s, a package counter wraps after 262 kJ (15 min at 300 W)
            }
            z.Last = raw;
            z.Microjoules += delta;
            values[i] = z.Microjoules * 1e-6;
        }
    }

    /// <inheritdoc />
    public void Dispose() { }
}
