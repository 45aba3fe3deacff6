using System.Diagnostics;

namespace VitSparse.Runtime.Energy;

/// <summary>
/// Jetson power from a running `tegrastats --interval 100`, for users who can run that tool but cannot read the
/// INA3221 sysfs files (a container without the host's /sys). A power meter: the latest line's instant values,
/// which the recorder integrates. A line of unknown form, a rail that vanishes from the output, output that
/// stops, or tegrastats exiting are errors naming the output line or the command.
/// </summary>
public sealed class TegrastatsMeter : IEnergyMeter
{
    const int IntervalMs = 100;
    readonly Process _process;
    readonly Thread _reader;
    readonly object _gate = new();
    IReadOnlyList<TegrastatsRail>? _latest;
    long _latestTicks;
    int _lines;
    SensorException? _failure;

    TegrastatsMeter(Process process, string source)
    {
        (_process, Source) = (process, source);
        _reader = new Thread(ReadLines) { IsBackground = true, Name = "tegrastats reader" };
        _reader.Start();
    }

    /// <inheritdoc />
    public string Name => "tegrastats";
    /// <inheritdoc />
    public string Source { get; }
    /// <inheritdoc />
    public MeterKind Kind => MeterKind.Power;
    /// <inheritdoc />
    public IReadOnlyList<MeterChannel> Channels { get; private set; } = [];
    /// <inheritdoc />
    public TimeSpan UpdateInterval => TimeSpan.FromMilliseconds(IntervalMs);
    /// <inheritdoc />
    public double Resolution => 1e-3;

    /// <summary>Starts tegrastats from PATH (or /usr/bin), waits for its first line and takes its rails as the channels.</summary>
    public static MeterProbe Probe()
    {
        string? exe = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Append("/usr/bin")
            .Select(d => Path.Combine(d, "tegrastats")).FirstOrDefault(File.Exists);
        if (exe == null) return MeterProbe.Missing("tegrastats", "power (integrated)", "tegrastats", "tegrastats is not on PATH (it ships with JetPack on Jetson devices only)");
        return Probe(exe, ["--interval", IntervalMs.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
    }

    /// <summary>Any command that prints tegrastats lines (tests run a script that replays recorded lines).</summary>
    public static MeterProbe Probe(string command, IReadOnlyList<string> arguments)
    {
        string source = string.Join(' ', [command, .. arguments]);
        var psi = new ProcessStartInfo(command) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        Process? p;
        try { p = Process.Start(psi); }
        catch (System.ComponentModel.Win32Exception e) { return MeterProbe.Missing("tegrastats", "power (integrated)", source, $"cannot start: {e.Message}"); }
        if (p == null) return MeterProbe.Missing("tegrastats", "power (integrated)", source, "cannot start");
        var m = new TegrastatsMeter(p, source);
        var deadline = Stopwatch.GetTimestamp() + 5 * Stopwatch.Frequency;
        string why = "printed no line within 5 s";
        while (Stopwatch.GetTimestamp() < deadline)
        {
            IReadOnlyList<TegrastatsRail>? rails;
            lock (m._gate) (rails, why) = (m._latest, m._failure?.Message ?? why);
            if (rails != null)
            {
                // The module input rail is the total, as for the INA3221 files (tegrastats reads the same chip).
                bool hasInput = rails.Any(r => r.Name is "POM_5V_IN" or "VDD_IN");
                m.Channels = rails.Select(r => new MeterChannel(r.Name, !hasInput || r.Name is "POM_5V_IN" or "VDD_IN")).ToList();
                return MeterProbe.Of(m);
            }
            if (m._failure != null) break;
            Thread.Sleep(20);
        }
        m.Dispose();
        return MeterProbe.Missing("tegrastats", "power (integrated)", source, why);
    }

    void ReadLines()
    {
        try
        {
            while (_process.StandardOutput.ReadLine() is { } line)
            {
                int n = Interlocked.Increment(ref _lines);
                if (line.Trim().Length == 0) continue;
                var rails = TegrastatsLine.Parse(line, $"{Source}: output line {n}");
                lock (_gate) (_latest, _latestTicks) = (rails, Stopwatch.GetTimestamp());
            }
            _process.WaitForExit();
            Fail(new SensorException(Source, $"exited (code {_process.ExitCode}) during the measurement: {_process.StandardError.ReadToEnd().Trim()}", SensorFault.Failed));
        }
        catch (SensorException e) { Fail(e); }
        catch (Exception e) when (e is IOException or InvalidOperationException or ObjectDisposedException)
        {
            Fail(new SensorException(Source, $"output could not be read: {e.Message}", SensorFault.Failed, e));
        }
    }

    void Fail(SensorException e) { lock (_gate) _failure ??= e; }

    /// <inheritdoc />
    public void Read(Span<double> values)
    {
        lock (_gate)
        {
            if (_failure != null) throw _failure;
            if (Stopwatch.GetElapsedTime(_latestTicks) > TimeSpan.FromMilliseconds(20 * IntervalMs))
                throw new SensorException(Source, $"no output for {Stopwatch.GetElapsedTime(_latestTicks).TotalSeconds:0.0} s (after line {_lines})", SensorFault.Failed);
            for (int i = 0; i < Channels.Count; i++)
            {
                var rail = _latest!.FirstOrDefault(r => r.Name == Channels[i].Name)
                    ?? throw new SensorException($"{Source}: output line {_lines}", $"rail {Channels[i].Name} disappeared from the output during the measurement", SensorFault.NotFound);
                values[i] = rail.InstantWatts;
            }
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        try { if (!_process.HasExited) _process.Kill(); }
        catch (InvalidOperationException) { }   // exited between the check and the kill
        _reader.Join(TimeSpan.FromSeconds(2));
        _process.Dispose();
    }
}
