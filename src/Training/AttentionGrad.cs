using VitSparse.Kernels;

namespace VitSparse.Training;

/// <summary>
/// Ragged multi-head softmax attention over fused QKV rows [q heads | k heads | v heads] (head h has its own
/// Q/K width and V width), with the kept scale: S = scale·Q_h·K_hᵀ, P = softmax(S), O_h = P·V_h.
/// Backward: dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − rowsum(P∘dP)), dQ = scale·dS·K, dK = scale·dSᵀ·Q.
/// One work item is one (image, head): it owns that head's columns of O and of dQKV, and runs its rows in
/// order, so results do not depend on the thread count. P is kept from the forward pass.
/// </summary>
public sealed unsafe class AttentionGrad
{
    readonly int _tokens, _heads, _rowWidth, _qkTotal, _vTotal;
    readonly int[] _qk, _v, _qOff, _vOff;
    readonly float _scale;
    readonly float[][] _rowScratch;

    public AttentionGrad(int tokens, IReadOnlyList<int> qkWidths, IReadOnlyList<int> vWidths, float scale, int threads)
    {
        _tokens = tokens;
        _heads = qkWidths.Count;
        _qk = qkWidths.ToArray();
        _v = vWidths.ToArray();
        _qOff = new int[_heads];
        _vOff = new int[_heads];
        for (int h = 1; h < _heads; h++) { _qOff[h] = _qOff[h - 1] + _qk[h - 1]; _vOff[h] = _vOff[h - 1] + _v[h - 1]; }
        _qkTotal = _qk.Sum();
        _vTotal = _v.Sum();
        _rowWidth = 2 * _qkTotal + _vTotal;
        _scale = scale;
        _rowScratch = Enumerable.Range(0, threads).Select(_ => GC.AllocateArray<float>(tokens, pinned: true)).ToArray();
    }

    /// <summary>Floats of P for a batch: one [tokens, tokens] map per image and head.</summary>
    public long ProbabilityFloats(int batch) => (long)batch * _heads * _tokens * _tokens;

    /// <summary>qkv [batch·tokens, rowWidth] → o [batch·tokens, Σv], keeping P.</summary>
    public void Forward(float* qkv, int batch, float* p, float* o, ThreadTeam team) =>
        team.For(batch * _heads, new ForwardBody(this, qkv, p, o));

    /// <summary>dO [batch·tokens, Σv] → dQKV [batch·tokens, rowWidth] (overwritten).</summary>
    public void Backward(float* qkv, float* p, float* dO, int batch, float* dQkv, ThreadTeam team)
    {
        new Span<float>(dQkv, checked((int)((long)batch * _tokens * _rowWidth))).Clear();
        team.For(batch * _heads, new BackwardBody(this, qkv, p, dO, dQkv));
    }

    readonly struct ForwardBody(AttentionGrad a, float* qkv, float* p, float* o) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            int t = a._tokens, rw = a._rowWidth;
            for (int item = start; item < end; item++)
            {
                int b = item / a._heads, h = item % a._heads, dq = a._qk[h], dv = a._v[h];
                float* rows = qkv + (long)b * t * rw;
                float* q = rows + a._qOff[h], k = rows + a._qkTotal + a._qOff[h], v = rows + 2 * a._qkTotal + a._vOff[h];
                float* map = p + (long)item * t * t;
                for (int i = 0; i < t; i++)
                {
                    float* pi = map + (long)i * t;
                    float max = float.NegativeInfinity;
                    for (int j = 0; j < t; j++)
                    {
                        pi[j] = a._scale * DenseLinear.Dot(q + (long)i * rw, k + (long)j * rw, dq);
                        max = MathF.Max(max, pi[j]);
                    }
                    float sum = 0;
                    for (int j = 0; j < t; j++) { pi[j] = MathF.Exp(pi[j] - max); sum += pi[j]; }
                    float inv = 1f / sum;
                    for (int j = 0; j < t; j++) pi[j] *= inv;
                    float* oi = o + ((long)b * t + i) * a._vTotal + a._vOff[h];
                    new Span<float>(oi, dv).Clear();
                    for (int j = 0; j < t; j++) DenseLinear.Axpy(pi[j], v + (long)j * rw, oi, dv);
                }
            }
        }
    }

    readonly struct BackwardBody(AttentionGrad a, float* qkv, float* p, float* dO, float* dQkv) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            int t = a._tokens, rw = a._rowWidth;
            float* ds = ParameterSet.Pin(a._rowScratch[worker]);
            for (int item = start; item < end; item++)
            {
                int b = item / a._heads, h = item % a._heads, dq = a._qk[h], dv = a._v[h];
                long rowBase = (long)b * t * rw;
                int qCol = a._qOff[h], kCol = a._qkTotal + a._qOff[h], vCol = 2 * a._qkTotal + a._vOff[h];
                float* map = p + (long)item * t * t;
                for (int i = 0; i < t; i++)
                {
                    float* pi = map + (long)i * t;
                    float* doi = dO + ((long)b * t + i) * a._vTotal + a._vOff[h];
                    // dP_ij = dO_i·V_j, then dS_ij = P_ij·(dP_ij − Σ_j' P_ij'·dP_ij').
                    float dot = 0;
                    for (int j = 0; j < t; j++)
                    {
                        ds[j] = DenseLinear.Dot(doi, qkv + rowBase + (long)j * rw + vCol, dv);
                        dot += pi[j] * ds[j];
                    }
                    float* qi = qkv + rowBase + (long)i * rw + qCol;
                    float* dqi = dQkv + rowBase + (long)i * rw + qCol;
                    for (int j = 0; j < t; j++)
                    {
                        float s = pi[j] * (ds[j] - dot) * a._scale;
                        long rj = rowBase + (long)j * rw;
                        DenseLinear.Axpy(s, qkv + rj + kCol, dqi, dq);   // dQ_i += scale·dS_ij·K_j
                        DenseLinear.Axpy(s, qi, dQkv + rj + kCol, dq);   // dK_j += scale·dS_ij·Q_i
                        DenseLinear.Axpy(pi[j], doi, dQkv + rj + vCol, dv); // dV_j += P_ij·dO_i
                    }
                }
            }
        }
    }
}
