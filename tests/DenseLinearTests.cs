using VitSparse.Kernels;
using VitSparse.Training;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// The training linear layer's three products against double-precision sums, on sizes with ragged tiles
/// and inner lengths past one inner block (the blocked accumulation), bit-identical for 1, 2 and 3 threads.
/// </summary>
[Trait("Category", "Kernels")]
public unsafe class DenseLinearTests
{
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 13, 5)]
    [InlineData(300, 33, 17)]
    [InlineData(9, 40, 600)]
    [InlineData(530, 20, 70)]
    [InlineData(61, 100, 300)]
    [InlineData(13, 48, 1100)]
    public void Forward_and_both_gradients_match_double_sums_for_any_thread_count(int m, int n, int k)
    {
        float[] Pinned(float[] v) { var a = GC.AllocateArray<float>(v.Length, pinned: true); v.CopyTo(a, 0); return a; }
        var x = Pinned(Fixtures.Random(m * k, 1)); var w = Pinned(Fixtures.Random(n * k, 2)); var b = Pinned(Fixtures.Random(n, 3));
        var dy = Pinned(Fixtures.Random(m * n, 4));
        float[]? firstY = null, firstDx = null, firstDw = null, firstDb = null;
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var team = new ThreadTeam(threads);
            var y = GC.AllocateArray<float>(m * n, true); var scratch = GC.AllocateArray<float>((int)Math.Max(DenseLinear.ScratchFloats(n, k), DenseLinear.WeightScratchFloats(k)), true);
            var dx = GC.AllocateArray<float>(m * k, true); var dw = GC.AllocateArray<float>(n * k, true); var db = GC.AllocateArray<float>(n, true);
            fixed (float* px = x, pw = w, pb = b, pdy = dy, py = y, pdx = dx, pdw = dw, pdb = db, pscratch = scratch)
            {
                DenseLinear.Forward(px, m, k, pw, pb, n, py, pscratch, team);
                DenseLinear.BackwardInput(pdy, m, n, pw, k, pdx, pscratch, team);
                DenseLinear.BackwardWeights(pdy, m, n, px, k, pdw, pdb, pscratch, team);
            }
            var refY = new float[m * n]; var refDx = new float[m * k]; var refDw = new float[n * k]; var refDb = new float[n];
            for (int r = 0; r < m; r++)
                for (int j = 0; j < n; j++)
                {
                    double s = b[j];
                    for (int i = 0; i < k; i++) s += (double)x[r * k + i] * w[j * k + i];
                    refY[r * n + j] = (float)s;
                }
            for (int r = 0; r < m; r++)
                for (int i = 0; i < k; i++)
                {
                    double s = 0;
                    for (int j = 0; j < n; j++) s += (double)dy[r * n + j] * w[j * k + i];
                    refDx[r * k + i] = (float)s;
                }
            for (int j = 0; j < n; j++)
            {
                double sb = 0;
                for (int r = 0; r < m; r++) sb += dy[r * n + j];
                refDb[j] = (float)sb;
                for (int i = 0; i < k; i++)
                {
                    double s = 0;
                    for (int r = 0; r < m; r++) s += (double)dy[r * n + j] * x[r * k + i];
                    refDw[j * k + i] = (float)s;
                }
            }
            Fixtures.AssertClose(refY, y, 1e-5, "Y");
            Fixtures.AssertClose(refDx, dx, 1e-5, "dX");
            Fixtures.AssertClose(refDw, dw, 1e-5, "dW");
            Fixtures.AssertClose(refDb, db, 1e-5, "db");
            if (firstY == null) { (firstY, firstDx, firstDw, firstDb) = (y, dx, dw, db); continue; }
            Assert.Equal(firstY, y); Assert.Equal(firstDx, dx); Assert.Equal(firstDw, dw); Assert.Equal(firstDb, db);
        }
    }
}
