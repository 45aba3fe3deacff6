using VitSparse.Kernels;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// The sparse kernels against the dense layer holding the same zeros: every block shape (edge blocks on
/// ragged widths included), M = 1, every vector width, every epilogue, and the same bits for any team size.
/// </summary>
[Trait("Category", "Kernels")]
public class SparseKernelTests
{
    public static readonly (int H, int W)[] BlockShapes = [(8, 8), (16, 16), (32, 32), (32, 64), (64, 32), (16, 4), (3, 5)];
    static readonly (int M, int N, int K)[] Shapes = [(1, 307, 1228), (197, 1228, 307), (197, 150, 307), (7, 13, 5), (65, 96, 130), (2, 1, 1)];

    public static TheoryData<SimdWidth, int, int> BsrCases()
    {
        var d = new TheoryData<SimdWidth, int, int>();
        foreach (var w in KernelTests.Widths)
            foreach (var (h, bw) in BlockShapes) d.Add(w, h, bw);
        return d;
    }

    /// <summary>W with whole bh×bw blocks zeroed at random (about <paramref name="keep"/> kept).</summary>
    internal static float[] BlockMasked(int n, int k, int bh, int bw, double keep, int seed)
    {
        var w = Fixtures.Random(n * k, seed, 1f / MathF.Sqrt(k));
        var r = new Random(seed + 1);
        int blockRows = (n + bh - 1) / bh, blockCols = (k + bw - 1) / bw;
        for (int br = 0; br < blockRows; br++)
            for (int bc = 0; bc < blockCols; bc++)
                if (r.NextDouble() >= keep)
                    for (int i = br * bh; i < Math.Min(n, br * bh + bh); i++)
                        w.AsSpan(i * k + bc * bw, Math.Min(bw, k - bc * bw)).Clear();
        return w;
    }

    internal static float[] Masked(int n, int k, double keep, int seed)
    {
        var w = Fixtures.Random(n * k, seed, 1f / MathF.Sqrt(k));
        var r = new Random(seed + 1);
        for (int i = 0; i < w.Length; i++) if (r.NextDouble() >= keep) w[i] = 0f;
        return w;
    }

    static void SameAsDense(ILinear sparse, float[] w, int m, int n, int k, SimdWidth width, string what)
    {
        var dense = PackedLinear.Pack(w, n, k, Fixtures.Random(n, n + 3), width);
        var x = Fixtures.Random(m * k, m + k);
        using var team = new ThreadTeam(2);
        foreach (var ep in new[] { Epilogue.Bias, Epilogue.BiasGelu, Epilogue.BiasAccumulate })
        {
            var expected = Fixtures.Random(m * n, 9);
            var actual = expected.ToArray();
            dense.Forward(x, m, k, expected, n, ep, team);
            sparse.Forward(x, m, k, actual, n, ep, team);
            Fixtures.AssertClose(expected, actual, 1e-5, $"{what} {m}×{n}×{k} {ep}");
        }
    }

    [Theory, MemberData(nameof(BsrCases))]
    public void Bsr_equals_the_dense_layer_with_the_same_zeros(SimdWidth width, int bh, int bw)
    {
        foreach (var (m, n, k) in Shapes)
            foreach (double keep in new[] { 1.0, 0.5, 0.1 })
            {
                var w = BlockMasked(n, k, bh, bw, keep, n + k + bh);
                var bsr = BsrLinear.FromDense(w, n, k, bh, bw, Fixtures.Random(n, n + 3), width);
                SameAsDense(bsr, w, m, n, k, width, $"bsr {bh}×{bw} keep {keep}");
            }
    }

    [Fact]
    public void Bsr_takes_the_panel_engine_only_where_two_vectors_tile_the_block_height()
    {
        Assert.Equal(SimdWidth.V512, BsrLinear.PanelWidth(32, SimdWidth.V512));
        Assert.Equal(SimdWidth.V512, BsrLinear.PanelWidth(64, SimdWidth.V512));
        Assert.Equal(SimdWidth.V256, BsrLinear.PanelWidth(16, SimdWidth.V256));
        Assert.Equal(SimdWidth.V128, BsrLinear.PanelWidth(8, SimdWidth.V128));
        Assert.Null(BsrLinear.PanelWidth(8, SimdWidth.V256));
        Assert.Null(BsrLinear.PanelWidth(3, SimdWidth.V128));
        // 16-row blocks at 512 bits: a 256-bit panel only where that costs no FLOP rate (Zen 4), else feature-major.
        Assert.Equal(Isa.Fma512IsHalfRate ? SimdWidth.V256 : null, BsrLinear.PanelWidth(16, SimdWidth.V512));
        var w = BlockMasked(40, 300, 16, 16, 0.5, 4);
        if (Isa.Best == SimdWidth.V512)
            Assert.Equal(Isa.Fma512IsHalfRate ? SimdWidth.V256 : SimdWidth.V512, BsrLinear.FromDense(w, 40, 300, 16, 16, []).Width);
    }

