using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using VitSparse.Runtime;
using VitSparse.Runtime.Energy;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Text;

namespace VitSparse.Cli;

/// <summary>Average power per channel over a short window of one available meter.</summary>
public sealed record MeterReading(string Meter, double Seconds, Dictionary<string, double> Watts, double TotalWatts);

public sealed record MetersReport(string SysfsRoot, List<MeterStatus> Meters, List<MeterReading> Readings);

/// <summary>
/// `vitsparse meters [--json FILE] [--sysfs-root DIR] [--seconds S]`: the energy sensors this machine has (name,
/// kind, rails or domains, available or why not) and, for the available ones, the power over a short window,
/// so a user sees that `bench --energy` will measure before starting it.
/// </summary>
static class MetersCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var json = new Option<string?>("--json") { Description = "also write the list as JSON to this file" };
        var root = new Option<string>("--sysfs-root") { Description = "directory holding sys/ (a host's /sys mounted into a container, or a copy from another device)", DefaultValueFactory = _ => "/" };
        var seconds = new Option<double>("--seconds") { Description = "read each available meter for this long and print its average power (0: do not read)", DefaultValueFactory = _ => 1.0 };
        var cmd = new Command("meters", "list the power and energy sensors bench --energy can use: RAPL, NVML, Jetson INA3221") { json, root, seconds };
        cmd.SetAction(pr => CliApp.Guard(pr, stderr, () =>
        {
            var inv = CultureInfo.InvariantCulture;
            string dir = pr.GetValue(root)!;
            double window = pr.GetValue(seconds);
            if (!Directory.Exists(dir)) throw new InputException("--sysfs-root", $"{dir} is not a directory");
            if (!(window >= 0 && window <= 600)) throw new InputException("--seconds", $"must be between 0 and 600, got {window}");
            var probes = EnergyMeters.ProbeAll(new Sysfs(dir));
            var report = new MetersReport(Path.GetFullPath(dir), probes.Select(p => p.Status).ToList(), []);
            try
            {
                foreach (var p in probes)
                {
                    if (p.Meter == null || window == 0) continue;
                    using var rec = new EnergyRecorder(p.Meter);
                    rec.Start();
                    Thread.Sleep(TimeSpan.FromSeconds(window));
                    var w = rec.Stop();
                    report.Readings.Add(new MeterReading(p.Meter.Name, w.Seconds,
                        p.Meter.Channels.Select((c, i) => (c.Name, W: w.Joules[i] / w.Seconds)).ToDictionary(x => x.Name, x => x.W), w.AverageWatts));
                }
            }
            finally
            {
                foreach (var p in probes) p.Meter?.Dispose();
            }
            var t = new MarkdownTable("meter", "kind", "available", "channels (* = in the total)", "source, or why not");
            foreach (var s in report.Meters)
                t.Add(s.Name, s.Kind, s.Available ? "yes" : "no", string.Join(", ", s.Channels.Select(c => c.InTotal ? c.Name + "*" : c.Name)),
                    s.Available ? s.Source : s.Unavailable ?? "");
            stdout.Write(t);
            foreach (var r in report.Readings)
                stdout.WriteLine($"{r.Meter} over {r.Seconds.ToString("0.0", inv)} s: {r.TotalWatts.ToString("0.00", inv)} W total ({string.Join(", ", r.Watts.Select(kv => $"{kv.Key} {kv.Value.ToString("0.00", inv)} W"))})");
            if (!report.Meters.Any(s => s.Available))
                stdout.WriteLine("no sensor available: bench --energy prints the modelled estimate only (labelled as such); see README, \"Measuring energy\"");
            if (pr.GetValue(json) is { } path)
                AtomicFile.Write(path, s => JsonSerializer.Serialize(s, report, MetersJson.Default.MetersReport));
            return 0;
        }));
        return cmd;
    }
}

[JsonSerializable(typeof(MetersReport))]
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
internal partial class MetersJson : JsonSerializerContext;
