using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// The thread team hands out chunks to whichever thread is running: a worker that sleeps (as a descheduled
/// one does) must change neither the bits of any kernel nor whether calls complete, and a failed, cancelled
/// or disposed call must leave nothing behind.
/// </summary>
[Trait("Category", "Kernels")]
public class ThreadTeamTests
{
    static readonly int[] TeamSizes = [1, 2, 3, 5, 8];

    /// <summary>A team whose worker <paramref name="slow"/> (0 is the caller) sleeps before every chunk it claims.</summary>
    static ThreadTeam Slowed(int threads, int slow, int ms = 1)
    {
        var team = new ThreadTeam(threads);
        team.BeforeChunk = w => { if (w == slow % threads) Thread.Sleep(ms); };
        return team;
    }

    /// <summary>Runs <paramref name="kernel"/> on the single team and on every team size with each worker slowed in turn.</summary>
    static void SameBitsUnderSlowWorkers(string what, Func<ThreadTeam, float[]> kernel)
    {
        var expected = kernel(ThreadTeam.Single);
        foreach (int threads in TeamSizes)
            foreach (int slow in new[] { 0, 1, threads - 1 })
            {
                using var team = Slowed(threads, slow);
                var actual = kernel(team);
                Assert.True(expected.AsSpan().SequenceEqual(actual), $"{what}: {threads} threads with worker {slow} slowed differ from 1 thread");
            }
    }

    [Fact]
    public void Dense_linear_is_bit_identical_with_a_slow_worker()
    {
        // K = 1228 runs in several K blocks (chunks of items go K-block-outer), N = 307 ends in a partial panel.
        const int m = 197, n = 307, k = 1228;
        var x = Fixtures.Random(m * k, 1);
        var layer = PackedLinear.Pack(Fixtures.Random(n * k, 2, 0.03f), n, k, Fixtures.Random(n, 3));
        var residual = Fixtures.Random(m * n, 4);
        SameBitsUnderSlowWorkers("PackedLinear", team =>
        {
            var y = residual.ToArray();
            layer.Forward(x, m, k, y, n, Epilogue.BiasAccumulate, team);
            return y;
        });
    }

    [Fact]
    public void Sparse_linears_are_bit_identical_with_a_slow_worker()
    {
        const int m = 197, n = 150, k = 307;
        var x = Fixtures.Random(m * k, 5);
        var layers = new ILinear[]
        {
            BsrLinear.FromDense(SparseKernelTests.BlockMasked(n, k, 16, 16, 0.5, 6), n, k, 16, 16, Fixtures.Random(n, 7)),
            CsrLinear.FromDense(SparseKernelTests.Masked(n, k, 0.3, 8), n, k, Fixtures.Random(n, 9)),
        };
        foreach (var layer in layers)
            SameBitsUnderSlowWorkers(layer.GetType().Name, team =>
            {
                var y = new float[m * n];
                layer.Forward(x, m, k, y, n, Epilogue.BiasGelu, team);
                return y;
            });
    }

    [Fact]
    public void Attention_and_layernorm_are_bit_identical_with_a_slow_worker()
    {
        var layout = new HeadLayout([13, 25, 7], [12, 40, 17]);
        const int tokens = 197, images = 2;
        var qkv = Fixtures.Random(images * tokens * layout.RowWidth, 10, 2f);
        var attention = new RaggedAttention(tokens, layout.MaxQk, layout.MaxV, TeamSizes.Max());
        SameBitsUnderSlowWorkers("RaggedAttention", team =>
        {
            var o = new float[images * tokens * layout.VTotal];
            attention.Forward(layout, qkv, images, layout.RowWidth, 0.2f, o, layout.VTotal, team);
            return o;
        });

        const int rows = 2 * 197, e = 384;
        var xs = Fixtures.Random(rows * e, 11, 3f);
        var g = Fixtures.Random(e, 12);
        var b = Fixtures.Random(e, 13);
        SameBitsUnderSlowWorkers("LayerNorm", team =>
        {
            var y = new float[rows * e];
            LayerNorm.Forward(xs, rows, e, e, g, b, 1e-6f, y, e, team);
            return y;
        });
    }

