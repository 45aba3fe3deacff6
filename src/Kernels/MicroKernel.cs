using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;

namespace VitSparse.Kernels;

/// <summary>A row count known to the JIT, so one kernel source yields six straight-line kernels.</summary>
interface IRows { static abstract int Value { get; } }
struct R1 : IRows { public static int Value => 1; }
struct R2 : IRows { public static int Value => 2; }
struct R3 : IRows { public static int Value => 3; }
struct R4 : IRows { public static int Value => 4; }
struct R5 : IRows { public static int Value => 5; }
struct R6 : IRows { public static int Value => 6; }
struct C1 : IRows { public static int Value => 1; }
struct C2 : IRows { public static int Value => 2; }

/// <summary>
/// The register tile: up to Mr rows of A times one packed panel of 2 vectors, accumulated over K in
/// 2·Mr vector registers (12 at Mr = 6, enough independent FMA chains to cover FMA latency), then
/// written raw to a [rows][2 vectors] tile for the epilogue.
/// </summary>
internal static class MicroKernel
{
    public const int Mr = 6;

    /// <summary>A tile two vectors wide (the GEMM panel).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Run<TOps, TV>(int rows, ref float a, int lda, ref float b, int k, ref float tile, bool accumulate = false, int ldc = 0)
        where TOps : struct, IVec<TV> where TV : struct => Run<TOps, TV, C2>(rows, ref a, lda, ref b, k, ref tile, accumulate, ldc == 0 ? 2 * TOps.Count : ldc);

    /// <summary>A tile one vector wide, for narrow outputs (e.g. a 12-wide attention head's values).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void RunNarrow<TOps, TV>(int rows, ref float a, int lda, ref float b, int k, ref float tile, int ldc)
        where TOps : struct, IVec<TV> where TV : struct => Run<TOps, TV, C1>(rows, ref a, lda, ref b, k, ref tile, false, ldc);

