using System.CommandLine;
using System.Globalization;
using VitSparse.Runtime;
using VitSparse.Runtime.Energy;
using VitSparse.Runtime.Models;
using VitSparse.Runtime.Text;

namespace VitSparse.Bench;

/// <summary>A model's modelled energy at the batch of the run, beside the latency it was measured at.</summary>
public sealed record ModelledRow(string Model, int Batch, double Gflop, double WeightMegabytes, double ActivationMegabytes,
    double ModelledJoulesPerInference, double MedianMs, double ModelledWattsAtMeasuredLatency, LpvitPower? BlockPower = null);

/// <summary>
/// The energy part of a bench report. Measured rows come from a sensor; modelled rows from
/// <see cref="EnergyModel"/> and are kept apart (their own list, their own table, their own column names).
/// </summary>
public sealed record EnergyReport(string? Meter, List<MeterStatus> Meters, List<EnergyMeasurement> Measured, DeviceClass ModelConstants, List<ModelledRow> Modelled);

/// <summary>`bench --energy [--meter …] [--sysfs-root DIR]`: options, the measurement over bench's runtimes, the tables.</summary>
public static class EnergyBench
{
    static readonly Option<bool> EnergyOption = new("--energy")
    {
        Description = "also measure joules per inference with a power sensor (idle power first, then ≥ 2 s of inferences per runtime per round); " +
                      "without a sensor, print the modelled estimate (labelled as such)",
    };
    static readonly Option<string> MeterOption = new("--meter") { Description = "sensor for --energy: auto (ina3221, else rapl, else tegrastats), ina3221, rapl, tegrastats or nvml", DefaultValueFactory = _ => "auto" };
    internal static readonly Option<string> SysfsRootOption = new("--sysfs-root") { Description = "directory holding sys/ (a host's /sys mounted into a container, or a copy from another device)", DefaultValueFactory = _ => "/" };
    static readonly Option<int> RoundsOption = new("--energy-rounds") { Description = "energy rounds, each running every runtime for one window", DefaultValueFactory = _ => 3 };
    static readonly Option<double> WindowOption = new("--energy-window") { Description = "seconds of back-to-back inferences per runtime per round (at least 2, and 40 sensor updates)", DefaultValueFactory = _ => 2.0 };

    public static void AddOptions(Command command)
    {
        foreach (var o in new Option[] { EnergyOption, MeterOption, SysfsRootOption, RoundsOption, WindowOption }) command.Options.Add(o);
    }

    /// <summary>--energy's state for one bench run: the open meter (none: modelled only) and the report being filled.</summary>
    public sealed class Session(IEnergyMeter? meter, EnergyReport report, int rounds, TimeSpan window) : IDisposable
    {
        public IEnergyMeter? Meter { get; } = meter;
        public EnergyReport Report { get; } = report;
        public int Rounds { get; } = rounds;
        public TimeSpan Window { get; } = window;
        public void Dispose() => Meter?.Dispose();
    }

    /// <summary>Null without --energy. A named --meter that is unavailable is an error carrying the reason.</summary>
    public static Session? Open(ParseResult pr)
    {
        if (!pr.GetValue(EnergyOption)) return null;
        int rounds = pr.GetValue(RoundsOption);
        double window = pr.GetValue(WindowOption);
        if (rounds < 1) throw new InputException("--energy-rounds", $"must be at least 1, got {rounds}");
        if (!(window >= 2 && window <= 600)) throw new InputException("--energy-window", $"must be between 2 and 600 seconds, got {window}");
        string root = pr.GetValue(SysfsRootOption)!;
        if (!Directory.Exists(root)) throw new InputException("--sysfs-root", $"{root} is not a directory");
        var meter = EnergyMeters.Select(pr.GetValue(MeterOption)!, new Sysfs(root), out var statuses);
        return new Session(meter, new EnergyReport(meter?.Name, statuses, [], EnergyModel.Ops45nm, []), rounds, TimeSpan.FromSeconds(window));
    }

    /// <summary>Runs the protocol over one bench model's runtimes (when a meter is open) and adds the modelled rows.</summary>
    internal static void Measure(Session s, IReadOnlyList<(string Model, VitModel Loaded, string Runtime, double MedianMs, Action<int> Run)> work, int batch, TextWriter log)
    {
        if (s.Meter != null)
            s.Report.Measured.Add(EnergyProtocol.Measure(s.Meter,
                work.Select(w => new EnergyWorkload(w.Model, w.Runtime, w.MedianMs / 1000, w.Run)).ToList(), s.Rounds, s.Window, log.WriteLine));
        foreach (var w in work.Where(w => w.Runtime == "VitSparse"))
        {
            var m = EnergyModel.Estimate(w.Loaded, batch, s.Report.ModelConstants);
            double joules = m.JoulesPerImage * batch;
            s.Report.Modelled.Add(new ModelledRow(w.Model, batch, m.Gflop * batch, m.WeightMegabytes * batch, m.ActivationMegabytes * batch, joules, w.MedianMs,
                joules / (w.MedianMs / 1000), m.BlockPower));
        }
    }

