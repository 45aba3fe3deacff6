using System.Diagnostics;

namespace VitSparse.Runtime.Energy;

/// <summary>A runtime on a model under measurement: Run(n) does n inferences back to back.</summary>
public sealed record EnergyWorkload(string Model, string Runtime, double SecondsPerInference, Action<int> Run);

/// <summary>Measured joules per inference of one workload over the rounds (net of idle power), and its power.</summary>
/// <remarks>InferencesPerRound is a real round's count (the lower median). <see cref="Reliable"/> is false when some round's net energy was within 1000× the meter's resolution of idle.</remarks>
public sealed record MeasuredEnergy(string Model, string Runtime, int Rounds, int InferencesPerRound, double SecondsPerRound,
    double JoulesPerInferenceMin, double JoulesPerInferenceMedian, double JoulesPerInferenceMax, double AverageWatts, double NetWatts, bool Reliable);

/// <summary>The whole measurement: which meter, the idle power that was subtracted, the window, the rows.</summary>
public sealed record EnergyMeasurement(string Meter, string Source, IReadOnlyList<string> TotalChannels, double IdleWatts, double IdleSeconds,
    double WindowSeconds, double? SamplePeriodMs, List<MeasuredEnergy> Rows, List<string> Warnings);

/// <summary>
/// The energy protocol. Idle power first (nothing running, one window), as LPViT's "net power"; then rounds in
/// which every workload runs back to back for at least one window (≥ 2 s and ≥ 40 sensor updates), the
/// workloads alternating within each round so drift hits all alike. A workload runs in chunks until the window
/// is full (its latency estimate only sizes the chunks), so a slow machine still fills every window. Per round
/// and workload: J/inference = (E − P_idle·t) / N. Rows give min/median/max over the rounds.
/// </summary>
public static class EnergyProtocol
{
    /// <summary>Idle power first, then <paramref name="rounds"/> alternating rounds of at least <paramref name="window"/> per workload; J/inference net of idle, with min/median/max.</summary>
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

        // About eight chunks per window: the clock is checked between chunks, not between inferences.
        var chunks = workloads.Select(w => Math.Max(1, (int)(window.TotalSeconds / 8 / Math.Max(w.SecondsPerInference, 1e-6)))).ToArray();
        var counts = workloads.Select(_ => new List<int>()).ToArray();
        var unreliable = new bool[workloads.Count];
        var perInference = workloads.Select(_ => new List<double>()).ToArray();
        var watts = workloads.Select(_ => new List<double>()).ToArray();
        var seconds = workloads.Select(_ => new List<double>()).ToArray();
        for (int r = 0; r < rounds; r++)
        {
            log?.Invoke($"energy: round {r + 1}/{rounds}, {window.TotalSeconds:0.0} s each of {string.Join(", ", workloads.Select(w => $"{w.Runtime} on {w.Model}"))}…");
            for (int i = 0; i < workloads.Count; i++)
            {
                int n = 0;
                recorder.Start();
                long t0 = Stopwatch.GetTimestamp();
                do { workloads[i].Run(chunks[i]); n += chunks[i]; }
                while (Stopwatch.GetElapsedTime(t0) < window);
                var w = recorder.Stop();
                double net = w.TotalJoules - idleWatts * w.Seconds;
                if (net < 1000 * meter.Resolution)
                {
                    unreliable[i] = true;
                    warnings.Add($"{workloads[i].Runtime} on {workloads[i].Model}, round {r + 1}: net energy {net:0.###} J is within 1000× the meter's resolution ({meter.Resolution:g3} J) of idle: not a reliable number");
                }
                counts[i].Add(n);
                perInference[i].Add(net / n);
                watts[i].Add(w.AverageWatts);
                seconds[i].Add(w.Seconds);
            }
        }
        var rows = workloads.Select((w, i) =>
        {
            var j = perInference[i].Order().ToArray();
            double avg = Median(watts[i]);
            return new MeasuredEnergy(w.Model, w.Runtime, rounds, counts[i].Order().ElementAt((rounds - 1) / 2), Median(seconds[i]), j[0], Median(j), j[^1], avg, avg - idleWatts, !unreliable[i]);
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
