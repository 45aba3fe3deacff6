using VitSparse.Runtime.Formats;

namespace VitSparse.Tests;

static class Fixtures
{
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "fixtures");
    public static string Path_(string name) => Path.Combine(Dir, name);
    public static NpyArray Npy_(string name) => Npy.Read(Path_(name));

    /// <summary>|a − b| ≤ tol·max(1, max|b|), the parity bound of the foundation issue.</summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double relTol = 1e-4, string what = "")
    {
        Xunit.Assert.Equal(expected.Length, actual.Length);
        double maxRef = 1, maxDiff = 0;
        int worst = -1;
        for (int i = 0; i < expected.Length; i++) maxRef = Math.Max(maxRef, Math.Abs(expected[i]));
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs(expected[i] - (double)actual[i]);
            if (!(d <= maxDiff)) { maxDiff = d; worst = i; }
        }
        Xunit.Assert.True(maxDiff <= relTol * maxRef,
            $"{what} max |Δ| = {maxDiff:g4} at {worst} (expected {(worst >= 0 ? expected[worst] : 0)}, got {(worst >= 0 ? actual[worst] : 0)}), bound {relTol * maxRef:g4}");
    }

    public static float[] Random(int n, int seed, float scale = 1f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1) * scale;
        return a;
    }

    /// <summary>Runs the `vitsparse` command in process: exit code, stdout, stderr.</summary>
    public static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        return (VitSparse.Cli.CliApp.Run(args, o, e), o.ToString(), e.ToString());
    }

    /// <summary>
    /// Bytes <paramref name="body"/> allocates on this thread. The counter is exact only while no garbage collection
    /// runs: one started by another thread (a parallel test) during the window can add the unused rest of this
    /// thread's allocation context (up to 8 KB; dotnet/coreclr#10207; seen here as 7392 bytes from a step that
    /// allocates nothing). A background collection suspends threads too, without a gen-0 count (the likely cause of
    /// 88 bytes read once in a full run, not reproduced alone), so a window is quiet only if neither the gen-0 nor
    /// the gen-2 count nor the total GC pause moved. A window that was not
    /// quiet is measured again, up to <paramref name="attempts"/> times; if none was, the smallest count is returned.
    /// Garbage that <paramref name="body"/> makes shows in every window.
    /// </summary>
    public static long ThreadAllocations(Action body, int attempts = 5)
    {
        long smallest = long.MaxValue;
        for (int i = 0; i < attempts; i++)
        {
            int gen0 = GC.CollectionCount(0), gen2 = GC.CollectionCount(2);
            var paused = GC.GetTotalPauseDuration();
            long before = GC.GetAllocatedBytesForCurrentThread();
            body();
            long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
            if (GC.CollectionCount(0) == gen0 && GC.CollectionCount(2) == gen2 && GC.GetTotalPauseDuration() == paused) return bytes;
            smallest = Math.Min(smallest, bytes);
        }
        return smallest;
    }

    /// <summary>Runs <paramref name="body"/> once: what it threw, wall time, bytes allocated on this thread.</summary>
    public static (Exception? Error, double Ms, long Bytes) Measure(Action body)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Exception? error = null;
        try { body(); }
        catch (Exception e) { error = e; }
        sw.Stop();
        return (error, sw.Elapsed.TotalMilliseconds, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    /// <summary>
    /// Runs what must refuse <paramref name="path"/>: an exception of exactly type T whose message starts with the
    /// path, thrown in under a second and before <paramref name="budget"/> bytes were allocated on this thread.
    /// </summary>
    public static T AssertRefusedCheaply<T>(string path, Action load, long budget) where T : Exception
    {
        var (error, ms, bytes) = Measure(load);
        var e = Xunit.Assert.IsType<T>(error);
        Xunit.Assert.StartsWith(path + ": ", e.Message);
        Xunit.Assert.True(ms < 1000, $"{path}: refused after {ms:0} ms");
        Xunit.Assert.True(bytes < budget, $"{path}: allocated {bytes / 1e6:0.0} MB before refusing");
        return e;
    }

    public static string TempDir()
    {
        string d = Path.Combine(Path.GetTempPath(), "vitsparse-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }
}
