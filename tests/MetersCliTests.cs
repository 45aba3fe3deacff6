using System.Text.Json;
using Xunit;

namespace VitSparse.Tests;

public class MetersCliTests
{
    [Fact]
    public void Meters_lists_a_jetson_tree_with_rails_and_its_power_and_writes_json()
    {
        string json = Path.Combine(Fixtures.TempDir(), "meters.json");
        var (code, o, e) = Fixtures.Cli("meters", "--sysfs-root", EnergyMeterTests.Tree("jetson_nano_jp4"), "--seconds", "0.2", "--json", json);
        Assert.True(code == 0, e);
        Assert.Contains("| ina3221 ", o);
        Assert.Contains("POM_5V_IN*, POM_5V_GPU, POM_5V_CPU", o);
        Assert.Contains("ina3221 over 0.2 s: 2.50 W total (POM_5V_IN 2.50 W, POM_5V_GPU 0.50 W, POM_5V_CPU 1.00 W)", o);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var meters = doc.RootElement.GetProperty("meters").EnumerateArray().ToList();
        Assert.Equal(["ina3221", "rapl", "tegrastats", "nvml"], meters.Select(m => m.GetProperty("name").GetString()));
        Assert.True(meters[0].GetProperty("available").GetBoolean());
        Assert.False(meters[1].GetProperty("available").GetBoolean());
        Assert.Contains("no intel-rapl zones", meters[1].GetProperty("unavailable").GetString());
        Assert.Equal(3, meters[0].GetProperty("channels").GetArrayLength());
        Assert.Equal(2.5, doc.RootElement.GetProperty("readings")[0].GetProperty("total_watts").GetDouble(), 6);
    }

    [Fact]
    public void Meters_on_a_machine_without_sensors_says_why_for_each()
    {
        var (code, o, e) = Fixtures.Cli("meters", "--sysfs-root", Fixtures.TempDir());
        Assert.True(code == 0, e);
        Assert.Contains("no intel-rapl zones", o);
        Assert.Contains("no INA3221", o);
        Assert.Contains("no sensor available: bench --energy prints the modelled estimate only", o);
    }

    [Fact]
    public void Meters_rejects_a_missing_root_and_reports_a_malformed_value_naming_the_file()
    {
        var (code, _, e) = Fixtures.Cli("meters", "--sysfs-root", "/nonexistent-sysfs-root");
        Assert.Equal(2, code);
        Assert.Contains("--sysfs-root", e);
        string root = EnergyMeterTests.Tree("rapl_server");
        File.WriteAllText(Path.Combine(root, "sys/class/powercap/intel-rapl:1/energy_uj"), "-\n");
        var (code2, o, e2) = Fixtures.Cli("meters", "--sysfs-root", root, "--seconds", "0");
        Assert.True(code2 == 0, e2);
        Assert.Contains("intel-rapl:1/energy_uj: '-' is not a number", o);
    }
}
