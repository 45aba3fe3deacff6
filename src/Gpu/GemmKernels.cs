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
    public const int TileM = 64, TileN = 64, TileK = 16, Threads = 64;
    const int Side = 8; // 8×8 threads, each owning an 8×8 register tile strided by 8 (conflict-free shared reads)

    public const int EpBias = 0, EpGelu = 1, EpAccumulate = 2;
    /// <summary>Split-K: store the raw partial sums of K slice Grid.IdxZ into y at [slice·m + row, col] (stride ldy), no bias.</summary>
    public const int EpPartial = 3;
    /// <summary>
    /// Shared-memory row stride of the staged tiles: 16 consecutive threads write 16 consecutive k of one row, which
    /// at a stride of 64 would share one bank (16-way conflicts); at 65 they spread over the banks.
    /// </summary>
    const int Pad = TileM + 1;

    /// <summary>
    /// Y[m, N] (stride ldy) = epilogue(X[m, K] (stride ldx) · Wᵀ + b). Grid: (⌈m/64⌉, ⌈N/64⌉, slices) groups of 64
    /// threads, each accumulating 8×8 outputs in registers from 16-deep stages of X and W staged in shared memory.
    /// Any m, N, K: partial tiles load zeros and store only inside the matrix. With more than one slice, slice z
    /// sums k in [z·kSlice, (z+1)·kSlice) and stores with <see cref="EpPartial"/>; <see cref="ReducePartials"/> ends it.
    /// </summary>
    public static void Dense(ArrayView<float> x, int ldx, int m, ArrayView<float> w32, ArrayView<Half> w16, int half, int k, int n,
        ArrayView<float> bias, ArrayView<float> y, int ldy, int epilogue, int kSlice)
    {
        var xs = SharedMemory.Allocate<float>(TileK * Pad);   // [kk][row]
        var ws = SharedMemory.Allocate<float>(TileK * Pad);   // [kk][col]
        int t = Group.IdxX, tx = t % Side, ty = t / Side;
        int m0 = Grid.IdxX * TileM, n0 = Grid.IdxY * TileN;
        int kBegin = Grid.IdxZ * kSlice, kEnd = XMath.Min(k, kBegin + kSlice);
        long yBase = epilogue == EpPartial ? (long)Grid.IdxZ * m * ldy : 0;
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c04 = 0, c05 = 0, c06 = 0, c07 = 0;
        float c10 = 0, c11 = 0, c12 = 0, c13 = 0, c14 = 0, c15 = 0, c16 = 0, c17 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c24 = 0, c25 = 0, c26 = 0, c27 = 0;
        float c30 = 0, c31 = 0, c32 = 0, c33 = 0, c34 = 0, c35 = 0, c36 = 0, c37 = 0;
        float c40 = 0, c41 = 0, c42 = 0, c43 = 0, c44 = 0, c45 = 0, c46 = 0, c47 = 0;
        float c50 = 0, c51 = 0, c52 = 0, c53 = 0, c54 = 0, c55 = 0, c56 = 0, c57 = 0;
        float c60 = 0, c61 = 0, c62 = 0, c63 = 0, c64 = 0, c65 = 0, c66 = 0, c67 = 0;
        float c70 = 0, c71 = 0, c72 = 0, c73 = 0, c74 = 0, c75 = 0, c76 = 0, c77 = 0;
        for (int k0 = kBegin; k0 < kEnd; k0 += TileK)
        {
            // 1024 elements of each tile, sixteen per thread; consecutive threads read consecutive k (coalesced per row).
            for (int i = 0; i < TileM * TileK / Threads; i++)
            {
                int e = t + i * Threads, r = e / TileK, kk = e % TileK, row = m0 + r, col = n0 + r, kg = k0 + kk;
                xs[kk * Pad + r] = row < m && kg < kEnd ? x[(long)row * ldx + kg] : 0f;
                float wv = 0f;
                if (col < n && kg < kEnd) wv = half != 0 ? (float)w16[(long)col * k + kg] : w32[(long)col * k + kg];
                ws[kk * Pad + r] = wv;
            }
            Group.Barrier();
            for (int kk = 0; kk < TileK; kk++)
            {
                int xo = kk * Pad + ty, wo = kk * Pad + tx;
                float a0 = xs[xo + 0], a1 = xs[xo + 8], a2 = xs[xo + 16], a3 = xs[xo + 24], a4 = xs[xo + 32], a5 = xs[xo + 40], a6 = xs[xo + 48], a7 = xs[xo + 56];
                float b0 = ws[wo + 0], b1 = ws[wo + 8], b2 = ws[wo + 16], b3 = ws[wo + 24], b4 = ws[wo + 32], b5 = ws[wo + 40], b6 = ws[wo + 48], b7 = ws[wo + 56];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3; c04 += a0 * b4; c05 += a0 * b5; c06 += a0 * b6; c07 += a0 * b7;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3; c14 += a1 * b4; c15 += a1 * b5; c16 += a1 * b6; c17 += a1 * b7;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3; c24 += a2 * b4; c25 += a2 * b5; c26 += a2 * b6; c27 += a2 * b7;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3; c34 += a3 * b4; c35 += a3 * b5; c36 += a3 * b6; c37 += a3 * b7;
                c40 += a4 * b0; c41 += a4 * b1; c42 += a4 * b2; c43 += a4 * b3; c44 += a4 * b4; c45 += a4 * b5; c46 += a4 * b6; c47 += a4 * b7;
                c50 += a5 * b0; c51 += a5 * b1; c52 += a5 * b2; c53 += a5 * b3; c54 += a5 * b4; c55 += a5 * b5; c56 += a5 * b6; c57 += a5 * b7;
                c60 += a6 * b0; c61 += a6 * b1; c62 += a6 * b2; c63 += a6 * b3; c64 += a6 * b4; c65 += a6 * b5; c66 += a6 * b6; c67 += a6 * b7;
                c70 += a7 * b0; c71 += a7 * b1; c72 += a7 * b2; c73 += a7 * b3; c74 += a7 * b4; c75 += a7 * b5; c76 += a7 * b6; c77 += a7 * b7;
            }
            Group.Barrier();
        }
        int r0 = m0 + ty, q0 = n0 + tx;
        Store(y, ldy, r0 + 0, q0 + 0, c00, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 0, q0 + 16, c02, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 0, q0 + 32, c04, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 0, q0 + 48, c06, bias, epilogue, m, n, yBase);
        Store(y, ldy, r0 + 0, q0 + 8, c01, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 0, q0 + 24, c03, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 0, q0 + 40, c05, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 0, q0 + 56, c07, bias, epilogue, m, n, yBase);
        Store(y, ldy, r0 + 8, q0 + 0, c10, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 8, q0 + 16, c12, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 8, q0 + 32, c14, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 8, q0 + 48, c16, bias, epilogue, m, n, yBase);
        Store(y, ldy, r0 + 8, q0 + 8, c11, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 8, q0 + 24, c13, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 8, q0 + 40, c15, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 8, q0 + 56, c17, bias, epilogue, m, n, yBase);
        Store(y, ldy, r0 + 16, q0 + 0, c20, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 16, q0 + 16, c22, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 16, q0 + 32, c24, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 16, q0 + 48, c26, bias, epilogue, m, n, yBase);
        Store(y, ldy, r0 + 16, q0 + 8, c21, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 16, q0 + 24, c23, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 16, q0 + 40, c25, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 16, q0 + 56, c27, bias, epilogue, m, n, yBase);
        Store(y, ldy, r0 + 24, q0 + 0, c30, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 24, q0 + 16, c32, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 24, q0 + 32, c34, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 24, q0 + 48, c36, bias, epilogue, m, n, yBase);
        Store(y, ldy, r0 + 24, q0 + 8, c31, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 24, q0 + 24, c33, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 24, q0 + 40, c35, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 24, q0 + 56, c37, bias, epilogue, m, n, yBase);
        Store(y, ldy, r0 + 32, q0 + 0, c40, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 32, q0 + 16, c42, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 32, q0 + 32, c44, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 32, q0 + 48, c46, bias, epilogue, m, n, yBase);
        Store(y, ldy, r0 + 32, q0 + 8, c41, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 32, q0 + 24, c43, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 32, q0 + 40, c45, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 32, q0 + 56, c47, bias, epilogue, m, n, yBase);
        Store(y, ldy, r0 + 40, q0 + 0, c50, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 40, q0 + 16, c52, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 40, q0 + 32, c54, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 40, q0 + 48, c56, bias, epilogue, m, n, yBase);
        Store(y, ldy, r0 + 40, q0 + 8, c51, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 40, q0 + 24, c53, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 40, q0 + 40, c55, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 40, q0 + 56, c57, bias, epilogue, m, n, yBase);
        Store(y, ldy, r0 + 48, q0 + 0, c60, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 48, q0 + 16, c62, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 48, q0 + 32, c64, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 48, q0 + 48, c66, bias, epilogue, m, n, yBase);
        Store(y, ldy, r0 + 48, q0 + 8, c61, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 48, q0 + 24, c63, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 48, q0 + 40, c65, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 48, q0 + 56, c67, bias, epilogue, m, n, yBase);
        Store(y, ldy, r0 + 56, q0 + 0, c70, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 56, q0 + 16, c72, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 56, q0 + 32, c74, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 56, q0 + 48, c76, bias, epilogue, m, n, yBase);
        Store(y, ldy, r0 + 56, q0 + 8, c71, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 56, q0 + 24, c73, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 56, q0 + 40, c75, bias, epilogue, m, n, yBase); Store(y, ldy, r0 + 56, q0 + 56, c77, bias, epilogue, m, n, yBase);
    }

    /// <summary>Outputs per thread of the BSR kernel; a group covers rowsPerGroup × bh outputs, at most 8·64.</summary>
    public const int BsrOutputsPerThread = 8;

    /// <summary>
    /// BSR GEMM: W in bh×bw blocks (values [kept, bh, bw] row-major, blockCols [kept], rowPtr [⌈N/bh⌉ + 1]).
    /// Grid: (⌈m/rowsPerGroup⌉, block rows) groups of 64; dynamic shared memory <see cref="BsrSharedFloats"/>:
    /// each kept block of the group's block row is staged with the matching columns of X, then every thread
    /// adds it into its (up to eight) outputs. The shape travels as one struct: stream kernels take at most 14 parameters.
    /// </summary>
    public static void BsrPacked(ArrayView<float> x, int m, ArrayView<float> v32, ArrayView<Half> v16, ArrayView<int> blockCols, ArrayView<int> rowPtr,
        BsrShape s, ArrayView<float> bias, ArrayView<float> y, int ldy)
    {
        var shared = SharedMemory.GetDynamic<float>();
        int t = Group.IdxX, br = Grid.IdxY, m0 = Grid.IdxX * s.RowsPerGroup;
        // W rows are staged at an odd stride: consecutive threads read consecutive rows of the block at the same j.
        int bh = s.BlockHeight, bw = s.BlockWidth, ws = BsrStride(bw), wFloats = bh * bw, xAt = bh * ws, outputs = s.RowsPerGroup * bh;
        float a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
        // Output o = t + i·64 is (row o / bh, column o mod bh); when bh divides 64 and the group holds 8·64 outputs,
        // a thread's eight outputs share their column and all exist.
        bool full = Threads % bh == 0 && outputs == BsrOutputsPerThread * Threads;
        int r = t / bh, c = t % bh;
        for (int b = rowPtr[br]; b < rowPtr[br + 1]; b++)
        {
            int c0 = blockCols[b] * bw;
            for (int e = t; e < wFloats; e += Threads)
                shared[e / bw * ws + e % bw] = s.Half != 0 ? (float)v16[(long)b * wFloats + e] : v32[(long)b * wFloats + e];
            for (int e = t; e < s.RowsPerGroup * bw; e += Threads)
            {
                int row = m0 + e / bw, col = c0 + e % bw;
                shared[xAt + e] = row < m && col < s.K ? x[(long)row * s.Ldx + col] : 0f;
            }
            Group.Barrier();
            if (full)
            {
                // Every thread's eight outputs share one row of W (c = t mod bh) and take X rows r, r + 64/bh, …:
                // one read of W per j serves eight multiply-adds.
                int wRow = c * ws, x0 = xAt + r * bw, xs = Threads / bh * bw;
                for (int j = 0; j < bw; j++)
                {
                    float wv = shared[wRow + j];
                    a0 += shared[x0 + j] * wv; a1 += shared[x0 + xs + j] * wv; a2 += shared[x0 + 2 * xs + j] * wv; a3 += shared[x0 + 3 * xs + j] * wv;
                    a4 += shared[x0 + 4 * xs + j] * wv; a5 += shared[x0 + 5 * xs + j] * wv; a6 += shared[x0 + 6 * xs + j] * wv; a7 += shared[x0 + 7 * xs + j] * wv;
                }
            }
            else
            {
                a0 += BlockDot(shared, t, bh, bw, ws, xAt, outputs);
                a1 += BlockDot(shared, t + Threads, bh, bw, ws, xAt, outputs);
                a2 += BlockDot(shared, t + 2 * Threads, bh, bw, ws, xAt, outputs);
                a3 += BlockDot(shared, t + 3 * Threads, bh, bw, ws, xAt, outputs);
                a4 += BlockDot(shared, t + 4 * Threads, bh, bw, ws, xAt, outputs);
                a5 += BlockDot(shared, t + 5 * Threads, bh, bw, ws, xAt, outputs);
                a6 += BlockDot(shared, t + 6 * Threads, bh, bw, ws, xAt, outputs);
                a7 += BlockDot(shared, t + 7 * Threads, bh, bw, ws, xAt, outputs);
            }
            Group.Barrier();
        }
        StoreBsr(y, ldy, m0, br, t, a0, bias, s, outputs, m);
        StoreBsr(y, ldy, m0, br, t + Threads, a1, bias, s, outputs, m);
        StoreBsr(y, ldy, m0, br, t + 2 * Threads, a2, bias, s, outputs, m);
        StoreBsr(y, ldy, m0, br, t + 3 * Threads, a3, bias, s, outputs, m);
        StoreBsr(y, ldy, m0, br, t + 4 * Threads, a4, bias, s, outputs, m);
        StoreBsr(y, ldy, m0, br, t + 5 * Threads, a5, bias, s, outputs, m);
        StoreBsr(y, ldy, m0, br, t + 6 * Threads, a6, bias, s, outputs, m);
        StoreBsr(y, ldy, m0, br, t + 7 * Threads, a7, bias, s, outputs, m);
    }

    static float BlockDot(ArrayView<float> shared, int o, int bh, int bw, int ws, int xAt, int outputs)
    {
        if (o >= outputs) return 0f;
        int r = o / bh, c = o % bh;
        float acc = 0f;
        for (int j = 0; j < bw; j++) acc += shared[xAt + r * bw + j] * shared[c * ws + j];
        return acc;
    }

    /// <summary>Shared-memory stride of a staged BSR block row of width <paramref name="bw"/>: the width if odd, else one more.</summary>
    public static int BsrStride(int bw) => bw | 1;

    /// <summary>Dynamic shared memory of <see cref="BsrPacked"/>, in floats: the staged block, then the rows of X.</summary>
    public static int BsrSharedFloats(int bh, int bw, int rowsPerGroup) => bh * BsrStride(bw) + rowsPerGroup * bw;

    static void StoreBsr(ArrayView<float> y, int ldy, int m0, int br, int o, float acc, ArrayView<float> bias, BsrShape s, int outputs, int m)
    {
        if (o >= outputs) return;
        Store(y, ldy, m0 + o / s.BlockHeight, br * s.BlockHeight + o % s.BlockHeight, acc, bias, s.Epilogue, m, s.N, 0);
    }

    static void Store(ArrayView<float> y, int ldy, int row, int col, float acc, ArrayView<float> bias, int epilogue, int m, int n, long yBase)
    {
        if (row >= m || col >= n) return;
        long at = yBase + (long)row * ldy + col;
        if (epilogue == EpPartial) { y[at] = acc; return; }
        y[at] = Finish(acc + bias[col], epilogue, y, at);
    }

    /// <summary>The epilogue after the bias: GELU, or adding onto what y holds (the residual), or nothing.</summary>
    static float Finish(float v, int epilogue, ArrayView<float> y, long at)
    {
        if (epilogue == EpGelu) return Gelu(v);
        if (epilogue == EpAccumulate) return v + y[at];
        return v;
    }

    /// <summary>
    /// The end of a split-K GEMM: y[row, col] = epilogue(Σ over slices in order of partials[slice·m + row, col] + b),
    /// one thread per output (the same sum order every run).
    /// </summary>
    public static void ReducePartials(Index1D i, ArrayView<float> partials, int slices, int m, int n, ArrayView<float> bias, ArrayView<float> y, int ldy, int epilogue)
    {
        int row = i / n, col = i % n;
        float acc = 0f;
        for (int z = 0; z < slices; z++) acc += partials[((long)z * m + row) * n + col];
        long at = (long)row * ldy + col;
        y[at] = Finish(acc + bias[col], epilogue, y, at);
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
