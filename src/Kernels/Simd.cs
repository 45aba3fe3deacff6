using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace VitSparse.Kernels;

/// <summary>
/// One vector width's operations. Kernels are written once, generic over this interface, and the JIT
/// specialises them per struct, so Vector512 (x64 AVX-512), Vector256 (AVX2) and Vector128 (the width
/// AdvSimd runs on ARM) share one source.
/// </summary>
public interface IVec<TV> where TV : struct
{
    static abstract int Count { get; }
    static abstract TV Zero { get; }
    /// <summary>0, 1, 2, … per lane.</summary>
    static abstract TV Indices { get; }
    static abstract TV Load(ref float src);
    static abstract void Store(ref float dst, TV v);
    static abstract TV Broadcast(float x);
    static abstract TV Fma(TV a, TV b, TV acc);
    static abstract TV Add(TV a, TV b);
    static abstract TV Sub(TV a, TV b);
    static abstract TV Mul(TV a, TV b);
    static abstract TV Max(TV a, TV b);
    /// <summary>
    /// The larger of a and b by the CPU's own instruction (one maxps on x64, where a NaN in either gives b; fmax on
    /// ARM). Max's IEEE rule costs three instructions at 512 bits; running maxima whose NaNs resurface in the
    /// next pass over the same data (softmax) use this one.
    /// </summary>
    static abstract TV MaxNative(TV a, TV b);
    static abstract TV Min(TV a, TV b);
    static abstract TV Abs(TV a);
    static abstract TV Reciprocal(TV a);
    static abstract TV Select(TV mask, TV ifTrue, TV ifFalse);
    static abstract TV LessThan(TV a, TV b);
    /// <summary>v·2^n for integral n with the result a normal float (the exponent is added to v's bits; one vscalefps with AVX-512).</summary>
    static abstract TV ScaleB(TV v, TV n);
    /// <summary>The nearest integer, ties to even (one vrndscaleps, vroundps or frintn).</summary>
    static abstract TV Round(TV v);
    static abstract float Sum(TV v);
    /// <summary>The largest lane, by <see cref="MaxNative"/>'s rule (a NaN lane may or may not show).</summary>
    static abstract float MaxAcross(TV v);
}

