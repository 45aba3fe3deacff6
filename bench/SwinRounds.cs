using System.Diagnostics;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;

namespace VitSparse.Bench;

/// <summary>Dense and pruned Swin variants timed in one process: warm-up, then alternating rounds, so every variant sees the same load.</summary>
static class SwinRounds
{
    /// <summary>Timed runs of one variant before the next takes its turn.</summary>
    public const int RoundSize = 3;

    /// <summary>Runs each model <paramref name="warmup"/> times, then <paramref name="iterations"/> timed runs each in alternating rounds; ms per run, per model.</summary>
    public static List<double>[] Time(IReadOnlyList<SwinModel> models, SwinConfig c, int batch, int threads, string device, int warmup, int iterations, TextWriter log, string what)
    {
        var input = new float[(long)batch * c.ImageElements];
        for (int i = 0; i < batch; i++) SeededWeights.FillInput(input.AsSpan(i * c.ImageElements, c.ImageElements));
        var times = models.Select(_ => new List<double>()).ToArray();
        var sessions = models.Select(m => new SwinSession(m, device, threads)).ToList();
        var logits = new float[(long)batch * c.NumClasses];
        try
        {
            log.WriteLine($"{what}: warming up {models.Count} variants ({warmup} runs each), then {iterations} timed runs each in alternating rounds of {RoundSize}…");
            foreach (var s in sessions) for (int i = 0; i < warmup; i++) s.Run(input, batch, logits);
            // Each round starts one variant later (no variant always follows the same one) and each variant's turn
            // starts after the pause the DeiT rounds take (BenchApp.SettleMs: the previous team's spinning stops).
            for (int done = 0, round = 0; done < iterations; done += RoundSize, round++)
                for (int turn = 0; turn < sessions.Count; turn++)
                {
                    int v = (turn + round) % sessions.Count;
                    Thread.Sleep(BenchApp.SettleMs);
                    for (int i = 0; i < Math.Min(RoundSize, iterations - done); i++)
                    {
                        long t0 = Stopwatch.GetTimestamp();
                        sessions[v].Run(input, batch, logits);
                        times[v].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    }
                }
        }
        finally
        {
            foreach (var s in sessions) s.Dispose();
        }
        return times;
    }
}
