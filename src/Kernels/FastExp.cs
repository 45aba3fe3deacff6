using System.Runtime.CompilerServices;

namespace VitSparse.Kernels;

/// <summary>
/// exp for the kernels, written once for every vector width. <see cref="Exp{TOps, TV}(TV)"/> (GELU and training):
/// Cody–Waite reduction by ln 2 and Cephes' degree-6 polynomial (relative error ≈ 1e-7 over the reduced range);
/// the split form takes the argument as an exact large part plus a small correction, so a large exponent loses
/// nothing to rounding; arguments below −86.5 give 0 (the true value is below 3e-38).
/// <see cref="Exp2{TOps, TV}(TV)"/> is the softmax's cheaper 2^t.
/// </summary>
public static class FastExp
{
    const float C1 = 0.693359375f;          // ln 2 high part: 9 significant bits, so n·C1 is exact
    const float C2 = -2.12194440e-4f;       // ln 2 − C1
    const float RoundMagic = 12582912f;     // 1.5·2^23: adding and subtracting rounds to an integer
    const float Lowest = -86.5f;      // keeps 2^n normal
    const float Lowest2 = -125f;      // 2^f·2^n normal for f ≥ −½
    public const float Log2E = 1.44269504088896341f;

    /// <summary>
    /// 2^t for softmax, where t = (score − max)·log2 e ≤ 0 comes out of the caller's one FMA (scale and log2 e
    /// folded into one factor). t is split by one rounding instruction, Cephes' exp2f polynomial runs on [−½, ½]
    /// (relative error ≈ 1e-7 in float), and the exponent goes in by vscalefps with AVX-512 (else added to the bits):
    /// 10 operations at 512 bits, 12 at the narrower widths, against <see cref="Exp{TOps, TV}(TV)"/>'s 19–21. Below −125 it gives
    /// 2^−125 instead of the true value: beside the row's largest term, 1, either weighs under 1e-37.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Exp2<TOps, TV>(TV t) where TOps : struct, IVec<TV> where TV : struct
    {
        // maxps with the constant first returns t itself when t is NaN, so a NaN t stays NaN. (.NET's IEEE Max
        // is vrangeps and two vfixupimmps at 512 bits, even against a constant.)
        t = TOps.MaxNative(TOps.Broadcast(Lowest2), t);
        TV n = TOps.Round(t);
        TV f = TOps.Sub(t, n);
        TV p = TOps.Broadcast(1.535336188319500e-4f);
        p = TOps.Fma(p, f, TOps.Broadcast(1.339887440266574e-3f));
        p = TOps.Fma(p, f, TOps.Broadcast(9.618437357674640e-3f));
        p = TOps.Fma(p, f, TOps.Broadcast(5.550332471162809e-2f));
        p = TOps.Fma(p, f, TOps.Broadcast(2.402264791363012e-1f));
        p = TOps.Fma(p, f, TOps.Broadcast(6.931472028550421e-1f));
        p = TOps.Fma(p, f, TOps.Broadcast(1f));
        return TOps.ScaleB(p, n);
    }

    /// <summary>exp(v) for v ≤ 88.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Exp<TOps, TV>(TV v) where TOps : struct, IVec<TV> where TV : struct => Exp<TOps, TV>(v, TOps.Zero);

    /// <summary>exp(hi + lo), where hi may be large and exact and lo is a small correction.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Exp<TOps, TV>(TV hi, TV lo) where TOps : struct, IVec<TV> where TV : struct
    {
        TV v = TOps.Add(hi, lo);
        TV magic = TOps.Broadcast(RoundMagic);
        // One maxps, as in Exp2.
        TV n = TOps.Sub(TOps.Fma(TOps.MaxNative(TOps.Broadcast(Lowest), v), TOps.Broadcast(Log2E), magic), magic);
        TV r = TOps.Fma(n, TOps.Broadcast(-C1), hi);
        r = TOps.Add(TOps.Fma(n, TOps.Broadcast(-C2), r), lo);
        TV p = TOps.Broadcast(1.9875691500e-4f);
        p = TOps.Fma(p, r, TOps.Broadcast(1.3981999507e-3f));
        p = TOps.Fma(p, r, TOps.Broadcast(8.3334519073e-3f));
        p = TOps.Fma(p, r, TOps.Broadcast(4.1665795894e-2f));
        p = TOps.Fma(p, r, TOps.Broadcast(1.6666665459e-1f));
        p = TOps.Fma(p, r, TOps.Broadcast(5.0000001201e-1f));
        TV e = TOps.Add(TOps.Fma(p, TOps.Mul(r, r), r), TOps.Broadcast(1f));
        TV scaled = TOps.ScaleB(e, n);
        return TOps.Select(TOps.LessThan(v, TOps.Broadcast(Lowest)), TOps.Zero, scaled);
    }
}
