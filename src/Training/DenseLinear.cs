using System.Numerics;
using VitSparse.Kernels;

namespace VitSparse.Training;

/// <summary>
/// A linear layer Y[m,n] = X[m,k]·W[n,k]ᵀ + b on unpacked, PyTorch-layout weights (training changes them
/// every step), and its two gradients: dX = dY·W and dW = dYᵀ·X, db = Σ_rows dY. All three are one
/// register-tiled product C = A·B (<see cref="Product"/>); only where A and B come from differs. Every
/// output element belongs to one tile and sums over the inner index in order, and the tiling does not
/// depend on the team, so results are bit-identical for any thread count. Vector&lt;float&gt; follows the
/// JIT's width (AVX-512 off → 256 bits, AVX2 off → 128), so the tests that turn those off cover each width.
/// </summary>
public static unsafe class DenseLinear
{
    /// <summary>Y = X·Wᵀ + b. <paramref name="wT"/> is scratch of at least n·k floats for Wᵀ.</summary>
    public static void Forward(float* x, int m, int k, float* w, float* b, int n, float* y, float* wT, ThreadTeam team)
    {
        team.For(k, new TransposeBody(w, n, k, wT));
        team.For(Items(m, n), new ProductBody(x, k, 1, wT, n, y, n, m, n, k, b));
    }

    /// <summary>dX[m,k] = dY[m,n]·W[n,k] (overwrites dX).</summary>
    public static void BackwardInput(float* dy, int m, int n, float* w, int k, float* dx, ThreadTeam team) =>
        team.For(Items(m, k), new ProductBody(dy, n, 1, w, k, dx, k, m, k, n, null));

    /// <summary>
    /// dW[n,k] = dY[m,n]ᵀ·X[m,k] and db[n] = Σ_m dY[m,n] (both overwritten). With <paramref name="keep"/>
    /// (a pruned weight's [n,k] mask, 1 kept), dW is computed on tiles holding a kept weight only and is
    /// exactly zero on every pruned weight.
    /// </summary>
    public static void BackwardWeights(float* dy, int m, int n, float* x, int k, float* dw, float* db, ThreadTeam team, byte* keep = null)
    {
        BackwardWeights(dy, m, n, x, k, dw, team, keep);
        BackwardBias(dy, m, n, db, team);
    }

    /// <summary>dW[n,k] = dY[m,n]ᵀ·X[m,k] alone (overwritten), masked as in the overload with db.</summary>
    public static void BackwardWeights(float* dy, int m, int n, float* x, int k, float* dw, ThreadTeam team, byte* keep = null) =>
        // A = dYᵀ read in place: row r of A is column r of dY (stride 1 between rows, n along the inner index).
        team.For(Items(n, k), new ProductBody(dy, 1, n, x, k, dw, k, n, k, m, null, keep));

    /// <summary>db[n] = Σ_m dY[m,n] (overwritten).</summary>
    public static void BackwardBias(float* dy, int m, int n, float* db, ThreadTeam team) =>
        team.For((n + Panel - 1) / Panel, new ColumnSumBody(dy, m, n, db));

    const int Rows = 4;
    const int InnerBlock = 256;
    static int Panel => 2 * Vector<float>.Count;
    static int Items(int rows, int cols) => (rows + Rows - 1) / Rows * ((cols + Panel - 1) / Panel);

