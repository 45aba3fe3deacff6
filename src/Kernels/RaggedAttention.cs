using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace VitSparse.Kernels;

/// <summary>
/// Where each head's Q, K and V live in a fused QKV row, and how wide each is. Q/K width and V width are
/// per head and independent (SNP prunes Q/K pairs and V neurons separately), so nothing here assumes
/// uniform heads. Row layout: [q heads | k heads | v heads], each group head-major.
/// </summary>
public sealed class HeadLayout
{
    public int Heads { get; }
    public int[] QkWidths { get; }
    public int[] VWidths { get; }
    public int QkTotal { get; }
    public int VTotal { get; }
    public int RowWidth => 2 * QkTotal + VTotal;
    internal int[] QOffsets { get; }
    internal int[] VOffsets { get; }
    public int MaxQk { get; }
    public int MaxV { get; }

    public HeadLayout(IReadOnlyList<int> qkWidths, IReadOnlyList<int> vWidths)
    {
        if (qkWidths.Count == 0 || qkWidths.Count != vWidths.Count)
            throw new ArgumentException($"head layout needs the same positive number of Q/K and V widths, got {qkWidths.Count} and {vWidths.Count}");
        Heads = qkWidths.Count;
        QkWidths = qkWidths.ToArray();
        VWidths = vWidths.ToArray();
        QOffsets = new int[Heads];
        VOffsets = new int[Heads];
        for (int h = 0; h < Heads; h++)
        {
            if (QkWidths[h] < 1 || VWidths[h] < 1)
                throw new ArgumentException($"head {h} has Q/K width {QkWidths[h]} and V width {VWidths[h]}; every head needs at least one of each");
            QOffsets[h] = QkTotal; QkTotal += QkWidths[h];
            VOffsets[h] = VTotal; VTotal += VWidths[h];
        }
        MaxQk = QkWidths.Max();
        MaxV = VWidths.Max();
    }
}

/// <summary>
/// softmax(Q_h·K_hᵀ·scale)·V_h for every head of a ragged layout, reading Q, K and V straight from the
/// fused QKV activations. Work items are (image, head, tile of query rows); each owns its slice of the
/// output, so results are identical for any thread count. Scratch is allocated once per worker.
/// </summary>
public sealed class RaggedAttention
{
    public const int QueryTile = 32;
    readonly int _tokens, _tokensPad, _maxQk, _maxV, _lanes;
    readonly SimdWidth _simd;
    readonly float[][] _scratch;