    /// <summary>Dense ÷ pruned energy per inference for a speedup row: measured (same runtime) and modelled.</summary>
    internal static (double? Measured, double? Modelled) Ratios(EnergyReport? e, string dense, string pruned, string runtime)
    {
        if (e == null) return (null, null);
        var rows = e.Measured.SelectMany(m => m.Rows).ToList();
        var md = rows.LastOrDefault(r => r.Model == dense && r.Runtime == runtime);
        var mp = rows.LastOrDefault(r => r.Model == pruned && r.Runtime == runtime);
        var od = e.Modelled.LastOrDefault(r => r.Model == dense);
        var op = e.Modelled.LastOrDefault(r => r.Model == pruned);
        // No ratio of numbers lost in the idle noise: it would look like a result.
        return (md is { Reliable: true } && mp is { Reliable: true } ? md.JoulesPerInferenceMedian / mp.JoulesPerInferenceMedian : null,
                od != null && op != null ? od.ModelledJoulesPerInference / op.ModelledJoulesPerInference : null);
    }

    public static string Tables(EnergyReport e)
    {
        var inv = CultureInfo.InvariantCulture;
        var sw = new StringWriter(inv);
        foreach (var m in e.Measured)
        {
            sw.WriteLine();
            sw.WriteLine($"Energy per inference, measured with {m.Meter} ({string.Join(" + ", m.TotalChannels)}; {m.Source}); idle {m.IdleWatts.ToString("0.00", inv)} W over " +
                         $"{m.IdleSeconds.ToString("0.0", inv)} s subtracted; {m.Rows[0].Rounds} round{(m.Rows[0].Rounds == 1 ? "" : "s")} of ≥ {m.WindowSeconds.ToString("0.0", inv)} s per runtime" +
                         (m.SamplePeriodMs is { } p ? $"; power sampled every {p.ToString("0", inv)} ms" : "") + ":");
            sw.WriteLine();
            var t = new MarkdownTable("model", "runtime", "measured J/inference (median)", "min", "max", "inferences/round (median)", "average W", "W above idle").RightAlign(2, 3, 4, 5, 6, 7);
            foreach (var r in m.Rows)
                t.Add(r.Model, r.Runtime, r.JoulesPerInferenceMedian.ToString("0.0000", inv) + (r.Reliable ? "" : " (unreliable)"), r.JoulesPerInferenceMin.ToString("0.0000", inv), r.JoulesPerInferenceMax.ToString("0.0000", inv),
                    r.InferencesPerRound, r.AverageWatts.ToString("0.00", inv), r.NetWatts.ToString("0.00", inv));
            sw.Write(t);
            foreach (var w in m.Warnings) sw.WriteLine($"warning: {w}");
        }
        if (e.Measured.Count == 0)
        {
            sw.WriteLine();
            sw.WriteLine("No energy sensor on this machine, so no measured energy:");
            foreach (var s in e.Meters) sw.WriteLine($"  {s.Name}: {(s.Available ? "available" : s.Unavailable)}");
        }
        sw.WriteLine();
        sw.WriteLine($"Energy per inference, MODELLED, NOT MEASURED (FLOPs × {e.ModelConstants.PicojoulesPerFlop.ToString("0.##", inv)} pJ + weight bytes from DRAM × " +
                     $"{e.ModelConstants.PicojoulesPerDramByte.ToString("0.##", inv)} pJ + activation bytes through SRAM × {e.ModelConstants.PicojoulesPerSramByte.ToString("0.##", inv)} pJ; " +
                     $"{e.ModelConstants.Name}: {e.ModelConstants.Source}; arithmetic and data movement only, no idle, static or uncore power):");
        sw.WriteLine();
        var mt = new MarkdownTable("model", "batch", "GFLOP", "weights MB", "activations MB", "modelled J/inference", "modelled W at measured latency").RightAlign(1, 2, 3, 4, 5, 6);
        foreach (var r in e.Modelled)
            mt.Add(r.Model, r.Batch, r.Gflop.ToString("0.000", inv), r.WeightMegabytes.ToString("0.0", inv), r.ActivationMegabytes.ToString("0.0", inv),
                r.ModelledJoulesPerInference.ToString("0.0000", inv), r.ModelledWattsAtMeasuredLatency.ToString("0.00", inv));
        sw.Write(mt);
        if (e.Modelled.Any(r => r.BlockPower != null))
        {
            sw.WriteLine();
            sw.WriteLine("LPViT's block power term (methods.md §3.3: blocks × ⌊input width / 16⌋, unitless, summed over block-sparse layers; " +
                         "the reference code counts pruned blocks, kept blocks are what still draws power):");
            sw.WriteLine();
            var pt = new MarkdownTable("model", "BSR layers", "pruned-block units (as coded)", "kept-block units").RightAlign(1, 2, 3);
            foreach (var r in e.Modelled.Where(r => r.BlockPower != null))
                pt.Add(r.Model, r.BlockPower!.Layers, r.BlockPower.PrunedBlockUnits.ToString("N0", inv), r.BlockPower.KeptBlockUnits.ToString("N0", inv));
            sw.Write(pt);
        }
        return sw.ToString();
    }
}