    [Theory, MemberData(nameof(KernelTests.WidthData), MemberType = typeof(KernelTests))]
    public void Unstructured_equals_the_dense_layer_with_the_same_zeros(SimdWidth width)
    {
        foreach (var (m, n, k) in Shapes)
            foreach (double keep in new[] { 1.0, 0.5, 0.1, 0.0 })
            {
                var w = Masked(n, k, keep, n + k);
                var csr = CsrLinear.FromDense(w, n, k, Fixtures.Random(n, n + 3), width);
                SameAsDense(csr, w, m, n, k, width, $"csr keep {keep}");
            }
    }

    [Theory, MemberData(nameof(KernelTests.WidthData), MemberType = typeof(KernelTests))]
    public void Sparse_kernels_are_bit_identical_for_any_thread_count(SimdWidth width)
    {
        const int m = 300, n = 700, k = 1000;
        var x = Fixtures.Random(m * k, 5);
        var layers = new ILinear[]
        {
            BsrLinear.FromDense(BlockMasked(n, k, 32, 32, 0.5, 1), n, k, 32, 32, Fixtures.Random(n, 7), width),
            BsrLinear.FromDense(BlockMasked(n, k, 16, 4, 0.5, 2), n, k, 16, 4, Fixtures.Random(n, 7), width),
            CsrLinear.FromDense(Masked(n, k, 0.3, 3), n, k, Fixtures.Random(n, 7), width),
        };
        foreach (var layer in layers)
        {
            var one = new float[m * n];
            layer.Forward(x, m, k, one, n, Epilogue.BiasGelu, ThreadTeam.Single);
            foreach (int threads in new[] { 2, 3 })
            {
                var y = new float[m * n];
                using var team = new ThreadTeam(threads);
                layer.Forward(x, m, k, y, n, Epilogue.BiasGelu, team);
                Assert.True(one.AsSpan().SequenceEqual(y), $"{layer.GetType().Name}: {threads} threads differ from 1");
            }
        }
    }

    /// <summary>
    /// Two-thread teams give each worker its own Xᵀ, transposed as its items first need it: a later call with
    /// another input (and token count) must transpose again, whichever worker takes which items.
    /// </summary>
    [Theory, MemberData(nameof(KernelTests.WidthData), MemberType = typeof(KernelTests))]
    public void Per_worker_transposes_follow_each_new_input(SimdWidth width)
    {
        const int n = 90, k = 72;
        var layers = new ILinear[]
        {
            BsrLinear.FromDense(BlockMasked(n, k, 8, 8, 0.5, 1), n, k, 8, 8, Fixtures.Random(n, 7), width),
            BsrLinear.FromDense(BlockMasked(n, k, 16, 4, 0.5, 2), n, k, 16, 4, Fixtures.Random(n, 7), width),
            CsrLinear.FromDense(Masked(n, k, 0.3, 3), n, k, Fixtures.Random(n, 7), width),
        };
        using var team = new ThreadTeam(2);
        int call = 0;
        team.BeforeChunk = worker => { if (worker == call % 2) Thread.Sleep(1); };   // a different worker lags in each call
        foreach (var layer in layers)
            foreach (int m in new[] { 197, 197, 40, 1, 120 })
            {
                call++;
                var x = Fixtures.Random(m * k, 100 + call);
                var one = new float[m * n];
                var two = new float[m * n];
                layer.Forward(x, m, k, one, n, Epilogue.Bias, ThreadTeam.Single);
                layer.Forward(x, m, k, two, n, Epilogue.Bias, team);
                Assert.True(one.AsSpan().SequenceEqual(two), $"{layer.GetType().Name}, call {call} (m = {m}): 2 threads differ from 1");
            }
    }

