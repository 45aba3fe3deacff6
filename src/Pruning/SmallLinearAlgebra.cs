namespace VitSparse.Pruning;

/// <summary>Dense double-precision helpers for the small (head-width-sized) matrices criteria work on.</summary>
static class SmallLinearAlgebra
{
    /// <summary>Upper-triangular R with RᵀR = G + ridge·I (row-major d×d). The ridge keeps a rank-deficient Gram usable.</summary>
    public static double[] CholeskyUpper(double[] g, int d)
    {
        double trace = 0;
        for (int i = 0; i < d; i++) trace += g[i * d + i];
        double ridge = 1e-12 * trace / d + 1e-300;
        var r = new double[d * d];
        for (int j = 0; j < d; j++)
        {
            double s = g[j * d + j] + ridge;
            for (int k = 0; k < j; k++) s -= r[k * d + j] * r[k * d + j];
            double diag = Math.Sqrt(Math.Max(s, ridge));
            r[j * d + j] = diag;
            for (int i = j + 1; i < d; i++)
            {
                double t = g[j * d + i];
                for (int k = 0; k < j; k++) t -= r[k * d + j] * r[k * d + i];
                r[j * d + i] = t / diag;
            }
        }
        return r;
    }

    /// <summary>
    /// One-sided Jacobi SVD of a d×d matrix: M = U·diag(σ)·Vᵀ with σ descending. Returns U and V row-major
    /// (column j is singular vector j). Accurate to working precision, no LAPACK needed.
    /// </summary>
    public static (double[] U, double[] Sigma, double[] V) Svd(double[] m, int d)
    {
        var w = (double[])m.Clone();         // columns converge to σ_j·u_j
        var v = new double[d * d];
        for (int i = 0; i < d; i++) v[i * d + i] = 1;
        for (int sweep = 0; sweep < 60; sweep++)
        {
            bool rotated = false;
            for (int p = 0; p < d - 1; p++)
                for (int q = p + 1; q < d; q++)
                {
                    double alpha = 0, beta = 0, gamma = 0;
                    for (int i = 0; i < d; i++)
                    {
                        double wp = w[i * d + p], wq = w[i * d + q];
                        alpha += wp * wp; beta += wq * wq; gamma += wp * wq;
                    }
                    if (Math.Abs(gamma) <= 1e-15 * Math.Sqrt(alpha * beta) || gamma == 0) continue;
                    rotated = true;
                    double zeta = (beta - alpha) / (2 * gamma);
                    double t = Math.Sign(zeta == 0 ? 1 : zeta) / (Math.Abs(zeta) + Math.Sqrt(1 + zeta * zeta));
                    double c = 1 / Math.Sqrt(1 + t * t), s = c * t;
                    for (int i = 0; i < d; i++)
                    {
                        double wp = w[i * d + p], wq = w[i * d + q];
                        w[i * d + p] = c * wp - s * wq; w[i * d + q] = s * wp + c * wq;
                        double vp = v[i * d + p], vq = v[i * d + q];
                        v[i * d + p] = c * vp - s * vq; v[i * d + q] = s * vp + c * vq;
                    }
                }
            if (!rotated) break;
        }
        var sigma = new double[d];
        for (int j = 0; j < d; j++)
        {
            double n = 0;
            for (int i = 0; i < d; i++) n += w[i * d + j] * w[i * d + j];
            sigma[j] = Math.Sqrt(n);
        }
        var order = Enumerable.Range(0, d).OrderByDescending(j => sigma[j]).ToArray();
        var u = new double[d * d];
        var vs = new double[d * d];
        var ss = new double[d];
        for (int jj = 0; jj < d; jj++)
        {
            int j = order[jj];
            ss[jj] = sigma[j];
            for (int i = 0; i < d; i++)
            {
                u[i * d + jj] = sigma[j] > 0 ? w[i * d + j] / sigma[j] : 0;
                vs[i * d + jj] = v[i * d + j];
            }
        }
        return (u, ss, vs);
    }
}
