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

    public static string TempDir()
    {
        string d = Path.Combine(Path.GetTempPath(), "vitsparse-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }
}