public struct V512 : IVec<Vector512<float>>
{
    public static int Count => Vector512<float>.Count;
    public static Vector512<float> Zero => Vector512<float>.Zero;
    public static Vector512<float> Indices => Vector512<float>.Indices;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(ref float src) => Vector512.LoadUnsafe(ref src);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(ref float dst, Vector512<float> v) => v.StoreUnsafe(ref dst);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Broadcast(float x) => Vector512.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) =>
        HardwareFma.IsSupported ? Vector512.FusedMultiplyAdd(a, b, c) : a * b + c;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sub(Vector512<float> a, Vector512<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Mul(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> MaxNative(Vector512<float> a, Vector512<float> b) => Vector512.MaxNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Min(Vector512<float> a, Vector512<float> b) => Vector512.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Abs(Vector512<float> a) => Vector512.Abs(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Reciprocal(Vector512<float> a) => Vector512<float>.One / a;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Select(Vector512<float> m, Vector512<float> t, Vector512<float> f) => Vector512.ConditionalSelect(m, t, f);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> LessThan(Vector512<float> a, Vector512<float> b) => Vector512.LessThan(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> ScaleB(Vector512<float> v, Vector512<float> n) => Avx512F.IsSupported
        ? Avx512F.Scale(v, n)
        : (Vector512.AsInt32(v) + Vector512.ShiftLeft(Vector512.ConvertToInt32Native(n), 23)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Round(Vector512<float> v) => Vector512.Round(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector512<float> v) => V256.Sum(v.GetLower() + v.GetUpper());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MaxAcross(Vector512<float> v) => V256.MaxAcross(Vector256.MaxNative(v.GetLower(), v.GetUpper()));
}

public struct V256 : IVec<Vector256<float>>
{
    public static int Count => Vector256<float>.Count;
    public static Vector256<float> Zero => Vector256<float>.Zero;
    public static Vector256<float> Indices => Vector256<float>.Indices;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(ref float src) => Vector256.LoadUnsafe(ref src);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(ref float dst, Vector256<float> v) => v.StoreUnsafe(ref dst);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Broadcast(float x) => Vector256.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        HardwareFma.IsSupported ? Vector256.FusedMultiplyAdd(a, b, c) : a * b + c;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sub(Vector256<float> a, Vector256<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Mul(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> MaxNative(Vector256<float> a, Vector256<float> b) => Vector256.MaxNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Min(Vector256<float> a, Vector256<float> b) => Vector256.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Abs(Vector256<float> a) => Vector256.Abs(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Reciprocal(Vector256<float> a) => Vector256<float>.One / a;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Select(Vector256<float> m, Vector256<float> t, Vector256<float> f) => Vector256.ConditionalSelect(m, t, f);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> LessThan(Vector256<float> a, Vector256<float> b) => Vector256.LessThan(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> ScaleB(Vector256<float> v, Vector256<float> n) =>
        (Vector256.AsInt32(v) + Vector256.ShiftLeft(Vector256.ConvertToInt32Native(n), 23)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Round(Vector256<float> v) => Vector256.Round(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector256<float> v) => V128.Sum(v.GetLower() + v.GetUpper());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MaxAcross(Vector256<float> v) => V128.MaxAcross(Vector128.MaxNative(v.GetLower(), v.GetUpper()));
}

public struct V128 : IVec<Vector128<float>>
{
    public static int Count => Vector128<float>.Count;
    public static Vector128<float> Zero => Vector128<float>.Zero;
    public static Vector128<float> Indices => Vector128<float>.Indices;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(ref float src) => Vector128.LoadUnsafe(ref src);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(ref float dst, Vector128<float> v) => v.StoreUnsafe(ref dst);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Broadcast(float x) => Vector128.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Fma(Vector128<float> a, Vector128<float> b, Vector128<float> c) =>
        HardwareFma.IsSupported ? Vector128.FusedMultiplyAdd(a, b, c) : a * b + c;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Sub(Vector128<float> a, Vector128<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Mul(Vector128<float> a, Vector128<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) => Vector128.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> MaxNative(Vector128<float> a, Vector128<float> b) => Vector128.MaxNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Min(Vector128<float> a, Vector128<float> b) => Vector128.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Abs(Vector128<float> a) => Vector128.Abs(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Reciprocal(Vector128<float> a) => Vector128<float>.One / a;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Select(Vector128<float> m, Vector128<float> t, Vector128<float> f) => Vector128.ConditionalSelect(m, t, f);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> LessThan(Vector128<float> a, Vector128<float> b) => Vector128.LessThan(a, b);
    // Fixed pairwise order so a sum is the same on every width path that reduces through here.
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> ScaleB(Vector128<float> v, Vector128<float> n) =>
        (Vector128.AsInt32(v) + Vector128.ShiftLeft(Vector128.ConvertToInt32Native(n), 23)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Round(Vector128<float> v) => Vector128.Round(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector128<float> v) => (v.GetElement(0) + v.GetElement(2)) + (v.GetElement(1) + v.GetElement(3));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MaxAcross(Vector128<float> v) => float.MaxNative(float.MaxNative(v.GetElement(0), v.GetElement(1)), float.MaxNative(v.GetElement(2), v.GetElement(3)));
}

/// <summary>
/// Whether this process's code may fuse multiply-add in hardware: x64 FMA3 (AVX2-class CPUs; also what an AOT
/// build's instruction-set level promises) or ARM AdvSimd. Where it is false, Vector*.FusedMultiplyAdd would be
/// emulated in software, one exact fused operation per lane, tens of times slower (a baseline x64 NativeAOT
/// build ran 30× slower than the JIT); the kernels then multiply and add separately, which rounds twice. A JIT
/// (or AOT) constant, so each kernel compiles to one of the two forms and every width in one process agrees.
/// </summary>
public static class HardwareFma
{
    /// <remarks>
    /// `|`, not `||`: the short-circuit form is a branch inside the inlined getter, so the JIT did not know the value
    /// while importing a caller, imported the software FusedMultiplyAdd call of the dead branch, and kept every vector
    /// that reached it on the stack. Without FMA that put the whole GEMM register tile in memory (11 → 36 GFLOP/s).
    /// </remarks>
    public static bool IsSupported
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => System.Runtime.Intrinsics.X86.Fma.IsSupported | System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported;
    }

    /// <summary>a·b + c, fused where <see cref="IsSupported"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MultiplyAdd(float a, float b, float c) => IsSupported ? MathF.FusedMultiplyAdd(a, b, c) : a * b + c;
}

/// <summary>The vector width the kernels use on this machine, decided once at start-up.</summary>
public enum SimdWidth { Scalar = 0, V128 = 128, V256 = 256, V512 = 512 }

public static class Isa
{
    public static SimdWidth Best { get; } =
        Vector512.IsHardwareAccelerated ? SimdWidth.V512 :
        Vector256.IsHardwareAccelerated ? SimdWidth.V256 :
        Vector128.IsHardwareAccelerated ? SimdWidth.V128 : SimdWidth.Scalar;

    /// <summary>
    /// True on AMD family 0x19 with AVX-512 (Zen 4), which executes a 512-bit FMA as two 256-bit halves: 256-bit
    /// code reaches the same FLOP rate there (measured: `bench kernels` prints both peaks), so a kernel that tiles
    /// better at 256 bits loses nothing by choosing it. A CPUID rule, not a timing, so the choice (and the
    /// result's bits) is the same in every run on the machine.
    /// </summary>
    public static bool Fma512IsHalfRate { get; } = DetectFma512IsHalfRate();

    static bool DetectFma512IsHalfRate()
    {
        if (!System.Runtime.Intrinsics.X86.X86Base.IsSupported || !Vector512.IsHardwareAccelerated) return false;
        var (_, ebx, ecx, edx) = System.Runtime.Intrinsics.X86.X86Base.CpuId(0, 0);
        bool amd = ebx == 0x68747541 && edx == 0x69746e65 && ecx == 0x444d4163;  // "AuthenticAMD"
        int eax = System.Runtime.Intrinsics.X86.X86Base.CpuId(1, 0).Eax;
        int family = (eax >> 8) & 0xF;
        if (family == 0xF) family += (eax >> 20) & 0xFF;
        return amd && family == 0x19;
    }

    public static int LanesOf(SimdWidth w) => w switch { SimdWidth.V512 => 16, SimdWidth.V256 => 8, _ => 4 };

    public static string Describe() => Best switch
    {
        SimdWidth.V512 => "Vector512 (AVX-512)",
        SimdWidth.V256 => "Vector256 (AVX2)",
        SimdWidth.V128 => System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? "Vector128 (AdvSimd)" : "Vector128 (SSE)",
        _ => "scalar (no SIMD)",
    };
}

/// <summary>An operation over one span, run on the machine's best vector width by <see cref="Simd.Dispatch"/>.</summary>
public interface ISpanOp
{
    void Run<TOps, TV>(Span<float> x) where TOps : struct, IVec<TV> where TV : struct;
}

public static class Simd
{
    public static void Dispatch<TOp>(TOp op, Span<float> x, SimdWidth width = 0) where TOp : struct, ISpanOp
    {
        switch (width == 0 ? Isa.Best : width)
        {
            case SimdWidth.V512: op.Run<V512, System.Runtime.Intrinsics.Vector512<float>>(x); break;
            case SimdWidth.V256: op.Run<V256, System.Runtime.Intrinsics.Vector256<float>>(x); break;
            default: op.Run<V128, System.Runtime.Intrinsics.Vector128<float>>(x); break;
        }
    }
}
