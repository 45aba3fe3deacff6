using VitSparse.Runtime;

namespace VitSparse.Pruning;

/// <summary>
/// SNP's Q/K criterion, "preserving attention scores" (methods.md §1.2a). For head h of an image, the
/// pre-softmax scores A = Q·Kᵀ (N×N) are a sum of rank-1 terms q_i·k_iᵀ, one per Q/K pair. Pair i scores
/// ω_i = Σ_{j≤γ} |cos(σ_j u_j v_jᵀ, q_i k_iᵀ)| = Σ_j |u_jᵀq_i|·|v_jᵀk_i| / (‖q_i‖‖k_i‖) over the top γ singular
/// triplets of A, summed over calibration images; pairs aligned with A's dominant directions are kept.
/// A has rank ≤ d (the head's Q/K width), so the SVD is taken of a d×d core rather than of A itself:
/// with Q = Q̂R_q and K = K̂R_k (R from Cholesky of the Gram matrices), A = Q̂(R_q R_kᵀ)K̂ᵀ, and every inner
/// product above reduces to d-dimensional ones. Cost per head and image is O(N·d² + d³), not O(N³).
/// </summary>
public sealed class SnpAttentionScore : IActivationObserver
{
    readonly Runtime.Models.VitConfig _config;
    readonly int _gamma;
    readonly double[][][] _scores; // [block][head][pair]

    /// <summary>Images seen so far.</summary>
    public int Images { get; private set; }

    /// <summary>An observer for a model of <paramref name="config"/>.</summary>
    /// <param name="config">The dense model's architecture.</param>
    /// <param name="gamma">singular components kept; 0 means the documented default, ⌈d/16⌉ per head.</param>
    public SnpAttentionScore(Runtime.Models.VitConfig config, int gamma = 0)
    {
        if (gamma < 0) throw new InputException("--gamma", $"must be positive, got {gamma}");
        _config = config;
        _gamma = gamma;
        _scores = config.Blocks.Select(b => b.QkWidths.Select(w => new double[w]).ToArray()).ToArray();
    }

    /// <summary>
    /// ⌈d/16⌉ (4 for a 64-wide head): of γ ∈ {1, 2, 4, 8, 16, 64}, γ = 4 preserved attention maps best on the
    /// Fashion-MNIST reference model's calibration (training) images at 30/50/70 % of Q/K pairs removed —
    /// an unsupervised choice, made without test labels. Larger γ lets weak singular directions dilute the score.
    /// </summary>
    public static int DefaultGamma(int width) => Math.Max(1, (width + 15) / 16);

    /// <summary>Accumulated Q/K pair scores: [block][head][pair].</summary>
    public float[][][] Scores => _scores.Select(b => b.Select(h => h.Select(x => (float)x).ToArray()).ToArray()).ToArray();

    /// <inheritdoc/>
    public void OnQkv(int block, ReadOnlySpan<float> qkv, int images, int tokens, int rowWidth)
    {
        if (block == 0) Images += images;
        var b = _config.Blocks[block];
        var data = qkv.ToArray();
        Parallel.For(0, b.Heads * images, item =>
        {
            int h = item % b.Heads, img = item / b.Heads;
            var s = HeadScores(data, img * tokens, tokens, rowWidth, b.QkOffset(h), b.QkTotal + b.QkOffset(h), b.QkWidths[h],
                _gamma == 0 ? DefaultGamma(b.QkWidths[h]) : Math.Min(_gamma, b.QkWidths[h]));
            lock (_scores[block][h])
                for (int i = 0; i < s.Length; i++) _scores[block][h][i] += s[i];
        });
    }

    /// <summary>ω for one head of one image. Q rows start at column qOff, K rows at kOff, d wide.</summary>
    internal static double[] HeadScores(float[] qkv, int row0, int n, int ld, int qOff, int kOff, int d, int gamma)
    {
        var gq = new double[d * d];
        var gk = new double[d * d];
        for (int t = 0; t < n; t++)
        {
            int r = (row0 + t) * ld;
            for (int i = 0; i < d; i++)
            {
                double qi = qkv[r + qOff + i], ki = qkv[r + kOff + i];
                for (int j = i; j < d; j++)
                {
                    gq[i * d + j] += qi * qkv[r + qOff + j];
                    gk[i * d + j] += ki * qkv[r + kOff + j];
                }
            }
        }
        for (int i = 0; i < d; i++)
            for (int j = 0; j < i; j++) { gq[i * d + j] = gq[j * d + i]; gk[i * d + j] = gk[j * d + i]; }
        var rq = SmallLinearAlgebra.CholeskyUpper(gq, d);
        var rk = SmallLinearAlgebra.CholeskyUpper(gk, d);
        var core = new double[d * d]; // R_q · R_kᵀ
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++)
            {
                double s = 0;
                for (int k = Math.Max(i, j); k < d; k++) s += rq[i * d + k] * rk[j * d + k];
                core[i * d + j] = s;
            }
        var (u, _, v) = SmallLinearAlgebra.Svd(core, d);
        var scores = new double[d];
        for (int i = 0; i < d; i++)
        {
            double nq = Math.Sqrt(gq[i * d + i]), nk = Math.Sqrt(gk[i * d + i]);
            if (nq == 0 || nk == 0) continue;
            double w = 0;
            for (int j = 0; j < gamma; j++)
            {
                double uq = 0, vk = 0; // u_jᵀ q_i = U[:,j]ᵀ R_q[:,i]
                for (int k = 0; k <= i; k++) { uq += u[k * d + j] * rq[k * d + i]; vk += v[k * d + j] * rk[k * d + i]; }
                w += Math.Abs(uq) * Math.Abs(vk);
            }
            scores[i] = w / (nq * nk);
        }
        return scores;
    }
}
