using System.Numerics;
using VitSparse.Kernels;

namespace VitSparse.Training;

/// <summary>
/// LayerNorm over rows of width e, keeping each row's mean and 1/σ for the backward pass:
/// y = x̂·γ + β with x̂ = (x − μ)·rstd. Backward: dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·γ;
/// dγ = Σ_rows dy·x̂, dβ = Σ_rows dy. Row items for x and dx, column items for dγ and dβ, so each output
/// element has one owner and a fixed summation order.
/// </summary>
public static unsafe class NormGrad
{
    public static void Forward(float* x, int rows, int e, float* gamma, float* beta, float eps, float* y, float* mean, float* rstd, ThreadTeam team) =>
        team.For(rows, new ForwardBody(x, e, gamma, beta, eps, y, mean, rstd));

    /// <summary>dx += LayerNorm backward of dy (dx accumulates: it already holds the residual branch's gradient).</summary>
    public static void Backward(float* dy, float* x, int rows, int e, float* gamma, float* mean, float* rstd, float* dx, float* dGamma, float* dBeta, ThreadTeam team)
    {
        BackwardInput(dy, x, rows, e, gamma, mean, rstd, dx, team);
        BackwardParams(dy, x, rows, e, mean, rstd, dGamma, dBeta, team);
    }

    /// <summary>dx += the input gradient of dy (the first half of <see cref="Backward"/>).</summary>
    public static void BackwardInput(float* dy, float* x, int rows, int e, float* gamma, float* mean, float* rstd, float* dx, ThreadTeam team) =>
        team.For(rows, new InputBody(dy, x, e, gamma, mean, rstd, dx));

    /// <summary>dγ and dβ of dy, overwritten (the second half of <see cref="Backward"/>).</summary>
    public static void BackwardParams(float* dy, float* x, int rows, int e, float* mean, float* rstd, float* dGamma, float* dBeta, ThreadTeam team) =>
        team.For((e + ParamColumns - 1) / ParamColumns, new ParamBody(dy, x, rows, e, mean, rstd, dGamma, dBeta));

    /// <summary>Columns of dγ and dβ per work item: a few cache lines of each row.</summary>
    const int ParamColumns = 32;

    readonly struct ForwardBody(float* x, int e, float* g, float* b, float eps, float* y, float* mean, float* rstd) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            for (int r = start; r < end; r++)
            {
                float* xr = x + (long)r * e, yr = y + (long)r * e;
                float sum = 0;
                for (int i = 0; i < e; i++) sum += xr[i];
                float mu = sum / e, ss = 0;
                for (int i = 0; i < e; i++) { float d = xr[i] - mu; ss += d * d; }
                float rs = 1f / MathF.Sqrt(ss / e + eps);
                for (int i = 0; i < e; i++) yr[i] = (xr[i] - mu) * rs * g[i] + b[i];
                mean[r] = mu;
                rstd[r] = rs;
            }
        }
    }

    readonly struct InputBody(float* dy, float* x, int e, float* gamma, float* mean, float* rstd, float* dx) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            for (int r = start; r < end; r++)
            {
                float* dyr = dy + (long)r * e, xr = x + (long)r * e, dxr = dx + (long)r * e;
                float mu = mean[r], rs = rstd[r], sumG = 0, sumGx = 0;
                for (int i = 0; i < e; i++)
                {
                    float g = dyr[i] * gamma[i];
                    sumG += g;
                    sumGx += g * (xr[i] - mu) * rs;
                }
                float meanG = sumG / e, meanGx = sumGx / e;
                for (int i = 0; i < e; i++)
                    dxr[i] += rs * (dyr[i] * gamma[i] - meanG - (xr[i] - mu) * rs * meanGx);
            }
        }
    }

    /// <summary>
    /// dγ and dβ for a panel of columns, rows in order: vector lanes sum their column with the same operations
    /// in the same order as the scalar tail, so every width gives the same bits.
    /// </summary>
    readonly struct ParamBody(float* dy, float* x, int rows, int e, float* mean, float* rstd, float* dGamma, float* dBeta) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            int vc = Vector<float>.Count;
            for (int item = start; item < end; item++)
            {
                int i = item * ParamColumns, i1 = Math.Min(e, i + ParamColumns);
                for (; i + vc <= i1; i += vc)
                {
                    Vector<float> sg = default, sb = default;
                    for (int r = 0; r < rows; r++)
                    {
                        var d = Vector.Load(dy + (long)r * e + i);
                        sb += d;
                        sg += d * (Vector.Load(x + (long)r * e + i) - new Vector<float>(mean[r])) * new Vector<float>(rstd[r]);
                    }
                    Vector.Store(sg, dGamma + i);
                    Vector.Store(sb, dBeta + i);
                }
                for (; i < i1; i++) Column(i);
            }
        }

        void Column(int i)
        {
            float sg = 0, sb = 0;
            for (int r = 0; r < rows; r++)
            {
                float d = dy[(long)r * e + i];
                sb += d;
                sg += d * (x[(long)r * e + i] - mean[r]) * rstd[r];
            }
            dGamma[i] = sg;
            dBeta[i] = sb;
        }
    }
}
