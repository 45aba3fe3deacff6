using VitSparse.Runtime.Energy;
using Xunit;

namespace VitSparse.Tests;

/// <summary>Sensor readers against the sysfs fixture trees of tests/fixtures/energy (see its README).</summary>
public class EnergyMeterTests
{
    /// <summary>A writable copy of a fixture tree, so a test can move counters and remove rails.</summary>
    internal static string Tree(string name)
    {
        string src = Path.Combine(Fixtures.Dir, "energy", name);
        Assert.True(Directory.Exists(src), $"fixture tree {src} is missing");
        string dst = Path.Combine(Fixtures.TempDir(), name);
        foreach (var f in Directory.EnumerateFiles(src, "*", SearchOption.AllDirectories))
        {
            string to = Path.Combine(dst, Path.GetRelativePath(src, f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }
        return dst;
    }

    static IEnergyMeter Open(MeterProbe p)
    {
        Assert.True(p.Meter != null, $"unavailable: {p.Status.Unavailable}");
        return p.Meter;
    }

    static double[] Read(IEnergyMeter m)
    {
        var v = new double[m.Channels.Count];
        m.Read(v);
        return v;
    }

    static void Write(string root, string rel, object value) => File.WriteAllText(Path.Combine(root, rel), $"{value}\n");

    /// <summary>A Sysfs whose reads of one file fail as they do for a non-root user on Linux ≥ 5.10.</summary>
    sealed class DenyingSysfs(string root, string deniedFileName) : Sysfs(root)
    {
        protected override string ReadAllText(string path) =>
            Path.GetFileName(path) == deniedFileName ? throw new UnauthorizedAccessException($"Access to the path '{path}' is denied.") : base.ReadAllText(path);
    }

    [Fact]
    public void Rapl_client_names_domains_sums_only_the_package_and_counts_joules_since_open()
    {
        string root = Tree("rapl_client");
        using var m = Open(RaplMeter.Probe(new Sysfs(root)));
        Assert.Equal(MeterKind.Counter, m.Kind);
        Assert.Equal(["package-0", "package-0/core", "package-0/uncore", "psys"], m.Channels.Select(c => c.Name));
        Assert.Equal([true, false, false, false], m.Channels.Select(c => c.InTotal));
        Assert.Equal([0.0, 0, 0, 0], Read(m));
        Write(root, "sys/class/powercap/intel-rapl:0/energy_uj", 3_500_000);   // +2.5 J
        Write(root, "sys/class/powercap/intel-rapl:0:0/energy_uj", 1_400_000);   // +1 J
        var v = Read(m);
        Assert.Equal(2.5, v[0], 9);
        Assert.Equal(1.0, v[1], 9);
        Assert.Equal(0.0, v[3], 9);
    }

    [Fact]
    public void Rapl_server_sums_packages_and_dram()
    {
        using var m = Open(RaplMeter.Probe(new Sysfs(Tree("rapl_server"))));
        Assert.Equal(["package-0", "package-0/dram", "package-1", "package-1/dram"], m.Channels.Select(c => c.Name));
        Assert.All(m.Channels, c => Assert.True(c.InTotal));
    }

    [Fact]
    public void Rapl_reads_the_devices_virtual_tree_when_the_class_directory_is_absent()
    {
        using var m = Open(RaplMeter.Probe(new Sysfs(Tree("rapl_virtual"))));
        Assert.Equal(["package-0", "package-0/core"], m.Channels.Select(c => c.Name));
        Assert.EndsWith("sys/devices/virtual/powercap/intel-rapl", m.Source);
    }

    [Fact]
    public void Rapl_undoes_a_wrap_around_with_max_energy_range()
    {
        string root = Tree("rapl_client");
        const long range = 262143328850;
        string file = "sys/class/powercap/intel-rapl:0/energy_uj";
        Write(root, file, range - 1_000_000);
        using var m = Open(RaplMeter.Probe(new Sysfs(root)));
        Write(root, file, 2_000_000);   // wrapped: 1 J before the top, 2 J after
        Assert.Equal(3.0, Read(m)[0], 9);
        Write(root, file, 2_500_000);
        Assert.Equal(3.5, Read(m)[0], 9);
    }

    [Fact]
    public void Rapl_counter_going_backwards_without_a_range_is_an_error_naming_the_file()
    {
        string root = Tree("rapl_no_range");
        using var m = Open(RaplMeter.Probe(new Sysfs(root)));
        Write(root, "sys/class/powercap/intel-rapl:0/energy_uj", 999_000);
        var e = Assert.Throws<SensorException>(() => Read(m));
        Assert.Contains("intel-rapl:0/energy_uj", e.Message);
        Assert.Contains("went backwards (1000000 → 999000 µJ)", e.Message);
        Assert.Contains("no max_energy_range_uj", e.Message);
    }

    [Fact]
    public void Rapl_value_beyond_its_range_is_an_error()
    {
        string root = Tree("rapl_client");
        using var m = Open(RaplMeter.Probe(new Sysfs(root)));
        Write(root, "sys/class/powercap/intel-rapl:1/energy_uj", 262143328851);
        Assert.Contains("outside [0, max_energy_range_uj", Assert.Throws<SensorException>(() => Read(m)).Message);
    }

    [Theory]
    [InlineData("12.5")]
    [InlineData("")]
    [InlineData("0x10")]
    [InlineData("N/A")]
    public void Non_number_sysfs_value_is_an_error_naming_the_file(string text)
    {
        string root = Tree("rapl_client");
        using var m = Open(RaplMeter.Probe(new Sysfs(root)));
        File.WriteAllText(Path.Combine(root, "sys/class/powercap/intel-rapl:0:1/energy_uj"), text);
        var e = Assert.Throws<SensorException>(() => Read(m));
        Assert.Equal(SensorFault.Malformed, e.Fault);
        Assert.Contains("intel-rapl:0:1/energy_uj", e.Message);
        Assert.Contains("is not a number", e.Message);
    }

    [Fact]
    public void Rapl_permission_denied_is_unavailable_with_how_to_allow_it()
    {
        var p = RaplMeter.Probe(new DenyingSysfs(Tree("rapl_client"), "energy_uj"));
        Assert.Null(p.Meter);
        Assert.False(p.Status.Available);
        Assert.Contains("energy_uj: permission denied", p.Status.Unavailable);
        Assert.Contains("root-only since Linux 5.10", p.Status.Unavailable);
        Assert.Contains("chmod 0444", p.Status.Unavailable);
    }

    [Fact]
    public void Rapl_zone_name_unreadable_is_unavailable_not_a_crash()
    {
        var p = RaplMeter.Probe(new DenyingSysfs(Tree("rapl_server"), "name"));
        Assert.Null(p.Meter);
        Assert.Contains("intel-rapl:0/name: permission denied", p.Status.Unavailable);
    }

    [Fact]
    public void Rapl_permission_denied_by_file_mode_when_not_root()
    {
        if (Environment.UserName == "root" || OperatingSystem.IsWindows()) return;   // root reads a 0000 file; the hook test above covers it
        string root = Tree("rapl_client");
        File.SetUnixFileMode(Path.Combine(root, "sys/class/powercap/intel-rapl:0/energy_uj"), UnixFileMode.UserWrite);
        var p = RaplMeter.Probe(new Sysfs(root));
        Assert.Null(p.Meter);
        Assert.Contains("permission denied", p.Status.Unavailable);
    }

    [Fact]
    public void Missing_powercap_is_unavailable_with_the_reason()
    {
        var p = RaplMeter.Probe(new Sysfs(Tree("jetson_nano_jp4")));
        Assert.Null(p.Meter);
        Assert.Contains("no intel-rapl zones", p.Status.Unavailable);
        Assert.Empty(p.Status.Channels);
    }

    [Fact]
    public void Rapl_zone_disappearing_mid_run_is_an_error_naming_the_file()
    {
        string root = Tree("rapl_server");
        using var m = Open(RaplMeter.Probe(new Sysfs(root)));
        Directory.Delete(Path.Combine(root, "sys/class/powercap/intel-rapl:1:0"), true);
        var e = Assert.Throws<SensorException>(() => Read(m));
        Assert.Contains("intel-rapl:1:0/energy_uj: disappeared during the measurement", e.Message);
    }

    [Fact]
    public void Ina3221_jetpack4_iio_reads_milliwatts_per_rail_and_the_module_input_is_the_total()
    {
        using var m = Open(Ina3221Meter.Probe(new Sysfs(Tree("jetson_nano_jp4"))));
        Assert.Equal(MeterKind.Power, m.Kind);
        Assert.Equal(["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"], m.Channels.Select(c => c.Name));
        Assert.Equal([true, false, false], m.Channels.Select(c => c.InTotal));
        Assert.Equal([2.5, 0.5, 1.0], Read(m));
        Assert.Contains("ina3221x/6-0040/iio:device0", m.Source);
    }

    [Fact]
    public void Ina3221_jetpack4_tx2_iio_device_layout_with_two_chips()
    {
        using var m = Open(Ina3221Meter.Probe(new Sysfs(Tree("jetson_tx2_jp4"))));
        Assert.Equal(6, m.Channels.Count);
        Assert.Equal(["VDD_IN"], m.Channels.Where(c => c.InTotal).Select(c => c.Name));
        Assert.Equal(2.293, Read(m)[3], 9);
    }

    [Fact]
    public void Ina3221_jetpack5_hwmon_multiplies_millivolts_by_milliamps()
    {
        using var m = Open(Ina3221Meter.Probe(new Sysfs(Tree("jetson_orin_nano_jp5"))));
        Assert.Equal(["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"], m.Channels.Select(c => c.Name));
        Assert.Equal([true, false, false], m.Channels.Select(c => c.InTotal));
        Assert.Equal([5.0, 1.0, 2.0], Read(m));
        Assert.Equal(TimeSpan.FromMilliseconds(1), m.UpdateInterval);
    }

    [Fact]
    public void Ina3221_agx_orin_two_chips_skip_NC_channels_sum_all_rails_and_read_update_interval()
    {
        using var m = Open(Ina3221Meter.Probe(new Sysfs(Tree("jetson_agx_orin_jp5"))));
        Assert.Equal(["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"], m.Channels.Select(c => c.Name));
        Assert.All(m.Channels, c => Assert.True(c.InTotal));   // no module input rail: the total is the sum
        Assert.Equal([5.0, 2.0, 3.0, 0.5], Read(m));
        Assert.Equal(TimeSpan.FromMilliseconds(4), m.UpdateInterval);
    }

    [Fact]
    public void Ina3221_found_through_class_hwmon_by_name()
    {
        using var m = Open(Ina3221Meter.Probe(new Sysfs(Tree("hwmon_class_only"))));
        Assert.Equal(["VDD_IN"], m.Channels.Select(c => c.Name));
        Assert.Equal(3.0, Read(m)[0], 9);
    }

    [Fact]
    public void Ina3221_absent_is_unavailable_with_both_layouts_named()
    {
        var p = Ina3221Meter.Probe(new Sysfs(Tree("rapl_client")));
        Assert.Null(p.Meter);
        Assert.Contains("iio:device*", p.Status.Unavailable);
        Assert.Contains("hwmon", p.Status.Unavailable);
    }

    [Fact]
    public void Ina3221_permission_denied_is_unavailable()
    {
        var p = Ina3221Meter.Probe(new DenyingSysfs(Tree("jetson_orin_nano_jp5"), "curr2_input"));
        Assert.Null(p.Meter);
        Assert.Contains("curr2_input: permission denied", p.Status.Unavailable);
    }

    [Fact]
    public void Ina3221_rail_disappearing_mid_run_is_an_error_naming_the_file()
    {
        string root = Tree("jetson_nano_jp4");
        using var m = Open(Ina3221Meter.Probe(new Sysfs(root)));
        File.Delete(Path.Combine(root, "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/in_power2_input"));
        var e = Assert.Throws<SensorException>(() => Read(m));
        Assert.Contains("in_power2_input: the rail disappeared during the measurement", e.Message);
    }

    [Fact]
    public void Ina3221_non_number_is_an_error_naming_the_file()
    {
        string root = Tree("jetson_orin_nano_jp5");
        using var m = Open(Ina3221Meter.Probe(new Sysfs(root)));
        File.WriteAllText(Path.Combine(root, "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/in3_input"), "5000 mV\n");
        var e = Assert.Throws<SensorException>(() => Read(m));
        Assert.Contains("hwmon3/in3_input: '5000 mV' is not a number", e.Message);
    }

    [Fact]
    public void Nvml_without_the_driver_library_is_unavailable_with_the_reason()
    {
        if (System.Runtime.InteropServices.NativeLibrary.TryLoad("libnvidia-ml.so.1", out var h))
        {
            System.Runtime.InteropServices.NativeLibrary.Free(h);
            return;   // a machine with the NVIDIA driver: the device check measures there instead
        }
        var p = NvmlMeter.Probe();
        Assert.Null(p.Meter);
        Assert.False(p.Status.Available);
        Assert.Equal("nvml", p.Status.Name);
        Assert.Contains("libnvidia-ml.so.1 not found", p.Status.Unavailable);
    }

    [Fact]
    public void Auto_picks_the_jetson_rail_and_a_named_unavailable_meter_is_an_error()
    {
        using (var m = EnergyMeters.Select("auto", new Sysfs(Tree("jetson_nano_jp4")), out var statuses))
        {
            Assert.Equal("ina3221", m!.Name);
            Assert.Equal(["ina3221", "rapl", "tegrastats", "nvml"], statuses.Select(s => s.Name));
            Assert.Equal([true, false], statuses.Take(2).Select(s => s.Available));
        }
        Assert.Null(EnergyMeters.Select("auto", new Sysfs(Fixtures.TempDir()), out _));
        var e = Assert.Throws<VitSparse.Runtime.InputException>(() => EnergyMeters.Select("rapl", new Sysfs(Tree("jetson_nano_jp4")), out _));
        Assert.Contains("--meter: rapl is unavailable: no intel-rapl zones", e.Message);
        Assert.Throws<VitSparse.Runtime.InputException>(() => EnergyMeters.Select("joulescope", new Sysfs(Fixtures.TempDir()), out _));
    }

    [Fact]
    public void Malformed_value_at_probe_is_reported_unavailable_naming_the_file()
    {
        string root = Tree("rapl_client");
        File.WriteAllText(Path.Combine(root, "sys/class/powercap/intel-rapl:0/max_energy_range_uj"), "lots\n");
        var s = EnergyMeters.ProbeAll(new Sysfs(root)).Single(p => p.Status.Name == "rapl").Status;
        Assert.False(s.Available);
        Assert.Contains("intel-rapl:0/max_energy_range_uj: 'lots' is not a number", s.Unavailable);
    }

    [Fact]
    public void Tegrastats_nano_and_orin_forms_give_instant_and_average_watts()
    {
        var nano = TegrastatsLine.Parse(File.ReadAllText(Path.Combine(Fixtures.Dir, "energy", "tegrastats_nano.txt")).Trim(), "nano");
        Assert.Equal(["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"], nano.Select(r => r.Name));
        Assert.Equal([2.532, 0.0, 0.401], nano.Select(r => r.InstantWatts));
        Assert.Equal([2.698, 0.123, 0.452], nano.Select(r => r.AverageWatts));
        var orin = TegrastatsLine.Parse(File.ReadAllText(Path.Combine(Fixtures.Dir, "energy", "tegrastats_orin.txt")).Trim(), "orin");
        Assert.Equal(["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"], orin.Select(r => r.Name));
        Assert.Equal([5.251, 0.512, 2.72], orin.Select(r => r.InstantWatts));
        Assert.Equal(8.535, orin[0].AverageWatts, 9);
    }

    [Theory]
    [InlineData(0, "not a tegrastats line with power rails")]
    [InlineData(1, "rail VDD_IN is not followed by instant/average power")]
    [InlineData(2, "rail VDD_IN is not followed by instant/average power")]
    public void Tegrastats_unknown_forms_are_errors_naming_the_line(int index, string expected)
    {
        string line = File.ReadAllLines(Path.Combine(Fixtures.Dir, "energy", "tegrastats_bad.txt"))[index];
        var e = Assert.Throws<SensorException>(() => TegrastatsLine.Parse(line, $"tegrastats_bad.txt:{index + 1}"));
        Assert.StartsWith($"tegrastats_bad.txt:{index + 1}: {expected}", e.Message);
    }
}
