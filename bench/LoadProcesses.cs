using System.Diagnostics;
using System.Globalization;
using VitSparse.Runtime;

namespace VitSparse.Bench;

/// <summary>
/// `bench --load N`: N child processes that keep one core each busy beside the measurement, the busy
/// neighbour (camera capture, UI, a second model) an edge device usually has. Each is a POSIX shell spinning
/// on arithmetic; bench kills them by PID when the measurement ends, on an exception and on Ctrl-C, and each
/// also exits by itself within about 0.1 s of bench's death (it checks that its parent still lives), so
/// none outlives a killed bench.
/// </summary>
public sealed class LoadProcesses : IDisposable
{
    public const int MaxProcesses = 64;
    const string Shell = "/bin/sh";

    readonly List<Process> _children = [];
    readonly List<int> _pids = [];
    readonly ConsoleCancelEventHandler _onCancel;
    readonly EventHandler _onExit;
    int _disposed;

    /// <summary>The PIDs of the busy processes (for tests and the log).</summary>
    public IReadOnlyList<int> Pids => _pids;

    LoadProcesses()
    {
        _onCancel = (_, _) => Dispose();
        _onExit = (_, _) => Dispose();
    }

    /// <summary>Checks <paramref name="count"/> as the value of <c>--load</c>.</summary>
    public static void Validate(int count)
    {
        if (count < 0 || count > MaxProcesses)
            throw new InputException("--load", $"must be between 0 and {MaxProcesses} busy processes, got {count}");
        if (count > 0 && !File.Exists(Shell))
            throw new InputException("--load", $"busy processes run as {Shell} loops, and {Shell} is missing");
    }

    /// <summary>Starts <paramref name="count"/> busy processes (none for 0).</summary>
    public static LoadProcesses Start(int count)
    {
        Validate(count);
        var load = new LoadProcesses();
        Console.CancelKeyPress += load._onCancel;
        AppDomain.CurrentDomain.ProcessExit += load._onExit;
        try
        {
            string parent = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
            // Spin on shell arithmetic; every 20 000 additions (well under 0.1 s) check that bench still runs.
            string script = $"while kill -0 {parent} 2>/dev/null; do i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; done";
            for (int i = 0; i < count; i++)
            {
                var psi = new ProcessStartInfo(Shell) { UseShellExecute = false, RedirectStandardInput = false };
                psi.ArgumentList.Add("-c");
                psi.ArgumentList.Add(script);
                var child = Process.Start(psi) ?? throw new IOException($"could not start busy process {i + 1} of {count}");
                load._children.Add(child);
                load._pids.Add(child.Id);
            }
        }
        catch
        {
            load.Dispose();
            throw;
        }
        return load;
    }

    /// <summary>Kills every busy process by its PID and waits for it to be gone.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Console.CancelKeyPress -= _onCancel;
        AppDomain.CurrentDomain.ProcessExit -= _onExit;
        foreach (var p in _children)
        {
            try
            {
                if (!p.HasExited) p.Kill();
                p.WaitForExit(5000);
            }
            catch (InvalidOperationException) { }   // already gone
            catch (System.ComponentModel.Win32Exception) { }
            p.Dispose();
        }
    }
}
