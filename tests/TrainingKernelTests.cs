using VitSparse.Kernels;
using VitSparse.Training;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// The training step's vector kernels on their own: the GELU derivative against the exact-erf form in double
/// on a sweep, and the tiled product's serial (in-item) and blocked (dW) forms against double sums, including
/// Aᵀ read in place, ragged edges and a pruning mask; each bit-identical for 1, 2 and 3 threads. test.sh reruns
/// this category with AVX-512 off and with AVX2 off, so every vector width is covered.
/// </summary>
[Trait("Category", "Kernels")]
public unsafe class TrainingKernelTests
{
    static float[] Pinned(float[] v) { var a = GC.AllocateArray<float>(v.Length, pinned: true); v.CopyTo(a, 0); return a; }

    [Fact]
    public void Gelu_derivative_matches_the_exact_erf_form_in_double_on_a_sweep()
    {
        // Every 1/1024 over [−12, 12] plus random points; rows of 37 so vector tails and chunk ends both occur.
        const int width = 37;
        var us = new List<float>();
        for (int i = -12 * 1024; i <= 12 * 1024; i++) us.Add(i / 1024f);
        var rng = new Random(5);
        for (int i = 0; i < 4000; i++) us.Add((float)(rng.NextDouble() * 24 - 12));
        while (us.Count % width != 0) us.Add(0.5f);
        var u = Pinned(us.ToArray());
        var dg = Pinned(Enumerable.Repeat(1f, u.Length).ToArray());
        float[]? first = null;
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var team = new ThreadTeam(threads);
            var du = GC.AllocateArray<float>(u.Length, pinned: true);
            fixed (float* pu = u, pg = dg, pd = du) GeluGrad.Backward(pu, pg, pd, u.Length / width, width, team);
            double worstAbs = 0, worstRel = 0;
            float worstAbsAt = 0, worstRelAt = 0;
            for (int i = 0; i < u.Length; i++)
            {
                double exact = GeluGrad.Derivative((double)u[i]), err = Math.Abs(du[i] - exact);
                if (err > worstAbs) { worstAbs = err; worstAbsAt = u[i]; }
                // Relative error away from the zero crossing near u = −0.75 (there only the absolute one means anything).
                if (Math.Abs(exact) > 0.1 || u[i] < -2)
                {
                    double rel = err / Math.Abs(exact);
                    if (rel > worstRel) { worstRel = rel; worstRelAt = u[i]; }
                }
            }
            Console.WriteLine($"gelu' at {threads} threads: max |Δ| {worstAbs:g3} at u = {worstAbsAt}, max relative {worstRel:g3} at u = {worstRelAt}");
            Assert.True(worstAbs <= 3e-7, $"max |Δ| = {worstAbs:g3} at u = {worstAbsAt}");
            Assert.True(worstRel <= 2e-6, $"max relative error {worstRel:g3} at u = {worstRelAt}");
            if (first == null) first = du;
            else Assert.Equal(first, du);
        }
    }

    [Theory]
    [InlineData(50, 50, 64, false)]
    [InlineData(50, 64, 50, true)]
    [InlineData(7, 3, 5, true)]
    [InlineData(13, 40, 9, false)]
    public void Serial_product_matches_double_sums_with_a_transposed_A(int rows, int cols, int inner, bool aTransposed)
    {
        var a = Pinned(Fixtures.Random(rows * inner, 1)); var b = Pinned(Fixtures.Random(inner * cols, 2)); var bias = Pinned(Fixtures.Random(cols, 3));
        var c = GC.AllocateArray<float>(rows * cols, pinned: true);
        long aRow = aTransposed ? 1 : inner, aInner = aTransposed ? rows : 1;
        fixed (float* pa = a, pb = b, pc = c, pbias = bias) TiledProduct.RunSerial(pa, aRow, aInner, pb, cols, pc, cols, rows, cols, inner, pbias);
        var expected = new float[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++)
            {
                double s = bias[j];
                for (int i = 0; i < inner; i++) s += (double)a[r * aRow + i * aInner] * b[i * cols + j];
                expected[r * cols + j] = (float)s;
            }
        Fixtures.AssertClose(expected, c, 1e-5, "C");
    }

    [Theory]
    [InlineData(20, 48, 700)]
    [InlineData(31, 16, 260)]
    public void Blocked_weight_gradient_keeps_pruned_weights_at_zero_for_any_thread_count(int n, int k, int m)
    {
        var dy = Pinned(Fixtures.Random(m * n, 4)); var x = Pinned(Fixtures.Random(m * k, 5));
        // Whole tiles pruned (rows 6–11) and scattered single weights.
        var keep = GC.AllocateArray<byte>(n * k, pinned: true);
        var rng = new Random(6);
        for (int i = 0; i < keep.Length; i++) keep[i] = (byte)(i / k is >= 6 and < 12 || rng.Next(4) == 0 ? 0 : 1);
        var scratch = GC.AllocateArray<float>((int)DenseLinear.WeightScratchFloats(k), pinned: true);
        float[]? first = null;
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var team = new ThreadTeam(threads);
            var dw = GC.AllocateArray<float>(n * k, pinned: true);
            Array.Fill(dw, float.NaN);   // overwritten everywhere, pruned or not
            fixed (float* pdy = dy, px = x, pdw = dw, ps = scratch)
            fixed (byte* pk = keep)
                DenseLinear.BackwardWeights(pdy, m, n, px, k, pdw, ps, team, pk);
            var expected = new float[n * k];
            for (int j = 0; j < n; j++)
                for (int i = 0; i < k; i++)
                {
                    double s = 0;
                    for (int r = 0; r < m; r++) s += (double)dy[r * n + j] * x[r * k + i];
                    expected[j * k + i] = keep[j * k + i] != 0 ? (float)s : 0;
                }
            for (int i = 0; i < dw.Length; i++)
                if (keep[i] == 0) Assert.True(dw[i] == 0, $"pruned dW[{i}] = {dw[i]}");
            Fixtures.AssertClose(expected, dw, 1e-5, "dW");
            if (first == null) first = dw;
            else Assert.Equal(first, dw);
        }
    }
}