    [Fact]
    public void Sparse_kernels_honour_row_strides_and_leave_other_columns_alone()
    {
        int m = 19, n = 21, k = 40, ldx = 43, ldy = 30;
        var x = Fixtures.Random(m * ldx, 5);
        var w = BlockMasked(n, k, 8, 8, 0.6, 4);
        var xDense = new float[m * k];
        for (int i = 0; i < m; i++) x.AsSpan(i * ldx, k).CopyTo(xDense.AsSpan(i * k));
        var expected = new float[m * n];
        PackedLinear.Pack(w, n, k, []).Forward(xDense, m, k, expected, n, Epilogue.Bias, ThreadTeam.Single);
        foreach (ILinear layer in new ILinear[] { BsrLinear.FromDense(w, n, k, 8, 8, []), CsrLinear.FromDense(w, n, k, []) })
        {
            var y = Enumerable.Repeat(123f, m * ldy).ToArray();
            layer.Forward(x, m, ldx, y, ldy, Epilogue.Bias, new ThreadTeam(3));
            for (int i = 0; i < m; i++)
            {
                Fixtures.AssertClose(expected.AsSpan(i * n, n), y.AsSpan(i * ldy, n), 1e-5, $"{layer.GetType().Name} row {i}");
                for (int j = n; j < ldy; j++) Assert.Equal(123f, y[i * ldy + j]);
            }
        }
    }

    [Fact]
    public void Bsr_refuses_inconsistent_index_data()
    {
        // 20×24 in 8×8 blocks: 3 block rows, 3 block columns.
        float[] Vals(int blocks) => new float[blocks * 64];
        void Bad(string expected, Func<object> make) => Assert.Contains(expected, Assert.ThrowsAny<ArgumentException>(make).Message);
        Bad("must be positive", () => BsrLinear.FromBlocks([], [], [0, 0, 0, 0], 20, 24, 0, 8, []));
        Bad("must be positive", () => BsrLinear.FromBlocks([], [], [0, 0, 0, 0], 20, 24, 8, -8, []));
        Bad("outside [0, 3)", () => BsrLinear.FromBlocks(Vals(1), [3], [0, 1, 1, 1], 20, 24, 8, 8, []));
        Bad("outside [0, 3)", () => BsrLinear.FromBlocks(Vals(1), [-1], [0, 1, 1, 1], 20, 24, 8, 8, []));
        Bad("unsorted", () => BsrLinear.FromBlocks(Vals(2), [2, 1], [0, 2, 2, 2], 20, 24, 8, 8, []));
        Bad("duplicated", () => BsrLinear.FromBlocks(Vals(2), [1, 1], [0, 2, 2, 2], 20, 24, 8, 8, []));
        Bad("decrease", () => BsrLinear.FromBlocks(Vals(2), [1, 2], [0, 2, 1, 2], 20, 24, 8, 8, []));
        Bad("expected 4", () => BsrLinear.FromBlocks(Vals(1), [1], [0, 1, 1], 20, 24, 8, 8, []));
        Bad("start at", () => BsrLinear.FromBlocks(Vals(1), [1], [1, 1, 1, 1], 20, 24, 8, 8, []));
        Bad("end at", () => BsrLinear.FromBlocks(Vals(2), [1, 2], [0, 1, 1, 1], 20, 24, 8, 8, []));
        Bad("expected 2 blocks", () => BsrLinear.FromBlocks(Vals(1), [1, 2], [0, 2, 2, 2], 20, 24, 8, 8, []));
    }

    [Fact]
    public void Csr_refuses_inconsistent_index_data()
    {
        void Bad(string expected, Func<object> make) => Assert.Contains(expected, Assert.ThrowsAny<ArgumentException>(make).Message);
        Bad("outside [0, 4)", () => CsrLinear.FromCsr([1f], [4], [0, 1, 1], 2, 4, []));
        Bad("unsorted", () => CsrLinear.FromCsr([1f, 1f], [2, 1], [0, 2, 2], 2, 4, []));
        Bad("duplicated", () => CsrLinear.FromCsr([1f, 1f], [1, 1], [0, 2, 2], 2, 4, []));
        Bad("decrease", () => CsrLinear.FromCsr([1f, 1f], [1, 2], [0, 2, 1], 2, 4, []));
        Bad("expected 3", () => CsrLinear.FromCsr([1f], [1], [0, 1], 2, 4, []));
        Bad("one per column index", () => CsrLinear.FromCsr([1f, 2f], [1], [0, 1, 1], 2, 4, []));
        Bad("16-bit", () => CsrLinear.FromCsr([], [], [0, 0], 1, CsrLinear.MaxK + 1, []));
    }

