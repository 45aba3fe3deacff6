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
    public int RowWidth { get; }
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
        // Offsets become pointer arithmetic in the kernel: sums are 64-bit and must fit a row of an int-indexed buffer.
        long qk = 0, v = 0;
        for (int h = 0; h < Heads; h++)
        {
            if (QkWidths[h] < 1 || VWidths[h] < 1)
                throw new ArgumentException($"head {h} has Q/K width {QkWidths[h]} and V width {VWidths[h]}; every head needs at least one of each");
            QOffsets[h] = (int)qk; qk += QkWidths[h];
            VOffsets[h] = (int)v; v += VWidths[h];
            if (2 * qk + v > int.MaxValue) throw new ArgumentException($"head widths up to head {h} sum past a 2^31-float row");
        }
        QkTotal = (int)qk;
        VTotal = (int)v;
        RowWidth = (int)(2 * qk + v);
        MaxQk = QkWidths.Max();
        MaxV = VWidths.Max();
    }
}

/// <summary>
/// softmax(Q_h·K_hᵀ·scale)·V_h for every head of a ragged layout, reading Q, K and V straight from the
/// fused QKV activations. Both products run on the GEMM register tile: K_hᵀ and V_h are packed into
/// panels once per work item, and rows of Q (then of P) are broadcast against them, six rows at a time.
/// Work items are (image, head, chunk of query rows); each owns its slice of the output, so results are
/// identical for any thread count. Scratch is allocated once per worker at construction.
/// </summary>
public sealed class RaggedAttention
{
    readonly int _tokens, _maxQk, _maxV, _nr, _keyPanels;
    readonly SimdWidth _simd;
    readonly float[][] _scratch;

