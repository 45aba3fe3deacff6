using ILGPU;
using Half = ILGPU.Half;
using ILGPU.Algorithms;

namespace VitSparse.Gpu;

/// <summary>
/// The linear-layer kernels: a tiled dense SGEMM and a block-sparse (BSR) GEMM, both with the epilogues of
/// <see cref="Kernels.Epilogue"/> fused into the store. Weights are W [N, K] row-major, fp32 or fp16 (a flag picks
/// which view is read; the other is a one-element dummy); accumulation is always fp32.
/// </summary>
static class GemmKernels
{
    /// <summary>Rows (of X) and columns (of W) per group tile, K per shared-memory stage, threads per group.</summary>
    public const int TileM = 64, TileN = 64, TileK = 16, Threads = 256;
    const int Side = 16; // 16×16 threads, each owning a 4×4 register tile strided by 16 (conflict-free shared reads)

    public const int EpBias = 0, EpGelu = 1, EpAccumulate = 2;

    /// <summary>
    /// Y[m, N] (stride ldy) = epilogue(X[m, K] (stride ldx) · Wᵀ + b). Grid: (⌈m/64⌉, ⌈N/64⌉) groups of 256.
    /// Any m, N, K: partial tiles load zeros and store only inside the matrix.
    /// </summary>
    public static void Dense(ArrayView<float> x, int ldx, int m, ArrayView<float> w32, ArrayView<Half> w16, int half, int k, int n,
        ArrayView<float> bias, ArrayView<float> y, int ldy, int epilogue)
    {
        var xs = SharedMemory.Allocate<float>(TileK * TileM);   // [kk][row]
        var ws = SharedMemory.Allocate<float>(TileK * TileN);   // [kk][col]
        int t = Group.IdxX, tx = t % Side, ty = t / Side;
        int m0 = Grid.IdxX * TileM, n0 = Grid.IdxY * TileN;
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (int k0 = 0; k0 < k; k0 += TileK)
        {
            // 1024 elements of each tile, four per thread; consecutive threads read consecutive k (coalesced per row).
            for (int i = 0; i < TileM * TileK / Threads; i++)
            {
                int e = t + i * Threads, r = e / TileK, kk = e % TileK, row = m0 + r, col = n0 + r, kg = k0 + kk;
                xs[kk * TileM + r] = row < m && kg < k ? x[(long)row * ldx + kg] : 0f;
                float wv = 0f;
                if (col < n && kg < k) wv = half != 0 ? (float)w16[(long)col * k + kg] : w32[(long)col * k + kg];
                ws[kk * TileN + r] = wv;
            }
            Group.Barrier();
            for (int kk = 0; kk < TileK; kk++)
            {
                int xo = kk * TileM + ty, wo = kk * TileN + tx;
                float a0 = xs[xo], a1 = xs[xo + 16], a2 = xs[xo + 32], a3 = xs[xo + 48];
                float b0 = ws[wo], b1 = ws[wo + 16], b2 = ws[wo + 32], b3 = ws[wo + 48];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            Group.Barrier();
        }
        int r0 = m0 + ty, q0 = n0 + tx;
        Store(y, ldy, r0, q0, c00, bias, epilogue, m, n); Store(y, ldy, r0, q0 + 16, c01, bias, epilogue, m, n);
        Store(y, ldy, r0, q0 + 32, c02, bias, epilogue, m, n); Store(y, ldy, r0, q0 + 48, c03, bias, epilogue, m, n);
        Store(y, ldy, r0 + 16, q0, c10, bias, epilogue, m, n); Store(y, ldy, r0 + 16, q0 + 16, c11, bias, epilogue, m, n);
        Store(y, ldy, r0 + 16, q0 + 32, c12, bias, epilogue, m, n); Store(y, ldy, r0 + 16, q0 + 48, c13, bias, epilogue, m, n);
        Store(y, ldy, r0 + 32, q0, c20, bias, epilogue, m, n); Store(y, ldy, r0 + 32, q0 + 16, c21, bias, epilogue, m, n);
        Store(y, ldy, r0 + 32, q0 + 32, c22, bias, epilogue, m, n); Store(y, ldy, r0 + 32, q0 + 48, c23, bias, epilogue, m, n);
        Store(y, ldy, r0 + 48, q0, c30, bias, epilogue, m, n); Store(y, ldy, r0 + 48, q0 + 16, c31, bias, epilogue, m, n);
        Store(y, ldy, r0 + 48, q0 + 32, c32, bias, epilogue, m, n); Store(y, ldy, r0 + 48, q0 + 48, c33, bias, epilogue, m, n);
    }

    /// <summary>Outputs per thread of the BSR kernel; a group covers rowsPerGroup × bh outputs, at most 4·256.</summary>
    public const int BsrOutputsPerThread = 4;

    /// <summary>
    /// BSR GEMM: W in bh×bw blocks (values [kept, bh, bw] row-major, blockCols [kept], rowPtr [⌈N/bh⌉ + 1]).
    /// Grid: (⌈m/rowsPerGroup⌉, block rows) groups of 256; dynamic shared memory bh·bw + rowsPerGroup·bw floats:
    /// each kept block of the group's block row is staged with the matching columns of X, then every thread
    /// adds it into its (up to four) outputs. The shape travels as one struct: stream kernels take at most 14 parameters.
    /// </summary>
    public static void BsrPacked(ArrayView<float> x, int m, ArrayView<float> v32, ArrayView<Half> v16, ArrayView<int> blockCols, ArrayView<int> rowPtr,
        BsrShape s, ArrayView<float> bias, ArrayView<float> y, int ldy)
    {
        var shared = SharedMemory.GetDynamic<float>();
        int t = Group.IdxX, br = Grid.IdxY, m0 = Grid.IdxX * s.RowsPerGroup;
        int bh = s.BlockHeight, bw = s.BlockWidth, wFloats = bh * bw, outputs = s.RowsPerGroup * bh;
        float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (int b = rowPtr[br]; b < rowPtr[br + 1]; b++)
        {
            int c0 = blockCols[b] * bw;
            for (int e = t; e < wFloats; e += Threads)
                shared[e] = s.Half != 0 ? (float)v16[(long)b * wFloats + e] : v32[(long)b * wFloats + e];
            for (int e = t; e < s.RowsPerGroup * bw; e += Threads)
            {
                int r = e / bw, c = e % bw, row = m0 + r, col = c0 + c;
                shared[wFloats + e] = row < m && col < s.K ? x[(long)row * s.Ldx + col] : 0f;
            }
            Group.Barrier();
            a0 += BlockDot(shared, t, bh, bw, wFloats, outputs);
            a1 += BlockDot(shared, t + Threads, bh, bw, wFloats, outputs);
            a2 += BlockDot(shared, t + 2 * Threads, bh, bw, wFloats, outputs);
            a3 += BlockDot(shared, t + 3 * Threads, bh, bw, wFloats, outputs);
            Group.Barrier();
        }
        StoreBsr(y, ldy, m0, br, t, a0, bias, s, outputs, m);
        StoreBsr(y, ldy, m0, br, t + Threads, a1, bias, s, outputs, m);
        StoreBsr(y, ldy, m0, br, t + 2 * Threads, a2, bias, s, outputs, m);
        StoreBsr(y, ldy, m0, br, t + 3 * Threads, a3, bias, s, outputs, m);
    }

    static float BlockDot(ArrayView<float> shared, int o, int bh, int bw, int wFloats, int outputs)
    {
        if (o >= outputs) return 0f;
        int r = o / bh, c = o % bh;
        float acc = 0f;
        for (int j = 0; j < bw; j++) acc += shared[wFloats + r * bw + j] * shared[c * bw + j];
        return acc;
    }

    static void StoreBsr(ArrayView<float> y, int ldy, int m0, int br, int o, float acc, ArrayView<float> bias, BsrShape s, int outputs, int m)
    {
        if (o >= outputs) return;
        Store(y, ldy, m0 + o / s.BlockHeight, br * s.BlockHeight + o % s.BlockHeight, acc, bias, s.Epilogue, m, s.N);
    }

    static void Store(ArrayView<float> y, int ldy, int row, int col, float acc, ArrayView<float> bias, int epilogue, int m, int n)
    {
        if (row >= m || col >= n) return;
        float v = acc + bias[col];
        long at = (long)row * ldy + col;
        if (epilogue == EpGelu) v = Gelu(v);
        else if (epilogue == EpAccumulate) v += y[at];
        y[at] = v;
    }

    /// <summary>Exact GELU, x/2·erfc(−x/√2), with the same erfc fit (Numerical Recipes, error below 1.2e-7) as the CPU kernel.</summary>
    public static float Gelu(float x)
    {
        float z = -x * 0.70710678118654752f, a = XMath.Abs(z);
        float t = 1f / (1f + 0.5f * a);
        float p = 0.17087277f;
        p = p * t - 0.82215223f; p = p * t + 1.48851587f; p = p * t - 1.13520398f; p = p * t + 0.27886807f;
        p = p * t - 0.18628806f; p = p * t + 0.09678418f; p = p * t + 0.37409196f; p = p * t + 1.00002368f; p = p * t - 1.26551223f;
        float yv = t * XMath.Exp(-a * a + p);
        float erfc = z < 0f ? 2f - yv : yv;
        return 0.5f * x * erfc;
    }
}

/// <summary>The shape arguments of <see cref="GemmKernels.BsrPacked"/>.</summary>
struct BsrShape
{
    /// <summary>Row stride of X.</summary>
    public int Ldx;
    /// <summary>Input width.</summary>
    public int K;
    /// <summary>Output width.</summary>
    public int N;
    /// <summary>Block height (rows of W).</summary>
    public int BlockHeight;
    /// <summary>Block width (columns of W).</summary>
    public int BlockWidth;
    /// <summary>Rows of X per group.</summary>
    public int RowsPerGroup;
    /// <summary>1 when the values are fp16.</summary>
    public int Half;
    /// <summary>GemmKernels.EpBias, EpGelu or EpAccumulate.</summary>
    public int Epilogue;
}
