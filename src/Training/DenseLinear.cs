using System.Numerics;
using VitSparse.Kernels;

namespace VitSparse.Training;

/// <summary>
/// A linear layer Y[m,n] = X[m,k]·W[n,k]ᵀ + b on unpacked, PyTorch-layout weights (training changes them
/// every step, so packing them as inference does would cost a repack per step), and its two gradients:
/// dX = dY·W and dW = dYᵀ·X, db = Σ_rows dY. Every output row is one work item that sums in a fixed order,
/// so results are bit-identical for any thread count. Vector&lt;float&gt; follows the JIT's width (AVX-512,
/// AVX2 or 128-bit), so the tests that turn those off cover each width.
/// </summary>
public static unsafe class DenseLinear
{
    public static void Forward(float* x, int m, int k, float* w, float* b, int n, float* y, ThreadTeam team) =>
        team.For(m, new ForwardBody(x, k, w, b, n, y));

    /// <summary>dX[m,k] = dY[m,n]·W[n,k] (overwrites dX).</summary>
    public static void BackwardInput(float* dy, int m, int n, float* w, int k, float* dx, ThreadTeam team) =>
        team.For(m, new InputBody(dy, n, w, k, dx));

    /// <summary>dW[n,k] = dY[m,n]ᵀ·X[m,k] and db[n] = Σ_m dY[m,n] (both overwritten).</summary>
    public static void BackwardWeights(float* dy, int m, int n, float* x, int k, float* dw, float* db, ThreadTeam team) =>
        team.For(n, new WeightBody(dy, m, n, x, k, dw, db));

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

    readonly struct ForwardBody(float* x, int k, float* w, float* b, int n, float* y) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            for (int r = start; r < end; r++)
            {
                float* xr = x + (long)r * k, yr = y + (long)r * n;
                for (int j = 0; j < n; j++) yr[j] = b[j] + Dot(xr, w + (long)j * k, k);
            }
        }
    }

    readonly struct InputBody(float* dy, int n, float* w, int k, float* dx) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            for (int r = start; r < end; r++)
            {
                float* g = dy + (long)r * n, d = dx + (long)r * k;
                new Span<float>(d, k).Clear();
                for (int j = 0; j < n; j++)
                    if (g[j] != 0) Axpy(g[j], w + (long)j * k, d, k);
            }
        }
    }

    readonly struct WeightBody(float* dy, int m, int n, float* x, int k, float* dw, float* db) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            for (int j = start; j < end; j++)
            {
                float* d = dw + (long)j * k;
                new Span<float>(d, k).Clear();
                float sum = 0;
                for (int r = 0; r < m; r++)
                {
                    float g = dy[(long)r * n + j];
                    sum += g;
                    if (g != 0) Axpy(g, x + (long)r * k, d, k);
                }
                db[j] = sum;
            }
        }
    }
}
