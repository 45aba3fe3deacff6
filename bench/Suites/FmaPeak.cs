using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using VitSparse.Kernels;

namespace VitSparse.Bench.Suites;

/// <summary>
/// The machine's single-thread FMA peak per vector width, from a loop of independent FMAs on registers
/// only (12 chains, more than latency × ports), best of several tries: the ceiling kernels are judged against.
/// </summary>
public static class FmaPeak
{
    const int Chains = 12;

    public static double Gflops(SimdWidth width)
    {
        double best = 0;
        for (int attempt = 0; attempt < 5; attempt++)
        {
            long iters = 20_000_000;
            Run(width, 1000);
            long t0 = Stopwatch.GetTimestamp();
            Run(width, iters);
            double s = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            best = Math.Max(best, iters * Chains * 2.0 * Isa.LanesOf(width) / s / 1e9);
        }
        return best;
    }

    static float Run(SimdWidth w, long iters) => w switch
    {
        SimdWidth.V512 => Loop<V512, Vector512<float>>(iters),
        SimdWidth.V256 => Loop<V256, Vector256<float>>(iters),
        _ => Loop<V128, Vector128<float>>(iters),
    };

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static float Loop<TOps, TV>(long iters) where TOps : struct, IVec<TV> where TV : struct
    {
        TV a0 = TOps.Broadcast(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        TV m = TOps.Broadcast(0.9999999f), c = TOps.Broadcast(1e-7f);
        for (long i = 0; i < iters; i++)
        {
            a0 = TOps.Fma(a0, m, c); a1 = TOps.Fma(a1, m, c); a2 = TOps.Fma(a2, m, c); a3 = TOps.Fma(a3, m, c);
            a4 = TOps.Fma(a4, m, c); a5 = TOps.Fma(a5, m, c); a6 = TOps.Fma(a6, m, c); a7 = TOps.Fma(a7, m, c);
            a8 = TOps.Fma(a8, m, c); a9 = TOps.Fma(a9, m, c); a10 = TOps.Fma(a10, m, c); a11 = TOps.Fma(a11, m, c);
        }
        TV s = TOps.Add(TOps.Add(TOps.Add(a0, a1), TOps.Add(a2, a3)), TOps.Add(TOps.Add(a4, a5), TOps.Add(a6, a7)));
        return TOps.Sum(TOps.Add(s, TOps.Add(TOps.Add(a8, a9), TOps.Add(a10, a11))));
    }
}
