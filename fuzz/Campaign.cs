using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using VitSparse.Runtime;

namespace VitSparse.Fuzz;

/// <summary>One distinct failure: the first input that showed it, and how often it recurred.</summary>
public sealed record FuzzFailure(string Signature, string Description, string Reproducer)
{
    public int Hits { get; set; } = 1;
    public override string ToString() => $"{Signature} ({Hits}×)\n  reproducer: {Reproducer}\n  {Description.Replace("\n", "\n  ")}";
}

/// <summary>A campaign's outcome; <see cref="Accepted"/> counts inputs that parsed, a sign of how deep mutations reach.</summary>
public sealed record CampaignResult(string Target, long Executions, long Accepted, TimeSpan Elapsed, IReadOnlyList<FuzzFailure> Failures, double SlowestMs, long MostAllocated)
{
    public string Summary => $"{Target}: {Executions} executions ({Accepted} accepted) in {Elapsed.TotalSeconds:0.0} s, slowest {SlowestMs:0} ms, " +
                             $"most allocated {MostAllocated / 1e6:0.0} MB, {Failures.Count} distinct failures";
}

/// <summary>
/// Runs seeded mutations of a target's seed corpus. A failure is an exception that is not a
/// <see cref="VitSparseException"/> (a <see cref="FuzzFinding"/> included), an input over <see cref="TimeLimit"/>
/// (confirmed by a second run, as this machine is shared), an allocation over the target's budget, or a
/// seed that is refused (every seed must be a valid input).
/// Each distinct failure's first input is written to the output folder.
/// </summary>
public static class Campaign
{
    public static readonly TimeSpan TimeLimit = TimeSpan.FromSeconds(1);

    /// <summary>An input still running after this long is taken as a hang; its worker thread is abandoned.</summary>
    public static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(30);

    /// <summary>Inputs that parsed without error join the corpus (up to this many): they reach deeper code.</summary>
    const int MaxCorpus = 256;

