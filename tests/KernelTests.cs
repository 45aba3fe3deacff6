using VitSparse.Kernels;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// Every kernel against a straightforward double-precision reference, at every vector width (the
/// narrower widths run here on x64 exactly as they run on ARM), on 1, odd, prime and ragged sizes.
/// </summary>
[Trait("Category", "Kernels")]
public class KernelTests
{
    public static readonly SimdWidth[] Widths = [SimdWidth.V512, SimdWidth.V256, SimdWidth.V128];

    public static TheoryData<SimdWidth, int, int, int> GemmShapes()
    {
        var d = new TheoryData<SimdWidth, int, int, int>();
        var shapes = new (int M, int N, int K)[] { (1, 1, 1), (1, 1000, 384), (7, 13, 5), (197, 150, 307), (197, 307, 1228), (6, 33, 64), (5, 17, 1), (13, 1537, 3), (2, 31, 1537), (37, 78, 25), (300, 700, 600), (9, 48, 70), (9, 40, 70), (9, 44, 70) };
        foreach (var w in Widths)
            foreach (var (m, n, k) in shapes) d.Add(w, m, n, k);
        return d;
    }

    static double[] Reference(float[] x, float[] w, float[] b, int m, int n, int k)
    {
        var y = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = b[j];
                for (int p = 0; p < k; p++) s += (double)x[i * k + p] * w[j * k + p];
                y[i * n + j] = s;
            }
        return y;
    }

    static void Close(double expected, float actual, double tol, string what) =>
        Assert.True(Math.Abs(expected - actual) <= tol * Math.Max(1, Math.Abs(expected)), $"{what}: expected {expected}, got {actual}");

    [Theory, MemberData(nameof(GemmShapes))]
    public void Linear_matches_double_reference_for_every_epilogue(SimdWidth width, int m, int n, int k)
    {
        var x = Fixtures.Random(m * k, m + 7 * n + 13 * k);
        var w = Fixtures.Random(n * k, n + k, 1f / MathF.Sqrt(k));
        var b = Fixtures.Random(n, n);
        var reference = Reference(x, w, b, m, n, k);
        var packed = PackedLinear.Pack(w, n, k, b, width);
        double tol = 2e-6 * Math.Sqrt(k) + 1e-6;

        var y = new float[m * n];
        packed.Forward(x, m, k, y, n, Epilogue.Bias, new ThreadTeam(2));
        for (int i = 0; i < y.Length; i++) Close(reference[i], y[i], tol, $"bias [{i / n},{i % n}]");

        packed.Forward(x, m, k, y, n, Epilogue.BiasGelu, new ThreadTeam(2));
        for (int i = 0; i < y.Length; i++) Close(GeluRef(reference[i]), y[i], tol, $"gelu [{i / n},{i % n}]");

        var acc = Fixtures.Random(m * n, 99);
        var expected = acc.Select((a, i) => a + reference[i]).ToArray();
        packed.Forward(x, m, k, acc, n, Epilogue.BiasAccumulate, ThreadTeam.Single);
        for (int i = 0; i < acc.Length; i++) Close(expected[i], acc[i], tol, $"accumulate [{i / n},{i % n}]");
    }

    public static TheoryData<SimdWidth, int, int, int> ThreadShapes()
    {
        var data = new TheoryData<SimdWidth, int, int, int>();
        foreach (var w in Widths)
        {
            data.Add(w, 300, 700, 3072);   // several K windows and row groups, items chunked window-outer
            data.Add(w, 197, 153, 307);    // few panels: rows split into more groups so every thread has items
            data.Add(w, 7, 40, 50);        // fewer row tiles than the groups wanted
        }
        return data;
    }

    /// <summary>Whatever the split into items (K windows, row groups, few panels), the same bits for any team size.</summary>
    [Theory, MemberData(nameof(ThreadShapes))]
    public void Linear_is_bit_identical_for_any_thread_count(SimdWidth width, int m, int n, int k)
    {
        var x = Fixtures.Random(m * k, 5);
        var packed = PackedLinear.Pack(Fixtures.Random(n * k, 6, 0.02f), n, k, Fixtures.Random(n, 7), width);
        var one = new float[m * n];
        packed.Forward(x, m, k, one, n, Epilogue.BiasGelu, ThreadTeam.Single);
        foreach (int threads in new[] { 2, 3, 5 })
        {
            var y = new float[m * n];
            using var team = new ThreadTeam(threads);
            packed.Forward(x, m, k, y, n, Epilogue.BiasGelu, team);
            Assert.True(one.AsSpan().SequenceEqual(y), $"{threads} threads differ from 1");
        }
    }

    /// <summary>The shared single-thread team is used from many threads at once (e.g. by Parallel.For bodies).</summary>
    [Fact]
    public void Single_team_is_safe_to_share_between_threads()
    {
        const int m = 197, n = 192, k = 1536, calls = 8;
        var packed = PackedLinear.Pack(Fixtures.Random(n * k, 3, 0.03f), n, k, Fixtures.Random(n, 4));
        var inputs = Enumerable.Range(0, calls).Select(i => Fixtures.Random(m * k, 100 + i)).ToArray();
        var alone = inputs.Select(x => { var y = new float[m * n]; packed.Forward(x, m, k, y, n, Epilogue.Bias, ThreadTeam.Single); return y; }).ToArray();
        int overlap = 0;
        for (int round = 0; round < 5; round++)
        {
            var shared = new float[calls][];
            // Own threads released together (Parallel.For inside a test may run its bodies one at a time).
            int active = 0;
            using var go = new Barrier(calls);
            var threads = Enumerable.Range(0, calls).Select(i => new Thread(() =>
            {
                var y = new float[m * n];
                go.SignalAndWait();
                int now = Interlocked.Increment(ref active);
                lock (inputs) overlap = Math.Max(overlap, now);
                packed.Forward(inputs[i], m, k, y, n, Epilogue.Bias, ThreadTeam.Single);
                Interlocked.Decrement(ref active);
                shared[i] = y;
            })).ToArray();
            foreach (var t in threads) t.Start();
            foreach (var t in threads) t.Join();
            for (int i = 0; i < calls; i++) Assert.True(alone[i].AsSpan().SequenceEqual(shared[i]), $"round {round}, call {i} differs when run concurrently");
        }
        Assert.True(overlap >= 2, $"calls never overlapped ({overlap})");
    }

    [Fact]
    public void Linear_honours_row_strides_and_leaves_other_columns_alone()
    {
        int m = 9, n = 21, k = 10, ldx = 16, ldy = 30;
        var x = Fixtures.Random(m * ldx, 5);
        var w = Fixtures.Random(n * k, 6);
        var y = Enumerable.Repeat(123f, m * ldy).ToArray();
        PackedLinear.Pack(w, n, k, [], SimdWidth.V256).Forward(x, m, ldx, y, ldy, Epilogue.Bias, new ThreadTeam(3));
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double)x[i * ldx + p] * w[j * k + p];
                Close(s, y[i * ldy + j], 1e-5, "strided");
            }
            for (int j = n; j < ldy; j++) Assert.Equal(123f, y[i * ldy + j]);
        }
    }

    [Fact]
    public void Linear_rejects_inconsistent_arguments()
    {
        var p = PackedLinear.Pack(new float[12], 3, 4, []);
        Assert.Throws<ArgumentException>(() => PackedLinear.Pack(new float[11], 3, 4, []));
        Assert.Throws<ArgumentException>(() => PackedLinear.Pack(new float[12], 3, 4, new float[2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => p.Forward(new float[8], 2, 3, new float[6], 3, Epilogue.Bias, ThreadTeam.Single));
        Assert.Throws<ArgumentException>(() => p.Forward(new float[7], 2, 4, new float[6], 3, Epilogue.Bias, ThreadTeam.Single));
    }

    static double Erf(double x)
    {
        // Series for small |x|, continued fraction for erfc beyond: both converge to double precision here.
        double ax = Math.Abs(x);
        if (ax < 3)
        {
            double sum = x, term = x, x2 = x * x;
            for (int n = 1; n < 200; n++)
            {
                term *= -x2 / n;
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.Abs(add) < 1e-17 * Math.Abs(sum)) break;
            }
            return 2 / Math.Sqrt(Math.PI) * sum;
        }
        double f = 0;
        for (int n = 60; n >= 1; n--) f = n / 2.0 / (ax + f);
        double erfc = Math.Exp(-ax * ax) / Math.Sqrt(Math.PI) / (ax + f);
        return Math.Sign(x) * (1 - erfc);
    }

    static double Erfc(double x)
    {
        if (x < 3) return 1 - Erf(x);
        double f = 0;
        for (int n = 60; n >= 1; n--) f = n / 2.0 / (x + f);
        return Math.Exp(-x * x) / Math.Sqrt(Math.PI) / (x + f);
    }

    internal static double GeluRef(double x) => 0.5 * x * Erfc(-x / Math.Sqrt(2));

    [Theory, MemberData(nameof(WidthData))]
    public void Gelu_is_within_1e6_relative_of_exact_erf_gelu(SimdWidth width)
    {
        var xs = new List<float>();
        for (float v = -12f; v <= 12f; v += 0.00371f) xs.Add(v);
        xs.AddRange([0f, -0f, 1e-8f, -1e-8f, 1e-30f, 30f, -30f, 100f, -100f]);
        var y = xs.ToArray();
        Simd.Dispatch(new Gelu.InPlaceOp(), y, width);
        double worst = 0;
        for (int i = 0; i < y.Length; i++)
        {
            double r = GeluRef(xs[i]);
            double err = Math.Abs(y[i] - r) / Math.Max(Math.Abs(r), 1e-30);
            if (Math.Abs(r) < 1e-30) err = Math.Abs(y[i]);
            worst = Math.Max(worst, err);
        }
        Assert.True(worst <= 1e-6, $"worst relative error {worst:g3}");
    }

    public static TheoryData<SimdWidth> WidthData() => new(Widths);

    [Theory, MemberData(nameof(WidthData))]
    public void FastExp_is_within_3e7_relative_and_flushes_below_the_float_range(SimdWidth width)
    {
        var xs = new List<float>();
        for (float v = -86.4f; v <= 88f; v += 0.0137f) xs.Add(v);
        xs.AddRange([0f, -1e-9f, 1e-9f, -86.6f, -87.5f, -1000f, float.NegativeInfinity, float.NaN]);
        var y = xs.ToArray();
        Simd.Dispatch(new ExpOp(base2: false), y, width);
        for (int i = 0; i < y.Length; i++)
        {
            if (float.IsNaN(xs[i])) { Assert.True(float.IsNaN(y[i]), $"exp(NaN) = {y[i]}"); continue; }
            if (xs[i] < -86.5f) { Assert.Equal(0f, y[i]); continue; }
            double r = Math.Exp(xs[i]);
            Assert.True(Math.Abs(y[i] - r) <= 3e-7 * r, $"exp({xs[i]}) = {y[i]}, expected {r}");
        }
    }

    /// <summary>exp (or, with <paramref name="base2"/>, the softmax's 2^t) over a span, vector by vector.</summary>
    readonly struct ExpOp(bool base2) : ISpanOp
    {
        public void Run<TOps, TV>(Span<float> x) where TOps : struct, IVec<TV> where TV : struct
        {
            var buf = new float[(x.Length + TOps.Count - 1) / TOps.Count * TOps.Count];
            x.CopyTo(buf);
            for (int i = 0; i < buf.Length; i += TOps.Count)
            {
                TV v = TOps.Load(ref buf[i]);
                TOps.Store(ref buf[i], base2 ? FastExp.Exp2<TOps, TV>(v) : FastExp.Exp<TOps, TV>(v));
            }
            buf.AsSpan(0, x.Length).CopyTo(x);
        }
    }

    /// <summary>The softmax's 2^t: accurate on the range it is used on, 2^−125 below it, and a NaN stays NaN.</summary>
    [Theory, MemberData(nameof(WidthData))]
    public void Exp2_is_within_3e7_relative_down_to_minus_125_and_keeps_NaN(SimdWidth width)
    {
        var ts = new List<float>();
        for (float t = -125f; t <= 0f; t += 0.00917f) ts.Add(t);
        ts.AddRange([0f, -0f, -1e-9f, 1e-7f, -0.5f, 0.5f, -1.5f, -124.5f, -125f, -126f, -200f, -1e30f, float.NegativeInfinity, float.NaN]);
        var y = ts.ToArray();
        Simd.Dispatch(new ExpOp(base2: true), y, width);
        for (int i = 0; i < y.Length; i++)
        {
            if (float.IsNaN(ts[i])) { Assert.True(float.IsNaN(y[i]), $"2^NaN = {y[i]}"); continue; }
            double r = Math.Pow(2, Math.Max(ts[i], -125.0));
            Assert.True(Math.Abs(y[i] - r) <= 3e-7 * r, $"2^{ts[i]} = {y[i]}, expected {r}");
        }
    }

    [Theory, MemberData(nameof(WidthData))]
    public void LayerNorm_matches_double_reference(SimdWidth width)
    {
        foreach (int e in new[] { 1, 3, 16, 45, 307, 384 })
        {
            int rows = 5;
            var x = Fixtures.Random(rows * e, e).Select(v => v * 3 + 1.5f).ToArray();
            var g = Fixtures.Random(e, e + 1);
            var b = Fixtures.Random(e, e + 2);
            var y = new float[rows * e];
            LayerNorm.Forward(x, rows, e, e, g, b, 1e-6f, y, e, new ThreadTeam(2), width);
            for (int r = 0; r < rows; r++)
            {
                double mean = 0, var = 0;
                for (int j = 0; j < e; j++) mean += x[r * e + j];
                mean /= e;
                for (int j = 0; j < e; j++) var += (x[r * e + j] - mean) * (x[r * e + j] - mean);
                double rstd = 1 / Math.Sqrt(var / e + 1e-6);
                for (int j = 0; j < e; j++)
                    Close((x[r * e + j] - mean) * rstd * g[j] + b[j], y[r * e + j], 1e-5, $"e={e}");
            }
        }
    }

    public static TheoryData<SimdWidth, int[], int[], int> AttentionCases()
    {
        var d = new TheoryData<SimdWidth, int[], int[], int>();
        foreach (var w in Widths)
        {
            d.Add(w, [5, 9, 13], [7, 4, 11], 17);
            d.Add(w, [25, 25, 25, 25, 25, 25], [38, 38, 38, 38, 38, 38], 197);
            d.Add(w, [64, 64], [64, 64], 33);
            d.Add(w, [1], [1], 1);
            d.Add(w, [3, 70], [66, 2], 40);
            d.Add(w, [13, 13, 25], [12, 40, 17], 197);
        }
        return d;
    }

    [Theory, MemberData(nameof(AttentionCases))]
    public void RaggedAttention_matches_double_reference(SimdWidth width, int[] qk, int[] v, int tokens)
    {
        var layout = new HeadLayout(qk, v);
        int images = 2, row = layout.RowWidth + 3; // a wider stride than the row, as a caller may have
        var qkv = Fixtures.Random(images * tokens * row, tokens + qk.Sum(), 2f);
        float scale = 0.125f;
        int ldo = layout.VTotal + 1;
        var output = Enumerable.Repeat(-7f, images * tokens * ldo).ToArray();
        var attention = new RaggedAttention(tokens, layout.MaxQk, layout.MaxV, 3, width);
        attention.Forward(layout, qkv, images, row, scale, output, ldo, new ThreadTeam(3));
        for (int img = 0; img < images; img++)
        {
            int qo = 0, vo = 0;
            for (int h = 0; h < qk.Length; h++)
            {
                for (int i = 0; i < tokens; i++)
                {
                    var s = new double[tokens];
                    for (int j = 0; j < tokens; j++)
                    {
                        double dot = 0;
                        for (int d = 0; d < qk[h]; d++)
                            dot += (double)qkv[(img * tokens + i) * row + qo + d] * qkv[(img * tokens + j) * row + layout.QkTotal + qo + d];
                        s[j] = dot * scale;
                    }
                    double max = s.Max(), sum = 0;
                    for (int j = 0; j < tokens; j++) { s[j] = Math.Exp(s[j] - max); sum += s[j]; }
                    for (int d = 0; d < v[h]; d++)
                    {
                        double o = 0;
                        for (int j = 0; j < tokens; j++) o += s[j] / sum * qkv[(img * tokens + j) * row + 2 * layout.QkTotal + vo + d];
                        Close(o, output[(img * tokens + i) * ldo + vo + d], 2e-5, $"head {h} token {i} dim {d}");
                    }
                }
                qo += qk[h];
                vo += v[h];
            }
            for (int i = 0; i < tokens; i++) Assert.Equal(-7f, output[(img * tokens + i) * ldo + layout.VTotal]);
        }
    }

    /// <summary>A NaN key poisons its head's every output (the max pass may skip it; the exponent pass does not).</summary>
    [Theory, MemberData(nameof(WidthData))]
    public void Softmax_keeps_a_NaN_score_visible(SimdWidth width)
    {
        var layout = new HeadLayout([4, 4], [3, 3]);
        const int tokens = 37;
        var qkv = Fixtures.Random(tokens * layout.RowWidth, 3);
        foreach (int key in new[] { 0, 17, 36 })
        {
            var x = (float[])qkv.Clone();
            x[key * layout.RowWidth + layout.QkTotal + 1] = float.NaN;   // head 0's key at token `key`
            var output = new float[tokens * layout.VTotal];
            new RaggedAttention(tokens, 4, 3, 1, width).Forward(layout, x, 1, layout.RowWidth, 0.5f, output, layout.VTotal, ThreadTeam.Single);
            for (int i = 0; i < tokens; i++)
            {
                for (int d = 0; d < 3; d++) Assert.True(float.IsNaN(output[i * layout.VTotal + d]), $"key {key}: token {i} dim {d} of head 0 is {output[i * layout.VTotal + d]}");
                for (int d = 3; d < 6; d++) Assert.True(float.IsFinite(output[i * layout.VTotal + d]), $"key {key}: head 1 is not finite");
            }
        }
    }

    [Fact]
    public void Softmax_is_stable_for_huge_scores()
    {
        var layout = new HeadLayout([2], [2]);
        var qkv = new float[] { 100, 100, 100, 100, 1, 2, -100, -100, -100, -100, 3, 4 };
        var output = new float[4];
        new RaggedAttention(2, 2, 2, 1).Forward(layout, qkv, 1, 6, 1f, output, 2, ThreadTeam.Single);
        Assert.All(output, o => Assert.True(float.IsFinite(o)));
        Assert.Equal(1f, output[0], 1e-6f);
        Assert.Equal(2f, output[1], 1e-6f);
    }

    [Fact]
    public void Patches_are_in_conv_weight_order()
    {
        // 1 image, 2 channels, 4×4, patch 2: patch (gy=0,gx=1) of channel c, row ky holds image[c, ky, 2..4].
        var img = Enumerable.Range(0, 32).Select(i => (float)i).ToArray();
        var rows = new float[4 * 8];
        Patches.Extract(img, 1, 2, 4, 2, rows);
        Assert.Equal(new float[] { 2, 3, 6, 7, 18, 19, 22, 23 }, rows.AsSpan(8, 8).ToArray());
    }

    /// <summary>test.sh reruns this class with AVX-512, then AVX2, switched off: the runtime must then pick the narrower path.</summary>
    [Fact]
    public void Selected_width_follows_the_isa_switches()
    {
        if (!System.Runtime.Intrinsics.X86.X86Base.IsSupported) return;
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX2") == "0") Assert.Equal(SimdWidth.V128, Isa.Best);
        else if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX512") == "0") Assert.Equal(SimdWidth.V256, Isa.Best);
    }

    [Fact]
    public void HeadLayout_rejects_empty_heads()
    {
        Assert.Throws<ArgumentException>(() => new HeadLayout([3, 0], [2, 2]));
        Assert.Throws<ArgumentException>(() => new HeadLayout([3], [2, 2]));
    }
}