    /// <summary>a·b + c, fused only where the hardware fuses (never the software-emulated fused multiply-add).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    static Vector<float> Fma(Vector<float> a, Vector<float> b, Vector<float> c) =>
        HardwareFma.IsSupported ? Vector.FusedMultiplyAdd(a, b, c) : a * b + c;

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
    /// C[rows, cols] = A·B (+ bias per column), A(r, i) = a[r·aRow + i·aInner], B row-major [inner, ldb].
    /// One item is a tile of 4 rows × 2 vectors of columns; items run panel-major so a panel of B stays in L1.
    /// </summary>
    readonly struct ProductBody(float* a, long aRow, long aInner, float* b, int ldb, float* c, int ldc, int rows, int cols, int inner, float* bias, byte* keep = null) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            int rowTiles = (rows + Rows - 1) / Rows, vc = Vector<float>.Count;
            // Inner index in blocks, outermost: the block of B for one panel and of A for one row tile stay in
            // L1/L2 while the worker's tiles pass over them (dW has inner = batch·tokens, thousands long).
            // Partial sums wait in C between blocks, so each element still sums in plain inner order.
            for (int i0 = 0; i0 < inner; i0 += InnerBlock)
            {
                int i1 = Math.Min(inner, i0 + InnerBlock);
                for (int item = start; item < end; item++)
                {
                    int r0 = item % rowTiles * Rows, c0 = item / rowTiles * Panel;
                    int rr = Math.Min(Rows, rows - r0), cc = Math.Min(Panel, cols - c0);
                    if (keep != null && !AnyKept(r0, c0, rr, cc))
                    {
                        if (i0 == 0) Zero(r0, c0, rr, cc);   // a fully pruned tile: nothing to compute
                        continue;
                    }
                    if (rr == Rows && cc == Panel) Full(r0, c0, vc, i0, i1);
                    else Edge(r0, c0, rr, cc, i0, i1);
                    if (keep != null && i1 == inner) ApplyMask(r0, c0, rr, cc);
                }
            }
        }

        void Full(int r0, int c0, int vc, int i0, int i1)
        {
            float* o = c + (long)r0 * ldc + c0;
            Vector<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
            if (i0 > 0)
            {
                c00 = Vector.Load(o); c01 = Vector.Load(o + vc);
                c10 = Vector.Load(o + ldc); c11 = Vector.Load(o + ldc + vc);
                c20 = Vector.Load(o + 2 * ldc); c21 = Vector.Load(o + 2 * ldc + vc);
                c30 = Vector.Load(o + 3 * ldc); c31 = Vector.Load(o + 3 * ldc + vc);
            }
            float* a0 = a + r0 * aRow;
            for (int i = i0; i < i1; i++)
            {
                float* bi = b + (long)i * ldb + c0;
                var b0 = Vector.Load(bi);
                var b1 = Vector.Load(bi + vc);
                float* ai = a0 + i * aInner;
                var x0 = new Vector<float>(ai[0]);
                c00 = Fma(x0, b0, c00); c01 = Fma(x0, b1, c01);
                var x1 = new Vector<float>(ai[aRow]);
                c10 = Fma(x1, b0, c10); c11 = Fma(x1, b1, c11);
                var x2 = new Vector<float>(ai[2 * aRow]);
                c20 = Fma(x2, b0, c20); c21 = Fma(x2, b1, c21);
                var x3 = new Vector<float>(ai[3 * aRow]);
                c30 = Fma(x3, b0, c30); c31 = Fma(x3, b1, c31);
            }
            if (bias != null && i1 == inner)
            {
                var b0 = Vector.Load(bias + c0);
                var b1 = Vector.Load(bias + c0 + vc);
                c00 += b0; c01 += b1; c10 += b0; c11 += b1; c20 += b0; c21 += b1; c30 += b0; c31 += b1;
            }
            Vector.Store(c00, o); Vector.Store(c01, o + vc); o += ldc;
            Vector.Store(c10, o); Vector.Store(c11, o + vc); o += ldc;
            Vector.Store(c20, o); Vector.Store(c21, o + vc); o += ldc;
            Vector.Store(c30, o); Vector.Store(c31, o + vc);
        }

        bool AnyKept(int r0, int c0, int rr, int cc)
        {
            for (int r = r0; r < r0 + rr; r++)
                for (int j = c0; j < c0 + cc; j++) if (keep[(long)r * ldc + j] != 0) return true;
            return false;
        }

        void Zero(int r0, int c0, int rr, int cc)
        {
            for (int r = r0; r < r0 + rr; r++) new Span<float>(c + (long)r * ldc + c0, cc).Clear();
        }

        void ApplyMask(int r0, int c0, int rr, int cc)
        {
            for (int r = r0; r < r0 + rr; r++)
                for (int j = c0; j < c0 + cc; j++) if (keep[(long)r * ldc + j] == 0) c[(long)r * ldc + j] = 0;
        }

        /// <summary>A partial tile (last rows or columns): one element at a time, still in inner order.</summary>
        void Edge(int r0, int c0, int rr, int cc, int i0, int i1)
        {
            for (int r = r0; r < r0 + rr; r++)
                for (int j = c0; j < c0 + cc; j++)
                {
                    float* cj = c + (long)r * ldc + j;
                    float s = i0 > 0 ? *cj : 0;
                    float* ar = a + r * aRow;
                    for (int i = i0; i < i1; i++) s = HardwareFma.MultiplyAdd(ar[i * aInner], b[(long)i * ldb + j], s);
                    *cj = bias != null && i1 == inner ? s + bias[j] : s;
                }
        }
    }

    /// <summary>wT[k, n] = w[n, k]; one item per row of wT.</summary>
    readonly struct TransposeBody(float* w, int n, int k, float* wT) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            for (int i = start; i < end; i++)
                for (int j = 0; j < n; j++) wT[(long)i * n + j] = w[(long)j * k + i];
        }
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
