using System.Runtime.CompilerServices;
using VitSparse.Kernels;

namespace VitSparse.Training;

/// <summary>
/// Exact-erf GELU for training and its derivative gelu'(u) = Φ(u) + u·φ(u), vectorised on the machine's best
/// width. Φ(u) = erfc(−u/√2)/2 uses the same Chebyshev fit of erfc as the inference kernel (<see cref="Gelu"/>):
/// erfc(a) = t·exp(−a² + poly(t)), a = |u|/√2, with −a² = −u²/2 carried exactly as a large part and a small
/// correction into <see cref="FastExp"/>; φ(u) = exp(−u²/2)/√(2π) shares that split. Rows are work items and
/// each element is computed alone, so results do not depend on the thread count.
/// </summary>
public static unsafe class GeluGrad
{
    /// <summary>g = gelu(u) with the inference kernel's GELU, so a trained model runs as it was trained; rows of <paramref name="width"/> as work items.</summary>
    public static void Forward(float* u, float* g, int rows, int width, ThreadTeam team) =>
        team.For(rows, new ForwardBody(u, g, width));

    /// <summary>du = dg·gelu'(u), rows as work items.</summary>
    public static void Backward(float* u, float* dg, float* du, int rows, int width, ThreadTeam team) =>
        team.For(rows, new BackwardBody(u, dg, du, width, Isa.Best));

    readonly struct ForwardBody(float* u, float* g, int width) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            long from = (long)start * width;
            int count = checked((int)((long)(end - start) * width));
            var dst = new Span<float>(g + from, count);
            new ReadOnlySpan<float>(u + from, count).CopyTo(dst);
            Gelu.InPlace(dst);
        }
    }

    readonly struct BackwardBody(float* u, float* dg, float* du, int width, SimdWidth simd) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            long from = (long)start * width, count = (long)(end - start) * width;
            switch (simd)
            {
                case SimdWidth.V512: Span<V512, System.Runtime.Intrinsics.Vector512<float>>(u + from, dg + from, du + from, count); break;
                case SimdWidth.V256: Span<V256, System.Runtime.Intrinsics.Vector256<float>>(u + from, dg + from, du + from, count); break;
                default: Span<V128, System.Runtime.Intrinsics.Vector128<float>>(u + from, dg + from, du + from, count); break;
            }
        }
    }

    /// <summary>du[i] = dg[i]·gelu'(u[i]) over <paramref name="count"/> elements at one vector width (the tail padded to a whole vector).</summary>
    static void Span<TOps, TV>(float* u, float* dg, float* du, long count) where TOps : struct, IVec<TV> where TV : struct
    {
        long i = 0;
        for (; i <= count - TOps.Count; i += TOps.Count)
            TOps.Store(ref du[i], TOps.Mul(TOps.Load(ref dg[i]), Derivative<TOps, TV>(TOps.Load(ref u[i]))));
        if (i < count)
        {
            int n = (int)(count - i);
            float* tu = stackalloc float[TOps.Count], tg = stackalloc float[TOps.Count];
            for (int j = 0; j < TOps.Count; j++) { tu[j] = j < n ? u[i + j] : 0; tg[j] = j < n ? dg[i + j] : 0; }
            TOps.Store(ref tg[0], TOps.Mul(TOps.Load(ref tg[0]), Derivative<TOps, TV>(TOps.Load(ref tu[0]))));
            for (int j = 0; j < n; j++) du[i + j] = tg[j];
        }
    }

    /// <summary>gelu'(u) = Φ(u) + u·φ(u) at one vector width.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Derivative<TOps, TV>(TV u) where TOps : struct, IVec<TV> where TV : struct
    {
        const float InvSqrt2Pi = 0.39894228040143267794f;
        TV erfcA = Gelu.ErfcAbs<TOps, TV>(u, out TV negA2, out TV negErr);
        // Φ(u) = erfc(−u/√2)/2: erfc(a)/2 for u ≤ 0, 1 − erfc(a)/2 for u > 0.
        TV halfErfc = TOps.Mul(erfcA, TOps.Broadcast(0.5f));
        TV phiCdf = TOps.Select(TOps.LessThan(TOps.Zero, u), TOps.Sub(TOps.Broadcast(1f), halfErfc), halfErfc);
        TV density = TOps.Mul(FastExp.Exp<TOps, TV>(negA2, negErr), TOps.Broadcast(InvSqrt2Pi));
        return TOps.Fma(u, density, phiCdf);
    }

    const double InvSqrt2D = 0.70710678118654752440, InvSqrt2PiD = 0.39894228040143267794;

    /// <summary>gelu'(u) in double (the reference the vector kernel is tested against).</summary>
    public static double Derivative(double u) => 0.5 * Erfc(-u * InvSqrt2D) + u * InvSqrt2PiD * Math.Exp(-0.5 * u * u);

    /// <summary>erfc by the Chebyshev fit of Numerical Recipes (relative error below 1.2e-7), in double.</summary>
    public static double Erfc(double x)
    {
        double z = Math.Abs(x), t = 1 / (1 + 0.5 * z);
        double r = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
            t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2 - r;
    }
}
