using System.Diagnostics;

namespace VitSparse.Runtime.Energy;

/// <summary>A runtime on a model under measurement: Run(n) does n inferences back to back.</summary>
public sealed record EnergyWorkload(string Model, string Runtime, double SecondsPerInference, Action<int> Run);

/// <summary>Measured joules per inference of one workload over the rounds (net of idle power), and its power.</summary>
public sealed record MeasuredEnergy(string Model, string Runtime, int Rounds, int InferencesPerRound, double SecondsPerRound,
    double JoulesPerInferenceMin, double JoulesPerInferenceMedian, double JoulesPerInferenceMax, double AverageWatts, double NetWatts);

/// <summary>The whole measurement: which meter, the idle power that was subtracted, the window, the rows.</summary>
public sealed record EnergyMeasurement(string Meter, string Source, IReadOnlyList<string> TotalChannels, double IdleWatts, double IdleSeconds,
    double WindowSeconds, double? SamplePeriodMs, List<MeasuredEnergy> Rows, List<string> Warnings);

/// <summary>
/// The energy protocol. Idle power first (nothing running, one window), as LPViT's "net power"; then rounds in
/// which every workload runs back to back for at least one window (≥ 2 s and ≥ 40 sensor updates), the
/// workloads alternating within each round so drift hits all alike. Per round and workload:
/// J/inference = (E − P_idle·t) / N. Rows give min/median/max over the rounds.
/// </summary>
public static class EnergyProtocol
{
    public static EnergyMeasurement Measure(IEnergyMeter meter, IReadOnlyList<EnergyWorkload> workloads, int rounds, TimeSpan window, Action<string>? log = null)
    {
        if (rounds < 1) throw new InputException("--energy-rounds", $"must be at least 1, got {rounds}");
        if (window < EnergyRecorder.MinimumWindow(meter)) window = EnergyRecorder.MinimumWindow(meter);
        using var recorder = new EnergyRecorder(meter);
        var warnings = new List<string>();

        log?.Invoke($"energy: {meter.Name} idle power over {window.TotalSeconds:0.0} s…");
        recorder.Start();
        Thread.Sleep(window);
        var idle = recorder.Stop();
        double idleWatts = idle.AverageWatts;

        var counts = workloads.Select(w => Math.Max(1, (int)Math.Ceiling(window.TotalSeconds / Math.Max(w.SecondsPerInference, 1e-6)))).ToArray();
        var perInference = workloads.Select(_ => new List<double>()).ToArray();
        var watts = workloads.Select(_ => new List<double>()).ToArray();
        var seconds = workloads.Select(_ => new List<double>()).ToArray();
        for (int r = 0; r < rounds; r++)
        {
            log?.Invoke($"energy: round {r + 1}/{rounds} ({string.Join(", ", workloads.Select((w, i) => $"{counts[i]} × {w.Runtime} on {w.Model}"))})…");
            for (int i = 0; i < workloads.Count; i++)
            {
                recorder.Start();
                long t0 = Stopwatch.GetTimestamp();
                workloads[i].Run(counts[i]);
                double busy = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                var w = recorder.Stop();
                double net = w.TotalJoules - idleWatts * w.Seconds;
                if (net < 1000 * meter.Resolution)
                    warnings.Add($"{workloads[i].Runtime} on {workloads[i].Model}, round {r + 1}: net energy {net:0.###} J is within 1000× the meter's resolution ({meter.Resolution:g3} J) of idle: not a reliable number");
                if (busy < 0.5 * window.TotalSeconds)
                    warnings.Add($"{workloads[i].Runtime} on {workloads[i].Model}, round {r + 1}: {counts[i]} inferences took only {busy:0.00} s of a {window.TotalSeconds:0.0} s window");
                perInference[i].Add(net / counts[i]);
                watts[i].Add(w.AverageWatts);
                seconds[i].Add(w.Seconds);
            }
        }
        var rows = workloads.Select((w, i) =>
        {
            var j = perInference[i].Order().ToArray();
            double avg = Median(watts[i]);
            return new MeasuredEnergy(w.Model, w.Runtime, rounds, counts[i], Median(seconds[i]), j[0], Median(j), j[^1], avg, avg - idleWatts);
        }).ToList();
        var total = meter.Channels.Where(c => c.InTotal).Select(c => c.Name).ToList();
        return new EnergyMeasurement(meter.Name, meter.Source, total, idleWatts, idle.Seconds, window.TotalSeconds,
            meter.Kind == MeterKind.Power ? recorder.SamplePeriod.TotalMilliseconds : null, rows, warnings);
    }

    static double Median(IReadOnlyList<double> values)
    {
        var t = values.Order().ToArray();
        return t.Length % 2 == 1 ? t[t.Length / 2] : 0.5 * (t[t.Length / 2 - 1] + t[t.Length / 2]);
    }
}