    /// <summary>Sets up per-worker scratch for sequences of <paramref name="tokens"/> and heads up to the given widths.</summary>
    public RaggedAttention(int tokens, int maxQk, int maxV, int threads, SimdWidth simd = 0)
    {
        if (tokens < 1) throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "token count must be positive");
        if (maxQk < 1 || maxV < 1) throw new ArgumentOutOfRangeException(nameof(maxQk), "head widths must be positive");
        _tokens = tokens;
        _maxQk = maxQk;
        _simd = simd == 0 ? (Isa.Best == SimdWidth.Scalar ? SimdWidth.V128 : Isa.Best) : simd;
        _lanes = PackedLinear.LanesOf(_simd);
        _tokensPad = (tokens + _lanes - 1) / _lanes * _lanes;
        _maxV = (maxV + _lanes - 1) / _lanes * _lanes;
        _scratch = new float[threads][];
        for (int t = 0; t < threads; t++)
            _scratch[t] = new float[maxQk * _tokensPad + _tokens * _maxV + _tokensPad];
    }

    /// <summary>qkv: [images·tokens, ldq]; output: [images·tokens, ldo] with head h at column Σ_{h'&lt;h} dv[h'].</summary>
    public void Forward(HeadLayout layout, ReadOnlySpan<float> qkv, int images, int ldq, float scale, Span<float> output, int ldo, ThreadTeam team)
    {
        if (layout.MaxQk > _maxQk || layout.MaxV > _maxV)
            throw new ArgumentException($"head widths up to {layout.MaxQk}/{layout.MaxV} exceed the {_maxQk}/{_maxV} this attention was set up for", nameof(layout));
        if (team.Threads > _scratch.Length)
            throw new ArgumentException($"attention was set up for {_scratch.Length} threads, called with {team.Threads}", nameof(team));
        if (ldq < layout.RowWidth) throw new ArgumentOutOfRangeException(nameof(ldq), ldq, $"QKV row stride must be at least {layout.RowWidth}");
        if (ldo < layout.VTotal) throw new ArgumentOutOfRangeException(nameof(ldo), ldo, $"output row stride must be at least {layout.VTotal}");
        long rows = (long)images * _tokens;
        if (qkv.Length < (rows - 1) * ldq + layout.RowWidth) throw new ArgumentException("QKV buffer too small", nameof(qkv));
        if (output.Length < (rows - 1) * ldo + layout.VTotal) throw new ArgumentException("output buffer too small", nameof(output));
        int qTiles = (_tokens + QueryTile - 1) / QueryTile;
        unsafe
        {
            fixed (float* pq = qkv) fixed (float* po = output)
                team.For(images * layout.Heads * qTiles, new Body(this, layout, pq, ldq, scale, po, ldo, qTiles));
        }
    }

    unsafe readonly struct Body(RaggedAttention a, HeadLayout L, float* qkv, int ldq, float scale, float* output, int ldo, int qTiles) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            fixed (float* scratch = a._scratch[worker])
            {
                for (int item = start; item < end; item++)
                {
                    int tile = item % qTiles, bh = item / qTiles;
                    int h = bh % L.Heads, image = bh / L.Heads;
                    switch (a._simd)
                    {
                        case SimdWidth.V512: Head<V512, Vector512<float>>(image, h, tile, scratch); break;
                        case SimdWidth.V256: Head<V256, Vector256<float>>(image, h, tile, scratch); break;
                        default: Head<V128, Vector128<float>>(image, h, tile, scratch); break;
                    }
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Head<TOps, TV>(int image, int h, int tile, float* scratch) where TOps : struct, IVec<TV> where TV : struct
        {
            int n = a._tokens, nPad = a._tokensPad, vPad = (L.MaxV + a._lanes - 1) / a._lanes * a._lanes, vc = TOps.Count;
            int dqk = L.QkWidths[h], dv = L.VWidths[h];
            float* kt = scratch;                       // [dqk][nPad]: K_h transposed, zero past n
            float* vs = kt + a._maxQk * nPad;           // [n][vPad]: V_h, zero past dv
            float* s = vs + n * vPad;                  // [nPad]: one row of scores / probabilities
            float* rows = qkv + (long)image * n * ldq;
            int qOff = L.QOffsets[h], kOff = L.QkTotal + L.QOffsets[h], vOff = 2 * L.QkTotal + L.VOffsets[h];

            for (int j = 0; j < n; j++)
            {
                float* r = rows + (long)j * ldq;
                for (int d = 0; d < dqk; d++) kt[d * nPad + j] = r[kOff + d];
                float* vr = vs + j * vPad;
                for (int d = 0; d < dv; d++) vr[d] = r[vOff + d];
                for (int d = dv; d < vPad; d++) vr[d] = 0f;
            }
            for (int d = 0; d < dqk; d++)
                for (int j = n; j < nPad; j++) kt[d * nPad + j] = 0f;

            int q0 = tile * QueryTile, q1 = Math.Min(n, q0 + QueryTile);
            TV vscale = TOps.Broadcast(scale);
            float* tmp = stackalloc float[16];
            for (int i = q0; i < q1; i++)
            {
                float* q = rows + (long)i * ldq + qOff;
                TV vmax = TOps.Broadcast(float.NegativeInfinity);
                for (int j0 = 0; j0 < nPad; j0 += vc)
                {
                    TV acc = TOps.Zero;
                    for (int d = 0; d < dqk; d++) acc = TOps.Fma(TOps.Broadcast(q[d]), TOps.Load(ref kt[d * nPad + j0]), acc);
                    acc = TOps.Mul(acc, vscale);
                    TOps.Store(ref s[j0], acc);
                    if (j0 + vc <= n) vmax = TOps.Max(vmax, acc);
                }
                float max = TOps.MaxAcross(vmax);
                for (int j = n / vc * vc; j < n; j++) max = MathF.Max(max, s[j]);
                TV vm = TOps.Broadcast(max);
                TV vsum = TOps.Zero;
                int full = n / vc * vc;
                for (int j0 = 0; j0 < full; j0 += vc)
                {
                    TV e = TOps.Exp(TOps.Sub(TOps.Load(ref s[j0]), vm));
                    TOps.Store(ref s[j0], e);
                    vsum = TOps.Add(vsum, e);
                }
                float sum = TOps.Sum(vsum);
                if (full < n)
                {
                    // Tail keys: exponentiate a whole vector, then zero the padding so it adds nothing to P·V.
                    TOps.Store(ref s[full], TOps.Exp(TOps.Sub(TOps.Load(ref s[full]), vm)));
                    for (int j = full; j < n; j++) sum += s[j];
                    for (int j = n; j < nPad; j++) s[j] = 0f;
                }
                TV inv = TOps.Broadcast(1f / sum);
                float* o = output + ((long)image * n + i) * ldo + L.VOffsets[h];
                for (int d0 = 0; d0 < dv; d0 += vc)
                {
                    TV acc = TOps.Zero;
                    for (int j = 0; j < n; j++) acc = TOps.Fma(TOps.Broadcast(s[j]), TOps.Load(ref vs[j * vPad + d0]), acc);
                    acc = TOps.Mul(acc, inv);
                    if (d0 + vc <= dv) TOps.Store(ref o[d0], acc);
                    else
                    {
                        TOps.Store(ref tmp[0], acc);
                        for (int d = d0; d < dv; d++) o[d] = tmp[d - d0];
                    }
                }
            }
        }
    }
}
