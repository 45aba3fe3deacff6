using System.Runtime.CompilerServices;

namespace VitSparse.Kernels;

/// <summary>
/// Exact (erf) GELU: gelu(x) = x/2 · erfc(−x/√2). erfc uses the Chebyshev fit from Numerical Recipes
/// (fractional error below 1.2e-7 everywhere), which keeps the relative error small for negative x too,
/// where 1 + erf(x) cancels. The exponent −a² + poly(t) goes to exp as an exact large part plus a small
/// correction (<see cref="FastExp"/>), so large |x| lose nothing to rounding.
/// </summary>
public static class Gelu
{
    const float InvSqrt2 = 0.70710678118654752f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Apply<TOps, TV>(TV x) where TOps : struct, IVec<TV> where TV : struct
    {
        TV y = ErfcAbs<TOps, TV>(x, out _, out _);
        // erfc(−x/√2) = y for x ≤ 0, 2 − y for x > 0.
        TV erfc = TOps.Select(TOps.LessThan(TOps.Zero, x), TOps.Sub(TOps.Broadcast(2f), y), y);
        return TOps.Mul(TOps.Mul(x, TOps.Broadcast(0.5f)), erfc);
    }

    /// <summary>
    /// <see cref="Apply{TOps, TV}"/> for a caller near the JIT's inlining budget (the GEMM's epilogue, which applies it
    /// twice): inlined where the hardware fuses multiply-add, a call of its own elsewhere. Without FMA, Dekker's
    /// product makes GELU longer, the epilogue ran past the budget and the JIT called the vector operations inside
    /// GELU one by one (DeiT-S's fc1 with GELU, one thread, SSE: 11.3 → 8.1 ms); with FMA it fits, and a call would
    /// cost more than it saves (~30 %: the vectors go through memory).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TV ApplyInLargeCaller<TOps, TV>(TV x) where TOps : struct, IVec<TV> where TV : struct =>
        HardwareFma.IsSupported ? Apply<TOps, TV>(x) : ApplyOutOfLine<TOps, TV>(x);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static TV ApplyOutOfLine<TOps, TV>(TV x) where TOps : struct, IVec<TV> where TV : struct => Apply<TOps, TV>(x);

    /// <summary>
    /// erfc(|x|/√2) by the fit, and −x²/2 as an exactly rounded part plus its rounding error (so exp(−x²/2), the
    /// normal density's core, costs the caller one <see cref="FastExp"/>): GELU's forward and its derivative share it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV ErfcAbs<TOps, TV>(TV x, out TV negHalfSquare, out TV negHalfSquareError) where TOps : struct, IVec<TV> where TV : struct
    {
        TV a = TOps.Abs(TOps.Mul(x, TOps.Broadcast(-InvSqrt2)));
        TV t = TOps.Reciprocal(TOps.Fma(a, TOps.Broadcast(0.5f), TOps.Broadcast(1f)));
        TV p = TOps.Broadcast(0.17087277f);
        p = TOps.Fma(p, t, TOps.Broadcast(-0.82215223f));
        p = TOps.Fma(p, t, TOps.Broadcast(1.48851587f));
        p = TOps.Fma(p, t, TOps.Broadcast(-1.13520398f));
        p = TOps.Fma(p, t, TOps.Broadcast(0.27886807f));
        p = TOps.Fma(p, t, TOps.Broadcast(-0.18628806f));
        p = TOps.Fma(p, t, TOps.Broadcast(0.09678418f));
        p = TOps.Fma(p, t, TOps.Broadcast(0.37409196f));
        p = TOps.Fma(p, t, TOps.Broadcast(1.00002368f));
        p = TOps.Fma(p, t, TOps.Broadcast(-1.26551223f));
        // a² = x²/2 from x itself (x/√2 is already rounded, which would cost 1e-5 relative at x = −12);
        // the rounding error of x² is folded into the small exponent. With y = −x/2 (exact), y·x rounds to
        // −fl(x²)/2 and its error, y·x − fl(y·x) = (fl(x²) − x²)/2, is exactly representable.
        TV y = TOps.Mul(x, TOps.Broadcast(-0.5f));
        negHalfSquare = TOps.Mul(y, x);
        negHalfSquareError = ProductError<TOps, TV>(y, x, negHalfSquare);
        return TOps.Mul(t, FastExp.Exp<TOps, TV>(negHalfSquare, TOps.Add(p, negHalfSquareError)));
    }

    /// <summary>
    /// y·x − p for p = fl(y·x), exactly: fma(y, x, −p) where the hardware fuses; elsewhere Dekker's product with
    /// Veltkamp's split of each factor into two 12-bit halves whose products are exact (an unfused multiply-add
    /// would return 0 and cost 4e-6 relative error at x = −12).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static TV ProductError<TOps, TV>(TV y, TV x, TV p) where TOps : struct, IVec<TV> where TV : struct
    {
        if (HardwareFma.IsSupported) return TOps.Fma(y, x, TOps.Mul(p, TOps.Broadcast(-1f)));
        // Veltkamp's split, v = hi + lo with hi = c − (c − v), c = v·(2^12 + 1): hi holds 12 significant bits, so
        // products of halves are exact. Written out here: as a helper returning a pair it was not inlined, and the
        // call put every live vector of the caller on the stack.
        TV split = TOps.Broadcast(4097f);
        TV cy = TOps.Mul(y, split), cx = TOps.Mul(x, split);
        TV yh = TOps.Sub(cy, TOps.Sub(cy, y)), xh = TOps.Sub(cx, TOps.Sub(cx, x));
        TV yl = TOps.Sub(y, yh), xl = TOps.Sub(x, xh);
        TV e = TOps.Sub(TOps.Mul(yh, xh), p);
        e = TOps.Add(e, TOps.Mul(yh, xl));
        e = TOps.Add(e, TOps.Mul(yl, xh));
        return TOps.Add(e, TOps.Mul(yl, xl));
    }

    /// <summary>GELU in place over a span, on the machine's best vector width.</summary>
    public static void InPlace(Span<float> x) => Simd.Dispatch(new InPlaceOp(), x);

    /// <summary>GELU in place over a span of any length (the tail through a zero-padded vector); internal for the tests' widths.</summary>
    internal struct InPlaceOp : ISpanOp
    {
        public void Run<TOps, TV>(Span<float> x) where TOps : struct, IVec<TV> where TV : struct
        {
            int whole = x.Length / TOps.Count * TOps.Count;
            Vectors<TOps, TV>(x[..whole]);
            if (whole < x.Length)
            {
                Span<float> tail = stackalloc float[TOps.Count];
                tail.Clear();
                x[whole..].CopyTo(tail);
                Vectors<TOps, TV>(tail);
                tail[..(x.Length - whole)].CopyTo(x[whole..]);
            }
        }

        /// <summary>
        /// GELU over whole vectors. Not inlined, so the ~50 operations appear once per width: inlined twice (loop and
        /// tail) they outnumbered the locals the JIT tracks, and without FMA (x64 below AVX2) every one went through the stack.
        /// </summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        static void Vectors<TOps, TV>(Span<float> x) where TOps : struct, IVec<TV> where TV : struct
        {
            ref float r = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
            for (int i = 0; i < x.Length; i += TOps.Count)
                TOps.Store(ref Unsafe.Add(ref r, i), Apply<TOps, TV>(TOps.Load(ref Unsafe.Add(ref r, i))));
        }
    }
}
