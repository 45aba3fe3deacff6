using System.Diagnostics;

namespace VitSparse.Tests;

/// <summary>Runs built programs of the repository (the installed command, the sample) as child processes.</summary>
static class Processes
{
    /// <summary>The repository root: the first folder above the test binaries that holds Runtime.sln.</summary>
    public static string RepoRoot
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Runtime.sln"))) return d.FullName;
            throw new InvalidOperationException($"no Runtime.sln above {AppContext.BaseDirectory}");
        }
    }

    /// <summary>The build configuration the tests were built in (Release or Debug), from their own path.</summary>
    public static string Configuration => new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;

    /// <summary>Runs a program to its end (at most <paramref name="timeoutSeconds"/>): exit code, stdout, stderr, wall time.</summary>
    public static (int Code, string Out, string Err, double Seconds) Run(string program, IEnumerable<string> args, int timeoutSeconds = 120)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutSeconds * 1000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', args)} ran past {timeoutSeconds} s");
        }
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result, clock.Elapsed.TotalSeconds);
    }
}