    /// <summary>Sets up per-worker scratch for sequences of <paramref name="tokens"/> and heads up to the given widths.</summary>
    public RaggedAttention(int tokens, int maxQk, int maxV, int threads, SimdWidth simd = 0)
    {
        if (tokens < 1) throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "token count must be positive");
        if (maxQk < 1 || maxV < 1) throw new ArgumentOutOfRangeException(nameof(maxQk), "head widths must be positive");
        _tokens = tokens;
        _maxQk = maxQk;
        _maxV = maxV;
        _simd = simd == 0 ? (Isa.Best == SimdWidth.Scalar ? SimdWidth.V128 : Isa.Best) : simd;
        _nr = 2 * Isa.LanesOf(_simd);
        _keyPanels = (tokens + _nr - 1) / _nr;
        int valuePanels = (maxV + _nr - 1) / _nr;
        _scratch = new float[threads][];
        for (int t = 0; t < threads; t++)
            _scratch[t] = new float[_keyPanels * _nr * maxQk + valuePanels * _nr * tokens + MicroKernel.Mr * _keyPanels * _nr + MicroKernel.Mr * _nr];
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
        if (images < 1) throw new ArgumentOutOfRangeException(nameof(images), images, "must be at least 1");
        long rows = (long)images * _tokens;
        if (qkv.Length < (rows - 1) * ldq + layout.RowWidth) throw new ArgumentException("QKV buffer too small", nameof(qkv));
        if (output.Length < (rows - 1) * ldo + layout.VTotal) throw new ArgumentException("output buffer too small", nameof(output));
        // Packing K and V costs as much as a few row tiles, so a head is split across work items only when
        // there are too few heads to keep every thread busy.
        int heads = images * layout.Heads;
        int chunks = Math.Min((2 * team.Threads + heads - 1) / heads, (_tokens + MicroKernel.Mr - 1) / MicroKernel.Mr);
        if (heads >= 2 * team.Threads || team.Threads == 1) chunks = 1;
        int chunkRows = ((_tokens + chunks - 1) / chunks + MicroKernel.Mr - 1) / MicroKernel.Mr * MicroKernel.Mr;
        chunks = (_tokens + chunkRows - 1) / chunkRows;
        unsafe
        {
            fixed (float* pq = qkv) fixed (float* po = output)
                team.For(heads * chunks, new Body(this, layout, pq, ldq, scale, po, ldo, chunks, chunkRows));
        }
    }

    /// <summary>
    /// Width of the next V panel with <paramref name="remaining"/> columns left: two vectors, one, or (at 256 and 512
    /// bits, for the last few columns) half a vector, which runs the next narrower width's one-vector tile: a 38-wide
    /// head at 512 bits is 32 + 8 lanes, not 32 + 16. Splitting a two-vector panel into one vector and a half (19 as
    /// 16 + 8) was slower: each panel broadcasts every probability again. Every output lane sums the same products in
    /// the same order whatever the panel widths, so the result does not depend on them.
    /// </summary>
    static int ValuePanelWidth(int remaining, int nr) =>
        remaining > nr / 2 ? nr : remaining > nr / 4 || nr < 16 ? nr / 2 : nr / 4;

    unsafe readonly struct Body(RaggedAttention a, HeadLayout L, float* qkv, int ldq, float scale, float* output, int ldo, int chunks, int chunkRows) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            fixed (float* scratch = a._scratch[worker])
            {
                for (int item = start; item < end; item++)
                {
                    int chunk = item % chunks, bh = item / chunks;
                    int h = bh % L.Heads, image = bh / L.Heads;
                    switch (a._simd)
                    {
                        case SimdWidth.V512: Head<V512, Vector512<float>>(image, h, chunk, scratch); break;
                        case SimdWidth.V256: Head<V256, Vector256<float>>(image, h, chunk, scratch); break;
                        default: Head<V128, Vector128<float>>(image, h, chunk, scratch); break;
                    }
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Head<TOps, TV>(int image, int h, int chunk, float* scratch) where TOps : struct, IVec<TV> where TV : struct
        {
            int n = a._tokens, nr = a._nr, keyPanels = a._keyPanels, nPad = keyPanels * nr, vc = TOps.Count;
            int dqk = L.QkWidths[h], dv = L.VWidths[h];
            float* kp = scratch;                                   // [keyPanels][dqk][nr]: K_hᵀ, zero past n
            float* vp = kp + keyPanels * nr * a._maxQk;            // V_h in panels [n][width], zero past dv
            float* s = vp + (a._maxV + nr - 1) / nr * nr * n;      // [Mr][nPad]: scores, then probabilities
            float* tile = s + MicroKernel.Mr * nPad;               // [Mr][nr]
            float* rows = qkv + (long)image * n * ldq;
            int qOff = L.QOffsets[h], kOff = L.QkTotal + L.QOffsets[h], vOff = 2 * L.QkTotal + L.VOffsets[h];

            new Span<float>(kp + (keyPanels - 1) * nr * dqk, nr * dqk).Clear();
            // K_hᵀ by 8×8 shuffle transposes (8 tokens stay in one panel: nr is a multiple of 8); edges by element.
            int fullTokens = Transpose8x8.IsSupported ? n / 8 * 8 : 0, fullDims = dqk / 8 * 8;
            for (int j0 = 0; j0 < fullTokens; j0 += 8)
            {
                float* k = rows + (long)j0 * ldq + kOff;
                float* dst = kp + (j0 / nr) * nr * dqk + j0 % nr;
                for (int d0 = 0; d0 < fullDims; d0 += 8) Transpose8x8.Block(k + d0, ldq, dst + d0 * nr, nr);
                for (int j = 0; j < 8; j++)
                    for (int d = fullDims; d < dqk; d++) dst[d * nr + j] = k[(long)j * ldq + d];
            }
            for (int j = fullTokens; j < n; j++)
            {
                float* k = rows + (long)j * ldq + kOff;
                float* dst = kp + (j / nr) * nr * dqk + j % nr;
                for (int d = 0; d < dqk; d++) dst[d * nr] = k[d];
            }
            // V in panels of two vectors, the last one a single vector when that covers what is left, so a
            // 12-wide head is not computed 32 wide.
            for (int col0 = 0, off = 0, w = 0; col0 < dv; off += n * w, col0 += w)
            {
                w = ValuePanelWidth(dv - col0, nr);
                int cols = Math.Min(w, dv - col0);
                for (int j = 0; j < n; j++)
                {
                    float* v = rows + (long)j * ldq + vOff + col0;
                    float* dst = vp + off + j * w;
                    int c = 0;
                    for (; c + vc <= cols; c += vc) TOps.Store(ref dst[c], TOps.Load(ref v[c]));
                    for (; c < cols; c++) dst[c] = v[c];
                    for (; c < w; c++) dst[c] = 0f;
                }
            }

            TV negInf = TOps.Broadcast(float.NegativeInfinity);
            TV tailMask = TOps.LessThan(TOps.Indices, TOps.Broadcast(n % vc == 0 ? vc : n % vc));
            int lastVec = (n - 1) / vc * vc;
            float* max = stackalloc float[MicroKernel.Mr];
            float* inv = stackalloc float[MicroKernel.Mr];
            int q0 = chunk * chunkRows, q1 = Math.Min(n, q0 + chunkRows);
            for (int i0 = q0; i0 < q1; i0 += MicroKernel.Mr)
            {
                int mr = Math.Min(MicroKernel.Mr, q1 - i0);
                ref float q = ref *(rows + (long)i0 * ldq + qOff);
                // Raw scores straight into the score rows; the scale is folded into the exponent.
                for (int p = 0; p < keyPanels; p++)
                    MicroKernel.Run<TOps, TV>(mr, ref q, ldq, ref *(kp + p * nr * dqk), dqk, ref s[p * nr], ldc: nPad);
                for (int r = 0; r < mr; r++)
                {
                    float* row = s + r * nPad;
                    TV vmax = TOps.Select(tailMask, TOps.Load(ref row[lastVec]), negInf);
                    for (int j = 0; j < lastVec; j += vc) vmax = TOps.MaxNative(vmax, TOps.Load(ref row[j]));
                    max[r] = TOps.MaxAcross(vmax);
                }
                // exp(scale·(s − max)) = 2^(c·s − c·max) with c = scale·log2 e > 0.
                SoftmaxRows.Exp<TOps, TV>(s, mr, nPad, n, scale * FastExp.Log2E, max, inv);
                for (int col0 = 0, off = 0, w = 0; col0 < dv; off += n * w, col0 += w)
                {
                    w = ValuePanelWidth(dv - col0, nr);
                    int cols = Math.Min(w, dv - col0);
                    if (w == nr) MicroKernel.Run<TOps, TV>(mr, ref *s, nPad, ref *(vp + off), n, ref *tile);
                    else if (w == nr / 2) MicroKernel.RunNarrow<TOps, TV>(mr, ref *s, nPad, ref *(vp + off), n, ref *tile, w);
                    else if (typeof(TV) == typeof(Vector512<float>)) MicroKernel.RunNarrow<V256, Vector256<float>>(mr, ref *s, nPad, ref *(vp + off), n, ref *tile, w);
                    else MicroKernel.RunNarrow<V128, Vector128<float>>(mr, ref *s, nPad, ref *(vp + off), n, ref *tile, w);
                    for (int r = 0; r < mr; r++)
                    {
                        float* o = output + ((long)image * n + i0 + r) * ldo + L.VOffsets[h] + col0;
                        float* t = tile + r * w;
                        TV scaleR = TOps.Broadcast(inv[r]);
                        int c = 0;
                        for (; c + vc <= cols; c += vc) TOps.Store(ref o[c], TOps.Mul(TOps.Load(ref t[c]), scaleR));
                        for (; c < cols; c++) o[c] = t[c] * inv[r];
                    }
                }
            }
        }
    }
}
