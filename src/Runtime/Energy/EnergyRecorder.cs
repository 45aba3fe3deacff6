using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace VitSparse.Runtime.Energy;

/// <summary>Energy over one window: joules per channel, their total (channels marked InTotal) and the duration.</summary>
public sealed record EnergyWindow(double Seconds, double[] Joules, double TotalJoules, int Samples)
{
    /// <summary>Mean power over the window, in watts.</summary>
    public double AverageWatts => TotalJoules / Seconds;
}

/// <summary>
/// Measures the energy of a window between <see cref="Start"/> and <see cref="Stop"/>. A counter meter is read
/// at both ends. A power meter is sampled on a background thread every <see cref="SamplePeriod"/> (no faster
/// than the sensor refreshes) and integrated with the trapezoid rule. An error on the sampling thread (a rail
/// that disappears) is rethrown by Stop.
/// </summary>
public sealed class EnergyRecorder : IDisposable
{
    readonly IEnergyMeter _meter;
    readonly double[] _start, _previous, _current, _integral;
    long _previousTicks, _startTicks;
    int _samples;
    Thread? _sampler;
    ManualResetEventSlim? _stop;
    ExceptionDispatchInfo? _failure;

    /// <summary>A recorder for <paramref name="meter"/>; power meters are sampled at the sensor's update rate, 20 ms at the fastest.</summary>
    public EnergyRecorder(IEnergyMeter meter)
    {
        _meter = meter;
        int n = meter.Channels.Count;
        (_start, _previous, _current, _integral) = (new double[n], new double[n], new double[n], new double[n]);
        SamplePeriod = meter.UpdateInterval > TimeSpan.FromMilliseconds(20) ? meter.UpdateInterval : TimeSpan.FromMilliseconds(20);
    }

    /// <summary>How often a power meter is sampled while a window runs.</summary>
    public TimeSpan SamplePeriod { get; }

    /// <summary>A window spans at least 2 s and 40 sensor updates, so the update steps at its ends stay under 2.5 %.</summary>
    public static TimeSpan MinimumWindow(IEnergyMeter m) => TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(2).Ticks, 40 * m.UpdateInterval.Ticks));

    /// <summary>Starts a window: reads the counters (or starts sampling a power meter).</summary>
    public void Start()
    {
        if (_sampler != null) throw new InvalidOperationException("the recorder is already running");
        _failure = null;
        _samples = 1;
        Array.Clear(_integral);
        _meter.Read(_start);
        _startTicks = _previousTicks = Stopwatch.GetTimestamp();
        if (_meter.Kind == MeterKind.Counter) return;
        _start.CopyTo(_previous, 0);
        _stop = new ManualResetEventSlim();
        _sampler = new Thread(SampleLoop) { IsBackground = true, Name = $"{_meter.Name} power sampler" };
        _sampler.Start();
    }

    /// <summary>Ends the window and returns its energy; a sensor error during it is rethrown here.</summary>
    public EnergyWindow Stop()
    {
        if (_meter.Kind == MeterKind.Counter)
        {
            _meter.Read(_current);
            long end = Stopwatch.GetTimestamp();
            var joules = _current.Select((v, i) => v - _start[i]).ToArray();
            return Window(end, joules, 2);
        }
        if (_sampler == null) throw new InvalidOperationException("the recorder was not started");
        _stop!.Set();
        _sampler.Join();
        (_sampler, _stop) = (null, null);
        _failure?.Throw();
        Sample();
        return Window(_previousTicks, [.. _integral], _samples);
    }

    EnergyWindow Window(long endTicks, double[] joules, int samples)
    {
        double total = 0;
        for (int i = 0; i < joules.Length; i++) if (_meter.Channels[i].InTotal) total += joules[i];
        return new EnergyWindow(Seconds(_startTicks, endTicks), joules, total, samples);
    }

    /// <summary>Raw timestamp ticks, not TimeSpan's 100 ns ticks, whose truncation per sample would add up.</summary>
    static double Seconds(long from, long to) => (to - from) / (double)Stopwatch.Frequency;

    void SampleLoop()
    {
        try { while (!_stop!.Wait(SamplePeriod)) Sample(); }
        catch (Exception e) { _failure = ExceptionDispatchInfo.Capture(e); }
    }

    void Sample()
    {
        _meter.Read(_current);
        long now = Stopwatch.GetTimestamp();
        double dt = Seconds(_previousTicks, now);
        for (int i = 0; i < _current.Length; i++) _integral[i] += 0.5 * (_previous[i] + _current[i]) * dt;
        _current.CopyTo(_previous, 0);
        _previousTicks = now;
        _samples++;
    }

    /// <summary>Stops the sampler thread, if any.</summary>
    public void Dispose()
    {
        _stop?.Set();
        _sampler?.Join();
        _stop?.Dispose();
    }
}
