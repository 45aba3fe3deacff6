using VitSparse.Runtime.Energy;
using Xunit;

namespace VitSparse.Tests;

/// <summary>TegrastatsMeter against a real child process that replays recorded lines (replay_tegrastats.sh).</summary>
public class TegrastatsMeterTests
{
    static string F(string name) => Path.Combine(Fixtures.Dir, "energy", name);

    static MeterProbe Replay(params string[] args) => TegrastatsMeter.Probe("/bin/sh", [F("replay_tegrastats.sh"), .. args]);

    /// <summary>Reads until the meter fails (the replay reaches its bad part after about 0.3 s), at most 10 s.</summary>
    static SensorException FailureOf(IEnergyMeter m)
    {
        var until = DateTime.UtcNow.AddSeconds(10);
        var v = new double[m.Channels.Count];
        while (DateTime.UtcNow < until)
        {
            try { m.Read(v); }
            catch (SensorException e) { return e; }
            Thread.Sleep(50);
        }
        throw new Xunit.Sdk.XunitException("the meter kept reading without an error for 10 s");
    }

    [Fact]
    public void Replayed_nano_output_gives_instant_watts_with_the_module_input_as_total()
    {
        var p = Replay(F("tegrastats_nano.txt"));
        using var m = p.Meter;
        Assert.True(m != null, p.Status.Unavailable);
        Assert.Equal(["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"], m.Channels.Select(c => c.Name));
        Assert.Equal([true, false, false], m.Channels.Select(c => c.InTotal));
        var v = new double[3];
        m.Read(v);
        Assert.Equal([2.532, 0.0, 0.401], v);
        using var rec = new EnergyRecorder(m);
        rec.Start();
        Thread.Sleep(300);
        Assert.Equal(2.532, rec.Stop().AverageWatts, 6);
    }

    [Fact]
    public void A_line_of_unknown_form_mid_run_is_an_error_naming_the_output_line()
    {
        using var m = Replay(F("tegrastats_orin.txt"), F("tegrastats_bad.txt")).Meter!;
        var e = FailureOf(m);   // three good lines, then the bad ones
        Assert.Contains("output line 4: not a tegrastats line with power rails", e.Message);
    }

    [Fact]
    public void A_rail_vanishing_from_the_output_is_an_error()
    {
        using var m = Replay(F("tegrastats_orin.txt"), F("tegrastats_orin_no_soc.txt")).Meter!;
        Assert.Equal(3, m.Channels.Count);
        var e = FailureOf(m);
        Assert.Contains("rail VDD_SOC disappeared from the output during the measurement", e.Message);
    }

    [Fact]
    public void Tegrastats_exiting_is_an_error_and_a_missing_command_is_unavailable()
    {
        using var m = Replay(F("tegrastats_orin.txt"), "--exit", "3").Meter!;
        var e = FailureOf(m);
        Assert.Contains("exited (code 3) during the measurement: replay: exiting as asked", e.Message);
        var p = TegrastatsMeter.Probe("/nonexistent/tegrastats", []);
        Assert.Null(p.Meter);
        Assert.Contains("cannot start", p.Status.Unavailable);
        using var onPath = TegrastatsMeter.Probe().Meter;   // on a Jetson the real tool; elsewhere the reason
        if (onPath == null) Assert.Contains("not on PATH", TegrastatsMeter.Probe().Status.Unavailable);
    }

    [Fact]
    public void A_first_line_of_unknown_form_makes_it_unavailable_naming_the_line()
    {
        var p = Replay(F("tegrastats_bad.txt"));
        Assert.Null(p.Meter);
        Assert.Contains("output line 1: not a tegrastats line", p.Status.Unavailable);
    }
}
