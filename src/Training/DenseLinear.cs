using System.Numerics;
using VitSparse.Kernels;

namespace VitSparse.Training;

/// <summary>
/// A linear layer Y[m,n] = X[m,k]·W[n,k]ᵀ + b on unpacked, PyTorch-layout weights (training changes them
/// every step), and its two gradients: dX = dY·W and dW = dYᵀ·X, db = Σ_rows dY. All three are one
/// register-tiled product C = A·B (<see cref="TiledProduct"/>); only where A and B come from differs. Every
/// output element belongs to one tile and sums over the inner index in order, and the tiling does not
/// depend on the team, so results are bit-identical for any thread count. The kernels follow the machine's
/// width (AVX-512 off → 256 bits, AVX2 off → 128), so the tests that turn those off cover each width.
/// </summary>
public static unsafe class DenseLinear
{
    /// <summary>Floats of scratch that <see cref="Forward"/> and <see cref="BackwardInput"/> need for a [n, k] weight.</summary>
    public static long ScratchFloats(int n, int k) => Math.Max(TiledProduct.PackedFloats(k, n), TiledProduct.PackedFloats(n, k));

    /// <summary>Y = X·Wᵀ + b. <paramref name="scratch"/> (<see cref="ScratchFloats"/>) takes W as Wᵀ in panels.</summary>
    public static void Forward(float* x, int m, int k, float* w, float* b, int n, float* y, float* scratch, ThreadTeam team) =>
        TiledProduct.Run(x, k, 1, w, k, true, y, n, m, n, k, b, team, scratch);

    /// <summary>dX[m,k] = dY[m,n]·W[n,k] (overwrites dX). <paramref name="scratch"/> (<see cref="ScratchFloats"/>) takes W in panels.</summary>
    public static void BackwardInput(float* dy, int m, int n, float* w, int k, float* dx, float* scratch, ThreadTeam team) =>
        TiledProduct.Run(dy, n, 1, w, k, false, dx, k, m, k, n, null, team, scratch);

    /// <summary>
    /// dW[n,k] = dY[m,n]ᵀ·X[m,k] and db[n] = Σ_m dY[m,n] (both overwritten). With <paramref name="keep"/>
    /// (a pruned weight's [n,k] mask, 1 kept), dW is computed on tiles holding a kept weight only and is
    /// exactly zero on every pruned weight.
    /// </summary>
    public static void BackwardWeights(float* dy, int m, int n, float* x, int k, float* dw, float* db, float* scratch, ThreadTeam team, byte* keep = null)
    {
        BackwardWeights(dy, m, n, x, k, dw, scratch, team, keep);
        BackwardBias(dy, m, n, db, team);
    }

    /// <summary>Floats of scratch that <see cref="BackwardWeights(float*, int, int, float*, int, float*, float*, ThreadTeam, byte*)"/> needs for inputs of width k.</summary>
    public static long WeightScratchFloats(int k) => TiledProduct.BlockFloats(k);

    /// <summary>dW[n,k] = dY[m,n]ᵀ·X[m,k] alone (overwritten), masked as in the overload with db; <paramref name="scratch"/> of <see cref="WeightScratchFloats"/>.</summary>
    public static void BackwardWeights(float* dy, int m, int n, float* x, int k, float* dw, float* scratch, ThreadTeam team, byte* keep = null) =>
        // A = dYᵀ read in place: row r of A is column r of dY (stride 1 between rows, n along the inner index).
        TiledProduct.RunBlocked(dy, 1, n, x, k, dw, k, n, k, m, team, scratch, keep);

    /// <summary>db[n] = Σ_m dY[m,n] (overwritten).</summary>
    public static void BackwardBias(float* dy, int m, int n, float* db, ThreadTeam team) =>
        team.For((n + Panel - 1) / Panel, new ColumnSumBody(dy, m, n, db));

    /// <summary>Columns per bias-sum work item.</summary>
    static int Panel => 2 * Vector<float>.Count;

    internal static float Dot(float* a, float* b, int k)
    {
        int vc = Vector<float>.Count, i = 0;
        var acc = Vector<float>.Zero;
        for (; i <= k - vc; i += vc) acc += Vector.Load(a + i) * Vector.Load(b + i);
        float s = Vector.Sum(acc);
        for (; i < k; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>y[0..k) += alpha·x[0..k).</summary>
    internal static void Axpy(float alpha, float* x, float* y, int k)
    {
        int vc = Vector<float>.Count, i = 0;
        var va = new Vector<float>(alpha);
        for (; i <= k - vc; i += vc) Vector.Store(Vector.Load(y + i) + va * Vector.Load(x + i), y + i);
        for (; i < k; i++) y[i] += alpha * x[i];
    }

    /// <summary>
    /// Column sums, one item per panel of columns, walking rows in order: each lane sums its column in row
    /// order as the scalar tail does, so every width gives the same bits.
    /// </summary>
    readonly struct ColumnSumBody(float* dy, int m, int n, float* db) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            int vc = Vector<float>.Count;
            for (int item = start; item < end; item++)
            {
                int j = item * Panel, j1 = Math.Min(n, j + Panel);
                for (; j + vc <= j1; j += vc)
                {
                    var s = Vector<float>.Zero;
                    for (int r = 0; r < m; r++) s += Vector.Load(dy + (long)r * n + j);
                    Vector.Store(s, db + j);
                }
                for (; j < j1; j++)
                {
                    float s = 0;
                    for (int r = 0; r < m; r++) s += dy[(long)r * n + j];
                    db[j] = s;
                }
            }
        }
    }
}
