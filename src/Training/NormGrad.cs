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
        team.For(e, new ParamBody(dy, x, rows, e, mean, rstd, dGamma, dBeta));

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

    readonly struct ParamBody(float* dy, float* x, int rows, int e, float* mean, float* rstd, float* dGamma, float* dBeta) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            for (int i = start; i < end; i++)
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
}

/// <summary>Exact-erf GELU and its derivative gelu'(u) = Φ(u) + u·φ(u).</summary>
public static unsafe class GeluGrad
{
    /// <summary>g = gelu(u) with the inference kernel's GELU, so a trained model runs as it was trained.</summary>
    public static void Forward(float* u, float* g, long count)
    {
        var src = new ReadOnlySpan<float>(u, checked((int)count));
        var dst = new Span<float>(g, checked((int)count));
        src.CopyTo(dst);
        Gelu.InPlace(dst);
    }

    /// <summary>du = dg·gelu'(u), rows as work items.</summary>
    public static void Backward(float* u, float* dg, float* du, int rows, int width, ThreadTeam team) =>
        team.For(rows, new BackwardBody(u, dg, du, width));

    readonly struct BackwardBody(float* u, float* dg, float* du, int width) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            for (long i = (long)start * width; i < (long)end * width; i++) du[i] = dg[i] * (float)Derivative(u[i]);
        }
    }

    const double InvSqrt2 = 0.70710678118654752440, InvSqrt2Pi = 0.39894228040143267794;

    public static double Derivative(double u) => 0.5 * Erfc(-u * InvSqrt2) + u * InvSqrt2Pi * Math.Exp(-0.5 * u * u);

    /// <summary>erfc by the Chebyshev fit of Numerical Recipes (relative error below 1.2e-7), in double.</summary>
    public static double Erfc(double x)
    {
        double z = Math.Abs(x), t = 1 / (1 + 0.5 * z);
        double r = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
            t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2 - r;
    }
}