    public static CampaignResult Run(FuzzTarget target, string fixtures, long executions, int seed, string outDir,
        TimeSpan? duration = null, Action<string>? log = null)
    {
        var corpus = target.Seeds.Select(s => File.ReadAllBytes(Path.Combine(fixtures, s))).ToList();
        string scratch = Path.Combine(Path.GetTempPath(), "vitsparse-fuzz-scratch", $"{target.Name}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(scratch);
        Directory.CreateDirectory(outDir);
        string input = Path.Combine(scratch, "input" + target.Extension);
        var failures = new Dictionary<string, FuzzFailure>();
        var clock = Stopwatch.StartNew();
        long done = 0, accepted = 0, running = -1, mostAllocated = 0;
        double slowest = 0;
        byte[] current = [];

        void Loop()
        {
            var rng = new Random(seed);
            var mutator = new Mutator(rng);
            for (long i = 0; i < executions && (duration == null || clock.Elapsed < duration); i++)
            {
                // Seeds themselves first (they must pass), then mutations.
                var data = i < corpus.Count ? corpus[(int)i] : mutator.Mutate(corpus[rng.Next(corpus.Count)], target.Kind, corpus);
                File.WriteAllBytes(input, data);
                lock (failures) current = data;
                Interlocked.Exchange(ref running, clock.ElapsedTicks);
                var (signature, problem, error, ms, allocated) = Try(target, input, scratch);
                Interlocked.Exchange(ref running, -1);
                slowest = Math.Max(slowest, ms);
                mostAllocated = Math.Max(mostAllocated, allocated);
                if (error == null) accepted++;
                // A refused seed means the harness has rotted (a seed no longer valid, an entry point changed):
                // mutations of it would test nothing.
                if (signature == null && error != null && i < target.Seeds.Length)
                    (signature, problem) = ($"seed refused: {target.Seeds[i]}", $"{error.GetType().Name}: {error.Message}");
                if (signature != null) lock (failures) Record(failures, target, outDir, data, signature, problem!);
                else if (error == null && corpus.Count < MaxCorpus && i >= target.Seeds.Length) corpus.Add(data);
                done = i + 1;
                if (log != null && done % 10_000 == 0) log($"{target.Name}: {done} executions, {failures.Count} distinct failures, {clock.Elapsed.TotalSeconds:0} s");
            }
        }

        var worker = new Thread(Loop, 16 << 20) { IsBackground = true, Name = "fuzz " + target.Name };
        worker.Start();
        while (!worker.Join(500))
        {
            long started = Interlocked.Read(ref running);
            if (started >= 0 && clock.ElapsedTicks - started > HangLimit.TotalSeconds * Stopwatch.Frequency)
            {
                lock (failures) Record(failures, target, outDir, current, "hang", $"still running after {HangLimit.TotalSeconds} s (worker abandoned)");
                break;
            }
        }
        if (!worker.IsAlive) TryDelete(scratch);
        List<FuzzFailure> found;
        lock (failures) found = failures.Values.ToList();
        return new CampaignResult(target.Name, done, accepted, clock.Elapsed, found, slowest, mostAllocated);
    }

    /// <summary>
    /// Runs one input file and judges it: a failure's signature and description (both null when it passed),
    /// with the exception, time and allocation. A slow run is repeated once before it counts.
    /// </summary>
    public static (string? Signature, string? Problem, Exception? Error, double Ms, long Allocated) Try(FuzzTarget target, string input, string scratch)
    {
        var (error, ms, allocated) = Execute(target, input, scratch);
        if (ms > TimeLimit.TotalMilliseconds) (error, ms, allocated) = Execute(target, input, scratch);
        string? problem = Judge(target, error, ms, allocated);
        return (problem == null ? null : Signature(error, problem), problem, error, ms, allocated);
    }

    /// <summary>Runs one input on this thread: its exception (if any), milliseconds and bytes allocated.</summary>
    public static (Exception? Error, double Ms, long Allocated) Execute(FuzzTarget target, string input, string scratch)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        long t0 = Stopwatch.GetTimestamp();
        Exception? error = null;
        try { target.Run(input, scratch); }
        catch (Exception e) { error = e; }
        return (error, Stopwatch.GetElapsedTime(t0).TotalMilliseconds, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    /// <summary>Why this run is a failure, or null when the input was accepted or refused properly.</summary>
    public static string? Judge(FuzzTarget target, Exception? error, double ms, long allocated)
    {
        if (error is not (null or VitSparseException)) return $"{error.GetType().FullName}: {error.Message}\n{error.StackTrace}";
        if (ms > TimeLimit.TotalMilliseconds) return $"took {ms:0} ms (limit {TimeLimit.TotalMilliseconds:0} ms){Outcome(error)}";
        if (allocated > target.AllocationBudget) return $"allocated {allocated / 1e6:0.0} MB (budget {target.AllocationBudget / 1e6:0} MB){Outcome(error)}";
        return null;
    }

    static string Outcome(Exception? e) => e == null ? ", then accepted" : $", then {e.GetType().Name}: {e.Message}";

    /// <summary>Failures are the same when they fail the same way at the same place: exception type and top VitSparse frame.</summary>
    static string Signature(Exception? error, string problem)
    {
        if (error is FuzzFinding f) return "accepted: " + System.Text.RegularExpressions.Regex.Replace(f.Message, @"-?\d+", "N");
        if (error is not (null or VitSparseException))
        {
            var frame = (error.StackTrace ?? "").Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Contains("VitSparse.") && !l.Contains("VitSparse.Fuzz."))
                        ?? (error.StackTrace ?? "").Split('\n')[0].Trim();
            int paren = frame.IndexOf('(');
            return $"{error.GetType().Name} {(paren > 0 ? frame[..paren] : frame)}";
        }
        return problem.StartsWith("took") ? "slow" : "memory";
    }

    static void Record(Dictionary<string, FuzzFailure> failures, FuzzTarget target, string outDir, byte[] data, string signature, string problem)
    {
        if (failures.TryGetValue(signature, out var known)) { known.Hits++; return; }
        string hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(signature)))[..10].ToLowerInvariant();
        string path = Path.Combine(outDir, $"{target.Name}-{hash}{target.Extension}");
        File.WriteAllBytes(path, data);
        failures[signature] = new FuzzFailure(signature, problem, path);
    }

    static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