    /// <summary>
    /// A tile over runs of K: runs holds (first column, length) pairs, and B holds the packed rows of every run
    /// one after another, so the columns a run skips cost nothing (block-sparse weights: a run is a stretch of
    /// kept blocks). The accumulators stay in registers from the first run to the last. With
    /// <paramref name="oneVector"/> the panel is one vector wide (the last panel of a ragged N).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void RunRuns<TOps, TV>(int rows, ref float a, int lda, ref float b, int* runs, int runCount, ref float tile, bool accumulate, int ldc, bool oneVector = false)
        where TOps : struct, IVec<TV> where TV : struct
    {
        if (oneVector) Run<TOps, TV, C1>(rows, ref a, lda, ref b, 0, runs, runCount, ref tile, accumulate, ldc);
        else Run<TOps, TV, C2>(rows, ref a, lda, ref b, 0, runs, runCount, ref tile, accumulate, ldc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void Run<TOps, TV, TC>(int rows, ref float a, int lda, ref float b, int k, ref float tile, bool accumulate, int ldc)
        where TOps : struct, IVec<TV> where TV : struct where TC : struct, IRows => Run<TOps, TV, TC>(rows, ref a, lda, ref b, k, null, 1, ref tile, accumulate, ldc);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void Run<TOps, TV, TC>(int rows, ref float a, int lda, ref float b, int k, int* runs, int runCount, ref float tile, bool accumulate, int ldc)
        where TOps : struct, IVec<TV> where TV : struct where TC : struct, IRows
    {
        switch (rows)
        {
            case 6: Tile<TOps, TV, R6, TC>(ref a, lda, ref b, k, runs, runCount, ref tile, accumulate, ldc); break;
            case 5: Tile<TOps, TV, R5, TC>(ref a, lda, ref b, k, runs, runCount, ref tile, accumulate, ldc); break;
            case 4: Tile<TOps, TV, R4, TC>(ref a, lda, ref b, k, runs, runCount, ref tile, accumulate, ldc); break;
            case 3: Tile<TOps, TV, R3, TC>(ref a, lda, ref b, k, runs, runCount, ref tile, accumulate, ldc); break;
            case 2: Tile<TOps, TV, R2, TC>(ref a, lda, ref b, k, runs, runCount, ref tile, accumulate, ldc); break;
            default: Tile<TOps, TV, R1, TC>(ref a, lda, ref b, k, runs, runCount, ref tile, accumulate, ldc); break;
        }
    }

    /// <summary>
    /// tile = A·B (or tile += A·B when <paramref name="accumulate"/>, for K split into cache-sized blocks); tile rows are
    /// <paramref name="nr"/> floats apart. A's columns are [0, k) when <paramref name="runs"/> is null, else the runs'.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void Tile<TOps, TV, TR, TC>(ref float a0, int lda, ref float b, int k, int* runs, int runCount, ref float tile, bool accumulate, int nr)
        where TOps : struct, IVec<TV> where TV : struct where TR : struct, IRows where TC : struct, IRows
    {
        int vc = TOps.Count;
        TV c00 = TOps.Zero, c01 = TOps.Zero, c10 = TOps.Zero, c11 = TOps.Zero, c20 = TOps.Zero, c21 = TOps.Zero;
        TV c30 = TOps.Zero, c31 = TOps.Zero, c40 = TOps.Zero, c41 = TOps.Zero, c50 = TOps.Zero, c51 = TOps.Zero;
        if (accumulate)
        {
            c00 = TOps.Load(ref tile); if (TC.Value > 1) c01 = TOps.Load(ref Unsafe.Add(ref tile, vc));
            if (TR.Value > 1) { c10 = TOps.Load(ref Unsafe.Add(ref tile, nr)); if (TC.Value > 1) c11 = TOps.Load(ref Unsafe.Add(ref tile, nr + vc)); }
            if (TR.Value > 2) { c20 = TOps.Load(ref Unsafe.Add(ref tile, 2 * nr)); if (TC.Value > 1) c21 = TOps.Load(ref Unsafe.Add(ref tile, 2 * nr + vc)); }
            if (TR.Value > 3) { c30 = TOps.Load(ref Unsafe.Add(ref tile, 3 * nr)); if (TC.Value > 1) c31 = TOps.Load(ref Unsafe.Add(ref tile, 3 * nr + vc)); }
            if (TR.Value > 4) { c40 = TOps.Load(ref Unsafe.Add(ref tile, 4 * nr)); if (TC.Value > 1) c41 = TOps.Load(ref Unsafe.Add(ref tile, 4 * nr + vc)); }
            if (TR.Value > 5) { c50 = TOps.Load(ref Unsafe.Add(ref tile, 5 * nr)); if (TC.Value > 1) c51 = TOps.Load(ref Unsafe.Add(ref tile, 5 * nr + vc)); }
        }
        for (int run = 0; run < runCount; run++)
        {
            ref float a = ref runs == null ? ref a0 : ref Unsafe.Add(ref a0, runs[2 * run]);
            if (runs != null) k = runs[2 * run + 1];
            ref float a1 = ref Unsafe.Add(ref a, TR.Value > 1 ? lda : 0);
            ref float a2 = ref Unsafe.Add(ref a, TR.Value > 2 ? 2 * lda : 0);
            ref float a3 = ref Unsafe.Add(ref a, TR.Value > 3 ? 3 * lda : 0);
            ref float a4 = ref Unsafe.Add(ref a, TR.Value > 4 ? 4 * lda : 0);
            ref float a5 = ref Unsafe.Add(ref a, TR.Value > 5 ? 5 * lda : 0);
            int p = 0;
            if (typeof(TV) == typeof(Vector128<float>) && AdvSimd.Arm64.IsSupported)
            {
                // Four columns of A per row in one register, each used by lane (fmla by element): broadcasting one
                // float per row and step took a load and a dup per row, and the dups share the FP pipes with the
                // FMAs (XNNPACK's and ncnn's aarch64 kernels use the lane form for this reason).
                int step = TC.Value * vc;   // floats of B per step of K
                for (; p + 4 <= k; p += 4)
                {
                    var x0 = Vector128.LoadUnsafe(ref Unsafe.Add(ref a, p));
                    var x1 = TR.Value > 1 ? Vector128.LoadUnsafe(ref Unsafe.Add(ref a1, p)) : x0;
                    var x2 = TR.Value > 2 ? Vector128.LoadUnsafe(ref Unsafe.Add(ref a2, p)) : x0;
                    var x3 = TR.Value > 3 ? Vector128.LoadUnsafe(ref Unsafe.Add(ref a3, p)) : x0;
                    var x4 = TR.Value > 4 ? Vector128.LoadUnsafe(ref Unsafe.Add(ref a4, p)) : x0;
                    var x5 = TR.Value > 5 ? Vector128.LoadUnsafe(ref Unsafe.Add(ref a5, p)) : x0;
                    LaneStep<TV, TR, TC>(ref b, x0, x1, x2, x3, x4, x5, 0, ref c00, ref c01, ref c10, ref c11, ref c20, ref c21, ref c30, ref c31, ref c40, ref c41, ref c50, ref c51);
                    LaneStep<TV, TR, TC>(ref Unsafe.Add(ref b, step), x0, x1, x2, x3, x4, x5, 1, ref c00, ref c01, ref c10, ref c11, ref c20, ref c21, ref c30, ref c31, ref c40, ref c41, ref c50, ref c51);
                    LaneStep<TV, TR, TC>(ref Unsafe.Add(ref b, 2 * step), x0, x1, x2, x3, x4, x5, 2, ref c00, ref c01, ref c10, ref c11, ref c20, ref c21, ref c30, ref c31, ref c40, ref c41, ref c50, ref c51);
                    LaneStep<TV, TR, TC>(ref Unsafe.Add(ref b, 3 * step), x0, x1, x2, x3, x4, x5, 3, ref c00, ref c01, ref c10, ref c11, ref c20, ref c21, ref c30, ref c31, ref c40, ref c41, ref c50, ref c51);
                    b = ref Unsafe.Add(ref b, 4 * step);
                }
            }
            for (; p < k; p++)
            {
                TV b0 = TOps.Load(ref b), b1 = TC.Value > 1 ? TOps.Load(ref Unsafe.Add(ref b, vc)) : b0;
                b = ref Unsafe.Add(ref b, TC.Value * vc);
                TV x = TOps.Broadcast(Unsafe.Add(ref a, p));
                c00 = TOps.Fma(x, b0, c00); if (TC.Value > 1) c01 = TOps.Fma(x, b1, c01);
                if (TR.Value > 1) { x = TOps.Broadcast(Unsafe.Add(ref a1, p)); c10 = TOps.Fma(x, b0, c10); if (TC.Value > 1) c11 = TOps.Fma(x, b1, c11); }
                if (TR.Value > 2) { x = TOps.Broadcast(Unsafe.Add(ref a2, p)); c20 = TOps.Fma(x, b0, c20); if (TC.Value > 1) c21 = TOps.Fma(x, b1, c21); }
                if (TR.Value > 3) { x = TOps.Broadcast(Unsafe.Add(ref a3, p)); c30 = TOps.Fma(x, b0, c30); if (TC.Value > 1) c31 = TOps.Fma(x, b1, c31); }
                if (TR.Value > 4) { x = TOps.Broadcast(Unsafe.Add(ref a4, p)); c40 = TOps.Fma(x, b0, c40); if (TC.Value > 1) c41 = TOps.Fma(x, b1, c41); }
                if (TR.Value > 5) { x = TOps.Broadcast(Unsafe.Add(ref a5, p)); c50 = TOps.Fma(x, b0, c50); if (TC.Value > 1) c51 = TOps.Fma(x, b1, c51); }
            }
        }
        TOps.Store(ref tile, c00); if (TC.Value > 1) TOps.Store(ref Unsafe.Add(ref tile, vc), c01);
        if (TR.Value > 1) { TOps.Store(ref Unsafe.Add(ref tile, nr), c10); if (TC.Value > 1) TOps.Store(ref Unsafe.Add(ref tile, nr + vc), c11); }
        if (TR.Value > 2) { TOps.Store(ref Unsafe.Add(ref tile, 2 * nr), c20); if (TC.Value > 1) TOps.Store(ref Unsafe.Add(ref tile, 2 * nr + vc), c21); }
        if (TR.Value > 3) { TOps.Store(ref Unsafe.Add(ref tile, 3 * nr), c30); if (TC.Value > 1) TOps.Store(ref Unsafe.Add(ref tile, 3 * nr + vc), c31); }
        if (TR.Value > 4) { TOps.Store(ref Unsafe.Add(ref tile, 4 * nr), c40); if (TC.Value > 1) TOps.Store(ref Unsafe.Add(ref tile, 4 * nr + vc), c41); }
        if (TR.Value > 5) { TOps.Store(ref Unsafe.Add(ref tile, 5 * nr), c50); if (TC.Value > 1) TOps.Store(ref Unsafe.Add(ref tile, 5 * nr + vc), c51); }
    }

    /// <summary>One step of K on AdvSimd: the row of B at <paramref name="b"/> times lane <paramref name="lane"/> of each row's x (ARM only).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void LaneStep<TV, TR, TC>(ref float b, Vector128<float> x0, Vector128<float> x1, Vector128<float> x2, Vector128<float> x3,
        Vector128<float> x4, Vector128<float> x5, [System.Diagnostics.CodeAnalysis.ConstantExpected(Min = (byte)0, Max = (byte)3)] byte lane,
        ref TV c00, ref TV c01, ref TV c10, ref TV c11, ref TV c20, ref TV c21, ref TV c30, ref TV c31, ref TV c40, ref TV c41, ref TV c50, ref TV c51)
        where TV : struct where TR : struct, IRows where TC : struct, IRows
    {
        var b0 = Vector128.LoadUnsafe(ref b);
        var b1 = TC.Value > 1 ? Vector128.LoadUnsafe(ref Unsafe.Add(ref b, 4)) : b0;
        c00 = Fmla(c00, b0, x0, lane); if (TC.Value > 1) c01 = Fmla(c01, b1, x0, lane);
        if (TR.Value > 1) { c10 = Fmla(c10, b0, x1, lane); if (TC.Value > 1) c11 = Fmla(c11, b1, x1, lane); }
        if (TR.Value > 2) { c20 = Fmla(c20, b0, x2, lane); if (TC.Value > 1) c21 = Fmla(c21, b1, x2, lane); }
        if (TR.Value > 3) { c30 = Fmla(c30, b0, x3, lane); if (TC.Value > 1) c31 = Fmla(c31, b1, x3, lane); }
        if (TR.Value > 4) { c40 = Fmla(c40, b0, x4, lane); if (TC.Value > 1) c41 = Fmla(c41, b1, x4, lane); }
        if (TR.Value > 5) { c50 = Fmla(c50, b0, x5, lane); if (TC.Value > 1) c51 = Fmla(c51, b1, x5, lane); }
    }

    /// <summary>acc + b·x[lane], one fused fmla by element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static TV Fmla<TV>(TV acc, Vector128<float> b, Vector128<float> x, [System.Diagnostics.CodeAnalysis.ConstantExpected(Min = (byte)0, Max = (byte)3)] byte lane) where TV : struct =>
        Unsafe.BitCast<Vector128<float>, TV>(AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(Unsafe.BitCast<TV, Vector128<float>>(acc), b, x, lane));
}
