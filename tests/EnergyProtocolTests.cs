using System.Diagnostics;
using VitSparse.Runtime.Energy;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>The recorder and the idle-net protocol against meters whose true energy is known.</summary>
public class EnergyProtocolTests
{
    /// <summary>
    /// A meter of a machine that draws <paramref name="idleWatts"/> always and <paramref name="joulesPerRun"/> per
    /// inference: a counter (energy since open) or a power meter (watts, higher while an inference runs).
    /// </summary>
    sealed class KnownMachine(MeterKind kind, double idleWatts, double joulesPerRun, double runWatts = 0) : IEnergyMeter
    {
        readonly Stopwatch _clock = Stopwatch.StartNew();
        public int Runs;
        public volatile bool Running;
        public string Name => "known";
        public string Source => "test";
        public MeterKind Kind => kind;
        public IReadOnlyList<MeterChannel> Channels { get; } = [new("total", true), new("part", false)];
        public TimeSpan UpdateInterval => TimeSpan.FromMilliseconds(1);
        public double Resolution => 1e-6;

        public void Read(Span<double> values)
        {
            values[0] = kind == MeterKind.Counter ? idleWatts * _clock.Elapsed.TotalSeconds + joulesPerRun * Volatile.Read(ref Runs) : idleWatts + (Running ? runWatts : 0);
            values[1] = 1e6;   // not in the total: must not count
        }

        public void Dispose() { }
    }

    [Fact]
    public void Counter_meter_gives_net_joules_per_inference_after_subtracting_idle_power()
    {
        var m = new KnownMachine(MeterKind.Counter, idleWatts: 2.0, joulesPerRun: 0.5);
        var dense = new EnergyWorkload("deit_s", "VitSparse", 0.05, n => { for (int i = 0; i < n; i++) { Thread.Sleep(50); Interlocked.Increment(ref m.Runs); } });
        var pruned = new EnergyWorkload("deit_s_snp", "VitSparse", 0.025, n => { for (int i = 0; i < n; i++) { Thread.Sleep(25); Interlocked.Add(ref m.Runs, 0); } });
        var r = EnergyProtocol.Measure(m, [dense, pruned], rounds: 2, TimeSpan.FromSeconds(0.1));
        Assert.Equal(2.0, r.WindowSeconds);   // raised to the 2 s minimum
        Assert.Equal(2.0, r.IdleWatts, 2);
        Assert.Equal(["total"], r.TotalChannels);
        // Chunks of 2 s / 8 / latency (5 and 10) until the 2 s window is full; a loaded machine oversleeps, so fewer fit.
        Assert.Equal(0, r.Rows[0].InferencesPerRound % 5);
        Assert.Equal(0, r.Rows[1].InferencesPerRound % 10);
        Assert.InRange(r.Rows[0].InferencesPerRound, 20, 45);
        Assert.InRange(r.Rows[1].InferencesPerRound, 40, 90);
        Assert.True(r.Rows[0].Reliable);
        Assert.False(r.Rows[1].Reliable);
        Assert.Equal(0.5, r.Rows[0].JoulesPerInferenceMedian, 2);
        Assert.InRange(r.Rows[0].JoulesPerInferenceMin, 0.49, r.Rows[0].JoulesPerInferenceMax);
        Assert.InRange(r.Rows[0].AverageWatts, 11.0, 12.5);   // 2 W + 20 J / ≈ 2 s
        Assert.Equal(0.0, r.Rows[1].JoulesPerInferenceMedian, 2);   // the pruned one here costs nothing above idle…
        Assert.Contains(r.Warnings, w => w.Contains("deit_s_snp") && w.Contains("not a reliable number"));   // …and is flagged as such
        Assert.Null(r.SamplePeriodMs);
    }

    [Fact]
    public void Power_meter_is_integrated_by_the_sampler()
    {
        var m = new KnownMachine(MeterKind.Power, idleWatts: 1.0, joulesPerRun: 0, runWatts: 4.0);
        var busy = Stopwatch.StartNew();
        busy.Stop();
        var w = new EnergyWorkload("deit_t", "VitSparse", 0.1, n => { m.Running = true; busy.Start(); Thread.Sleep(100 * n); busy.Stop(); m.Running = false; });
        var r = EnergyProtocol.Measure(m, [w], rounds: 1, TimeSpan.FromSeconds(2));
        Assert.Equal(1.0, r.IdleWatts, 6);
        Assert.Equal(20.0, r.SamplePeriodMs);
        // 4 W above idle while running (a loaded machine oversleeps, so the true time is timed); sampling at
        // 20 ms blurs each of the ~10 chunks' edges by at most one period, and they mostly cancel.
        double expected = 4 * busy.Elapsed.TotalSeconds / r.Rows[0].InferencesPerRound;
        Assert.InRange(r.Rows[0].JoulesPerInferenceMedian, expected * 0.95, expected * 1.05);
        Assert.InRange(r.Rows[0].NetWatts, 3.6, 4.1);
    }

    [Fact]
    public void Rail_disappearing_while_sampling_fails_the_window_naming_the_file()
    {
        string root = EnergyMeterTests.Tree("jetson_orin_nano_jp5");
        using var m = Ina3221Meter.Probe(new Sysfs(root)).Meter!;
        using var rec = new EnergyRecorder(m);
        rec.Start();
        Thread.Sleep(60);
        File.Delete(Path.Combine(root, "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/curr2_input"));
        Thread.Sleep(60);
        var e = Assert.Throws<SensorException>(() => rec.Stop());
        Assert.Contains("curr2_input: the rail disappeared during the measurement", e.Message);
    }