    /// <summary>Counts how often each item ran, and which ranges the team handed out.</summary>
    unsafe readonly struct CountingBody(int* counts, int sleepItem) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            for (int i = start; i < end; i++)
            {
                if (i == sleepItem) Thread.Sleep(2);
                Interlocked.Increment(ref counts[i]);
            }
        }
    }

    [Fact]
    public async Task Every_item_runs_exactly_once_on_more_threads_than_cores()
    {
        // Four times the machine's cores plus one: workers must give way, never wait for a core they cannot get.
        int threads = 4 * Environment.ProcessorCount + 1;
        using var team = new ThreadTeam(threads);
        var counts = new int[1000];
        var done = Task.Run(() =>
        {
            unsafe
            {
            fixed (int* c = counts)
                for (int call = 0; call < 2000; call++)
                {
                    int n = 1 + call % 997;
                    team.For(n, new CountingBody(c, call % 50 == 0 ? n / 2 : -1), grain: 1 + call % 3);
                    for (int i = 0; i < n; i++)
                        if (Interlocked.Exchange(ref c[i], 0) != 1) throw new InvalidOperationException($"call {call}: item {i} ran {c[i]} times");
                }
            }
        });
        // A deadlock shows as a timeout (TimeoutException) instead of a hung test run.
        await done.WaitAsync(TimeSpan.FromMinutes(2));
    }

    [Fact]
    public void Chunks_depend_on_item_count_and_grain_only()
    {
        foreach (int count in new[] { 1, 7, 64, 65, 197, 1000, 100_000 })
            foreach (int grain in new[] { 1, 4, 22 })
            {
                int items = ThreadTeam.ChunkItems(count, grain);
                Assert.True(items >= grain && (count + items - 1) / items <= ThreadTeam.MaxChunks, $"{count} items, grain {grain}: {items} per chunk");
            }
    }

    static unsafe void RunCounting(ThreadTeam team, int[] counts)
    {
        fixed (int* c = counts) team.For(counts.Length, new CountingBody(c, -1));
    }

    readonly struct ThrowingBody(int failAt) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            if (failAt >= start && failAt < end) throw new InvalidOperationException($"item {failAt} failed");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(5)]
    public unsafe void A_failing_body_throws_and_leaves_the_team_usable(int threads)
    {
        using var team = new ThreadTeam(threads);
        foreach (int failAt in new[] { 0, 63, 999 })
        {
            var e = Assert.Throws<InvalidOperationException>(() => team.For(1000, new ThrowingBody(failAt)));
            Assert.Equal($"item {failAt} failed", e.Message);
            var counts = new int[1000];
            fixed (int* c = counts) team.For(1000, new CountingBody(c, -1));
            Assert.All(counts, n => Assert.Equal(1, n));
        }
    }

    [Fact]
    public unsafe void A_cancelled_team_stops_between_calls_and_runs_again_when_reset()
    {
        using var team = new ThreadTeam(3);
        using var cts = new CancellationTokenSource();
        team.Cancellation = cts.Token;
        var counts = new int[100];
        fixed (int* c = counts)
        {
            team.For(100, new CountingBody(c, -1));
            cts.Cancel();
            var body = new CountingBody(c, -1);
            Assert.Throws<OperationCanceledException>(() => team.For(100, body));
            team.Cancellation = default;
            team.For(100, new CountingBody(c, -1));
        }
        Assert.All(counts, n => Assert.Equal(2, n));
        Assert.Throws<InvalidOperationException>(() => ThreadTeam.Single.Cancellation = cts.Token);
    }

    [Fact]
    public async Task Disposing_during_a_call_lets_the_call_finish_and_refuses_later_ones()
    {
        var team = new ThreadTeam(4);
        team.BeforeChunk = _ => Thread.Sleep(1);
        var counts = new int[640];
        using var started = new ManualResetEventSlim();
        var call = Task.Run(() =>
        {
            unsafe
            {
                fixed (int* c = counts)
                {
                    started.Set();
                    team.For(counts.Length, new CountingBody(c, -1));
                }
            }
        });
        started.Wait();
        Thread.Sleep(5);
        team.Dispose();
        await call.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(counts, n => Assert.Equal(1, n));
        Assert.Throws<ObjectDisposedException>(() => RunCounting(team, counts));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task A_session_cancelled_mid_run_stops_and_then_runs_exactly_as_before(int threads)
    {
        var model = VitModel.Load(Fixtures.Path_("ragged_tiny.safetensors"));
        var input = Fixtures.Npy_("ragged_tiny.input.npy");
        int batch = input.Shape[0], classes = model.Config.NumClasses;
        using var session = new InferenceSession(model, threads);
        var expected = new float[batch * classes];
        session.Run(input.Data, batch, expected);

        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var logits = new float[batch * classes];
        Assert.Throws<OperationCanceledException>(() => session.Run(input.Data, batch, logits, cts.Token));

        // Cancel from another thread while runs are in flight: each run either finishes or stops between ops.
        using var later = new CancellationTokenSource();
        var canceller = Task.Run(() => { Thread.Sleep(3); later.Cancel(); });
        int stopped = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (stopped == 0 && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            try { session.Run(input.Data, batch, logits, later.Token); }
            catch (OperationCanceledException) { stopped++; }
        }
        await canceller;
        Assert.Equal(1, stopped);

        session.Run(input.Data, batch, logits, CancellationToken.None);
        Assert.True(expected.AsSpan().SequenceEqual(logits), "a run after a cancelled one differs");
    }
}
