using VitSparse.Kernels;

namespace VitSparse.Training;

/// <summary>
/// Ragged multi-head softmax attention over fused QKV rows [q heads | k heads | v heads] (head h has its own
/// Q/K width and V width), with the kept scale: S = scale·Q_h·K_hᵀ, P = softmax(S), O_h = P·V_h.
/// Backward: dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − rowsum(P∘dP)), dQ = scale·dS·K, dK = scale·dSᵀ·Q.
/// Every product is a small GEMM on <see cref="TiledProduct"/>'s micro-kernels, run by the worker that owns
/// the item. One work item is one (image, head): it owns that head's columns of O and of dQKV, so results do
/// not depend on the thread count. P is kept from the forward pass.
/// </summary>
public sealed unsafe class AttentionGrad
{
    readonly int _tokens, _heads, _rowWidth, _qkTotal, _vTotal;
    readonly int[] _qk, _v, _qOff, _vOff;
    readonly float _scale;
    // Per worker: one head's Kᵀ or Vᵀ [width, tokens], and dS [tokens, tokens].
    readonly float[][] _transposed, _dS;

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
        int widest = Math.Max(1, Math.Max(_qk.Max(), _v.Max()));
        _transposed = Enumerable.Range(0, threads).Select(_ => GC.AllocateArray<float>(widest * tokens, pinned: true)).ToArray();
        _dS = Enumerable.Range(0, threads).Select(_ => GC.AllocateArray<float>(tokens * tokens, pinned: true)).ToArray();
    }

    /// <summary>Floats of P for a batch: one [tokens, tokens] map per image and head.</summary>
    public long ProbabilityFloats(int batch) => (long)batch * _heads * _tokens * _tokens;

    /// <summary>qkv [batch·tokens, rowWidth] → o [batch·tokens, Σv], keeping P.</summary>
    public void Forward(float* qkv, int batch, float* p, float* o, ThreadTeam team) =>
        team.For(batch * _heads, new ForwardBody(this, qkv, p, o));

    /// <summary>dst[c, r] = src[r·ld + c] for r &lt; rows, c &lt; cols: a head's K or V columns as [width, tokens].</summary>
    static void Transpose(float* src, long ld, int rows, int cols, float* dst)
    {
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) dst[(long)c * rows + r] = src[r * ld + c];
    }

    /// <summary>dO [batch·tokens, Σv] → dQKV [batch·tokens, rowWidth] (overwritten: every column belongs to one head's dQ, dK or dV).</summary>
    public void Backward(float* qkv, float* p, float* dO, int batch, float* dQkv, ThreadTeam team)
    {
        team.For(batch * _heads, new BackwardBody(this, qkv, p, dO, dQkv));
    }

    readonly struct ForwardBody(AttentionGrad a, float* qkv, float* p, float* o) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            int t = a._tokens, rw = a._rowWidth;
            float* kT = ParameterSet.Pin(a._transposed[worker]);
            for (int item = start; item < end; item++)
            {
                int b = item / a._heads, h = item % a._heads, dq = a._qk[h], dv = a._v[h];
                float* rows = qkv + (long)b * t * rw;
                float* q = rows + a._qOff[h], k = rows + a._qkTotal + a._qOff[h], v = rows + 2 * a._qkTotal + a._vOff[h];
                float* map = p + (long)item * t * t;
                // S = Q·Kᵀ, then P = softmax(scale·S) row by row, then O = P·V.
                Transpose(k, rw, t, dq, kT);
                TiledProduct.RunSerial(q, rw, 1, kT, t, map, t, t, t, dq, null);
                for (int i = 0; i < t; i++) Softmax(map + (long)i * t, t, a._scale);
                TiledProduct.RunSerial(map, t, 1, v, rw, o + (long)b * t * a._vTotal + a._vOff[h], a._vTotal, t, dv, t, null);
            }
        }

        static void Softmax(float* row, int n, float scale)
        {
            float max = float.NegativeInfinity;
            for (int j = 0; j < n; j++) { row[j] *= scale; max = MathF.Max(max, row[j]); }
            float sum = 0;
            for (int j = 0; j < n; j++) { row[j] = MathF.Exp(row[j] - max); sum += row[j]; }
            float inv = 1f / sum;
            for (int j = 0; j < n; j++) row[j] *= inv;
        }
    }

    readonly struct BackwardBody(AttentionGrad a, float* qkv, float* p, float* dO, float* dQkv) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            int t = a._tokens, rw = a._rowWidth;
            float* vT = ParameterSet.Pin(a._transposed[worker]), ds = ParameterSet.Pin(a._dS[worker]);
            for (int item = start; item < end; item++)
            {
                int b = item / a._heads, h = item % a._heads, dq = a._qk[h], dv = a._v[h];
                long rowBase = (long)b * t * rw;
                float* q = qkv + rowBase + a._qOff[h], k = qkv + rowBase + a._qkTotal + a._qOff[h], v = qkv + rowBase + 2 * a._qkTotal + a._vOff[h];
                float* dQ = dQkv + rowBase + a._qOff[h], dK = dQkv + rowBase + a._qkTotal + a._qOff[h], dV = dQkv + rowBase + 2 * a._qkTotal + a._vOff[h];
                float* doh = dO + (long)b * t * a._vTotal + a._vOff[h];
                float* map = p + (long)item * t * t;
                // dV = Pᵀ·dO (Pᵀ read in place).
                TiledProduct.RunSerial(map, 1, t, doh, a._vTotal, dV, rw, t, dv, t, null);
                // dP = dO·Vᵀ, then dS = scale·P∘(dP − Σ_j P∘dP) in place, row by row.
                Transpose(v, rw, t, dv, vT);
                TiledProduct.RunSerial(doh, a._vTotal, 1, vT, t, ds, t, t, t, dv, null);
                for (int i = 0; i < t; i++)
                {
                    float* pi = map + (long)i * t, dsi = ds + (long)i * t;
                    float dot = 0;
                    for (int j = 0; j < t; j++) dot += pi[j] * dsi[j];
                    for (int j = 0; j < t; j++) dsi[j] = pi[j] * (dsi[j] - dot) * a._scale;
                }
                // dQ = dS·K and dK = dSᵀ·Q (dSᵀ read in place).
                TiledProduct.RunSerial(ds, t, 1, k, rw, dQ, rw, t, dq, t, null);
                TiledProduct.RunSerial(ds, 1, t, q, rw, dK, rw, t, dq, t, null);
            }
        }
    }
}