    [Fact]
    public void Fixture_jetson_over_a_window_integrates_to_power_times_time()
    {
        using var m = Ina3221Meter.Probe(new Sysfs(EnergyMeterTests.Tree("jetson_nano_jp4"))).Meter!;
        using var rec = new EnergyRecorder(m);
        rec.Start();
        Thread.Sleep(300);
        var w = rec.Stop();
        Assert.Equal(2.5, w.AverageWatts, 6);   // only POM_5V_IN, the module input, is the total
        Assert.Equal(0.5 * w.Seconds, w.Joules[1], 6);
        Assert.True(w.Samples >= 5, $"{w.Samples} samples in {w.Seconds} s");
    }

    [Fact]
    public void Modelled_energy_is_flops_and_bytes_times_the_documented_constants()
    {
        var dense = EnergyModel.Estimate(Architectures.Get("deit_s"), 1, EnergyModel.Ops45nm);
        var snp = EnergyModel.Estimate(Architectures.Get("deit_s_snp"), 1, EnergyModel.Ops45nm);
        Assert.Equal(2 * 4.599, dense.Gflop, 2);
        Assert.Equal(4 * 22_050_664 / 1e6, dense.WeightMegabytes, 6);
        double expected = dense.Gflop * 1e9 * 2.3e-12 + dense.WeightMegabytes * 1e6 * 160e-12 + dense.ActivationMegabytes * 1e6 * 1.25e-12;
        Assert.Equal(expected, dense.JoulesPerImage, 12);
        Assert.True(snp.ActivationMegabytes < dense.ActivationMegabytes);
        Assert.InRange(dense.JoulesPerImage / snp.JoulesPerImage, 1.5, 3.0);
        // Batch 8 shares the weights: less DRAM per image.
        Assert.True(EnergyModel.Estimate(Architectures.Get("deit_s"), 8, EnergyModel.Ops45nm).JoulesPerImage < dense.JoulesPerImage);
    }

    /// <summary>Seeded weights with the lower half of fc1's rows zeroed: half of every block shape's blocks are empty.</summary>
    sealed class HalfZeroFc1(ITensorSource inner) : ITensorSource
    {
        public string Description => inner.Description;
        public bool Contains(string name) => inner.Contains(name);
        public long[] Shape(string name) => inner.Shape(name);
        public ReadOnlySpan<float> Floats(string name)
        {
            var data = inner.Floats(name).ToArray();
            if (name == "blocks.0.mlp.fc1.weight") data.AsSpan(data.Length / 2).Clear();
            return data;
        }
    }

    [Fact]
    public void Modelled_energy_of_a_block_sparse_model_counts_the_kernels_work_and_lpvit_power()
    {
        var c = VitConfig.Uniform("half_fc1", 64, 1, 2, classes: 10, imageSize: 32, patchSize: 16);   // fc1 256×64, 5 tokens
        var dense = EnergyModel.Estimate(c, 1, EnergyModel.Ops45nm);
        var model = VitModel.FromSource(new HalfZeroFc1(new SeededWeights(c)), c);
        var sparse = EnergyModel.Estimate(model, 1, EnergyModel.Ops45nm);
        var fc1 = model.LinearLayers.Single(l => l.Layer == "blocks.0.mlp.fc1");
        Assert.Equal(WeightFormat.Bsr, fc1.Format);
        Assert.All(model.LinearLayers.Where(l => l != fc1), l => Assert.Equal(WeightFormat.Dense, l.Format));
        // Half of fc1's 256×64 MACs per token, over 5 tokens, are not done; its stored weights halve, plus block columns.
        Assert.Equal(dense.Gflop - 2.0 * 5 * 128 * 64 / 1e9, sparse.Gflop, 12);
        long blocks = 256 / fc1.BlockHeight * (64 / fc1.BlockWidth);
        Assert.Equal(dense.WeightMegabytes - (4.0 * 128 * 64 - 4.0 * blocks / 2) / 1e6, sparse.WeightMegabytes, 12);
        Assert.True(sparse.JoulesPerImage < dense.JoulesPerImage);
        // LPViT: blocks × ⌊64/16⌋, half pruned and half kept.
        Assert.Equal(new LpvitPower(blocks / 2 * 4, blocks / 2 * 4, 1), sparse.BlockPower);
        Assert.Null(EnergyModel.Estimate(VitModel.FromSource(new SeededWeights(c), c), 1, EnergyModel.Ops45nm).BlockPower);
    }

    [Fact]
    public void Activation_bytes_of_a_hand_counted_block()
    {
        // deit_t: E 192, N 197, 3 heads of 64, MLP 768, 12 blocks, 1000 classes, 224² RGB image.
        long n = 197, e = 192, s = 3 * n * n;
        long block = (n * e + n * 576) + (2 * n * 192 + s) + 2 * s + (s + 2 * n * 192) + (n * 192 + n * e) + (n * e + n * 768) + (n * 768 + n * e);
        long total = 3 * 224 * 224 + 196 * e + 12 * block + e + 1000;
        Assert.Equal(4 * total, EnergyModel.ActivationBytes(Architectures.Get("deit_t")));
    }
}
