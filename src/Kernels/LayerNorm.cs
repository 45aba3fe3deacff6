using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace VitSparse.Kernels;

/// <summary>
/// Row-wise LayerNorm: y = (x − mean)/√(var + eps)·γ + β, two-pass, one row per work item, in chunks of about
/// 8K floats on the team. Even a ViT-S activation (197 rows of 384, ~16 µs on one core) goes to the team:
/// its rows were just written by both cores (each GEMM splits its output columns between them), so on the
/// caller alone half of every row is a cross-core read, which on this 2-vCPU Zen 4 cost 27 µs per call in the
/// fast state and 130 µs when the vCPUs sit on two CCDs; two cores pull those lines in parallel (deit_s:
/// LayerNorm 0.67 → 0.39 ms per image, 3.2 → 1.9 ms in the slow state). A worker descheduled by a busy
/// neighbour costs nothing: the caller claims its chunks.
/// </summary>
public static class LayerNorm
{
    public static void Forward(ReadOnlySpan<float> x, int rows, int width, int ldx, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta,
        float eps, Span<float> y, int ldy, ThreadTeam team, SimdWidth simd = 0)
    {
        if (gamma.Length != width || beta.Length != width)
            throw new ArgumentException($"LayerNorm parameters have {gamma.Length}/{beta.Length} elements, expected {width}");
        if (rows <= 0) return;
        if (x.Length < (long)(rows - 1) * ldx + width || y.Length < (long)(rows - 1) * ldy + width)
            throw new ArgumentException($"LayerNorm buffers too small for {rows} rows of {width}");
        unsafe
        {
            fixed (float* px = x) fixed (float* py = y) fixed (float* pg = gamma) fixed (float* pb = beta)
            {
                var body = new Body(px, ldx, py, ldy, pg, pb, width, eps, simd == 0 ? Isa.Best : simd);
                team.For(rows, body, grain: Math.Max(1, 8192 / width));
            }
        }
    }

    unsafe readonly struct Body(float* x, int ldx, float* y, int ldy, float* g, float* b, int width, float eps, SimdWidth simd) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            for (int r = start; r < end; r++)
            {
                switch (simd)
                {
                    case SimdWidth.V512: Row<V512, Vector512<float>>(x + (long)r * ldx, y + (long)r * ldy); break;
                    case SimdWidth.V256: Row<V256, Vector256<float>>(x + (long)r * ldx, y + (long)r * ldy); break;
                    default: Row<V128, Vector128<float>>(x + (long)r * ldx, y + (long)r * ldy); break;
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Row<TOps, TV>(float* xr, float* yr) where TOps : struct, IVec<TV> where TV : struct
        {
            // Four accumulators per pass: a 384-wide row is 24 vectors at 512 bits, and one chain of dependent
            // adds would wait 24 add latencies per pass; four chains wait 6 (18.8 → 15.7 µs for DeiT-S's 197 rows).
            int vc = TOps.Count, i = 0;
            TV a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
            for (; i <= width - 4 * vc; i += 4 * vc)
            {
                a0 = TOps.Add(a0, TOps.Load(ref xr[i]));
                a1 = TOps.Add(a1, TOps.Load(ref xr[i + vc]));
                a2 = TOps.Add(a2, TOps.Load(ref xr[i + 2 * vc]));
                a3 = TOps.Add(a3, TOps.Load(ref xr[i + 3 * vc]));
            }
            for (; i <= width - vc; i += vc) a0 = TOps.Add(a0, TOps.Load(ref xr[i]));
            float sum = TOps.Sum(TOps.Add(TOps.Add(a0, a1), TOps.Add(a2, a3)));
            for (; i < width; i++) sum += xr[i];
            float mean = sum / width;
            TV vm = TOps.Broadcast(mean);
            a0 = a1 = a2 = a3 = TOps.Zero;
            for (i = 0; i <= width - 4 * vc; i += 4 * vc)
            {
                TV d0 = TOps.Sub(TOps.Load(ref xr[i]), vm), d1 = TOps.Sub(TOps.Load(ref xr[i + vc]), vm);
                TV d2 = TOps.Sub(TOps.Load(ref xr[i + 2 * vc]), vm), d3 = TOps.Sub(TOps.Load(ref xr[i + 3 * vc]), vm);
                a0 = TOps.Fma(d0, d0, a0);
                a1 = TOps.Fma(d1, d1, a1);
                a2 = TOps.Fma(d2, d2, a2);
                a3 = TOps.Fma(d3, d3, a3);
            }
            for (; i <= width - vc; i += vc)
            {
                TV d = TOps.Sub(TOps.Load(ref xr[i]), vm);
                a0 = TOps.Fma(d, d, a0);
            }
            float ss = TOps.Sum(TOps.Add(TOps.Add(a0, a1), TOps.Add(a2, a3)));
            for (; i < width; i++) { float d = xr[i] - mean; ss += d * d; }
            float rstd = 1f / MathF.Sqrt(ss / width + eps);
            TV vr = TOps.Broadcast(rstd);
            for (i = 0; i <= width - vc; i += vc)
            {
                TV n = TOps.Mul(TOps.Sub(TOps.Load(ref xr[i]), vm), vr);
                TOps.Store(ref yr[i], TOps.Fma(n, TOps.Load(ref g[i]), TOps.Load(ref b[i])));
            }
            for (; i < width; i++) yr[i] = (xr[i] - mean) * rstd * g[i] + b[i];
        }
    }
}
