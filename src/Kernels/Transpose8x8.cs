using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace VitSparse.Kernels;

/// <summary>
/// 8×8 float transposes with AVX shuffles (24 shuffles for 64 elements), for the feature-major kernels'
/// layout changes: X → Xᵀ panels and Yᵀ tiles → Y. Element by element these were a strided scalar load and
/// a store per float, about as much time as the whole kernel at 90 % sparsity. Callers fall back to their
/// scalar loops where <see cref="IsSupported"/> is false and for edges narrower than 8.
/// </summary>
internal static unsafe class Transpose8x8
{
    public static bool IsSupported => Avx.IsSupported;

    /// <summary>dst row i (stride dstStride) = column i of the 8×8 block at src (stride srcStride); adds to dst instead when <paramref name="accumulate"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Block(float* src, nint srcStride, float* dst, nint dstStride, bool accumulate = false)
    {
        Vector256<float> r0 = Avx.LoadVector256(src), r1 = Avx.LoadVector256(src + srcStride);
        Vector256<float> r2 = Avx.LoadVector256(src + 2 * srcStride), r3 = Avx.LoadVector256(src + 3 * srcStride);
        Vector256<float> r4 = Avx.LoadVector256(src + 4 * srcStride), r5 = Avx.LoadVector256(src + 5 * srcStride);
        Vector256<float> r6 = Avx.LoadVector256(src + 6 * srcStride), r7 = Avx.LoadVector256(src + 7 * srcStride);
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1), t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5), t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE), u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE), u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        Put(dst, Avx.Permute2x128(u0, u4, 0x20), accumulate);
        Put(dst + dstStride, Avx.Permute2x128(u1, u5, 0x20), accumulate);
        Put(dst + 2 * dstStride, Avx.Permute2x128(u2, u6, 0x20), accumulate);
        Put(dst + 3 * dstStride, Avx.Permute2x128(u3, u7, 0x20), accumulate);
        Put(dst + 4 * dstStride, Avx.Permute2x128(u0, u4, 0x31), accumulate);
        Put(dst + 5 * dstStride, Avx.Permute2x128(u1, u5, 0x31), accumulate);
        Put(dst + 6 * dstStride, Avx.Permute2x128(u2, u6, 0x31), accumulate);
        Put(dst + 7 * dstStride, Avx.Permute2x128(u3, u7, 0x31), accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Put(float* dst, Vector256<float> v, bool accumulate)
    {
        if (accumulate) v = Avx.Add(Avx.LoadVector256(dst), v);
        Avx.Store(dst, v);
    }
}