    [Theory, MemberData(nameof(KernelTests.WidthData), MemberType = typeof(KernelTests))]
    public void Csr_equals_dense_at_every_token_and_row_edge(SimdWidth width)
    {
        // Token counts around the 8-token transposes and 64-token chunks, N = 37 (tiles of 16, 16, 5 rows),
        // K = 301 (a ragged last K block of either size and a ragged 8-feature tail), both K block sizes.
        const int n = 37, k = 301;
        foreach (double keep in new[] { 0.6, 0.15 })
        {
            var w = Masked(n, k, keep, 11);
            var csr = CsrLinear.FromDense(w, n, k, Fixtures.Random(n, n + 3), width);
            Assert.Equal(CsrLinear.KBlockFor(csr.Density), csr.KBlock);
            foreach (int m in new[] { 1, 7, 8, 9, 63, 64, 65, 130 })
                SameAsDense(csr, w, m, n, k, width, $"csr keep {keep}");
        }
    }

    [Fact]
    public void Csr_k_block_follows_density()
    {
        Assert.Equal(128, CsrLinear.KBlockFor(1.0));
        Assert.Equal(128, CsrLinear.KBlockFor(0.5));
        Assert.Equal(256, CsrLinear.KBlockFor(0.3));
        Assert.Equal(256, CsrLinear.KBlockFor(0.1));
    }

    [Fact]
    public void Csr_padding_is_invisible_in_counts_and_copies()
    {
        // Rows with odd non-zero counts per K block get a zero-weight pad; NonZeros and CopyDense must not see it.
        const int n = 5, k = 300;
        foreach (double keep in new[] { 0.7, 0.05 })
        {
            var w = Masked(n, k, keep, 12);
            w[1] = 0f; w[2] = 3f; // row 0: a lone non-zero next to a zero
            var bias = Fixtures.Random(n, 4);
            var csr = CsrLinear.FromDense(w, n, k, bias);
            Assert.Equal(w.Count(v => v != 0f), csr.NonZeros);
            var back = Enumerable.Repeat(9f, n * k).ToArray();
            var backBias = new float[n];
            csr.CopyDense(back, backBias);
            Assert.Equal(w, back);
            Assert.Equal(bias, backBias);
        }
    }

    [Theory, MemberData(nameof(KernelTests.WidthData), MemberType = typeof(KernelTests))]
    public void Csr_is_bit_identical_for_any_thread_count_in_both_k_blocks(SimdWidth width)
    {
        // 150×700 at 0.6: ~40 KB of weights per 16-row group, so 128 KB bands of 3 groups (3, 3, 3, 1); at 0.1 one band.
        const int n = 150, k = 700;
        foreach (double keep in new[] { 0.6, 0.1 })
        {
            var layer = CsrLinear.FromDense(Masked(n, k, keep, 13), n, k, Fixtures.Random(n, 7), width);
            foreach (int m in new[] { 1, 197 })
            {
                var x = Fixtures.Random(m * k, 5);
                var one = Fixtures.Random(m * n, 6);
                var start = one.ToArray();
                layer.Forward(x, m, k, one, n, Epilogue.BiasAccumulate, ThreadTeam.Single);
                foreach (int threads in new[] { 2, 3 })
                {
                    var y = start.ToArray();
                    using var team = new ThreadTeam(threads);
                    layer.Forward(x, m, k, y, n, Epilogue.BiasAccumulate, team);
                    Assert.True(one.AsSpan().SequenceEqual(y), $"keep {keep}, m {m}: {threads} threads differ from 1");
                }
            }
        }
    }

    [Fact]
    public unsafe void Transpose8x8_equals_element_by_element()
    {
        if (!Transpose8x8.IsSupported) return; // the callers' scalar loops run instead (test.sh's AVX-off runs)
        var src = Fixtures.Random(8 * 11, 1);
        var dst = Fixtures.Random(8 * 13, 2);
        var start = dst.ToArray();
        fixed (float* ps = src)
        fixed (float* pd = dst)
        {
            Transpose8x8.Block(ps, 11, pd, 13);
            for (int i = 0; i < 8; i++)
                for (int j = 0; j < 8; j++) Assert.Equal(src[j * 11 + i], dst[i * 13 + j]);
            Assert.Equal(start.AsSpan(8, 5).ToArray(), dst.AsSpan(8, 5).ToArray()); // columns past 8 untouched
            var before = dst.ToArray();
            Transpose8x8.Block(ps, 11, pd, 13, accumulate: true);
            for (int i = 0; i < 8; i++)
                for (int j = 0; j < 8; j++) Assert.Equal(before[i * 13 + j] + src[j * 11 + i], dst[i * 13 + j]);
        }
    }
}
