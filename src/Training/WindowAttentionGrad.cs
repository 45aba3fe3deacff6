using VitSparse.Kernels;

namespace VitSparse.Training;

/// <summary>
/// One Swin block's (shifted) window attention for training, on the unshifted NHWC qkv rows [q heads | k heads | v heads]
/// of a map of H×W tokens, as the inference kernel (<see cref="WindowAttention"/>) indexes it: window token t of window
/// (wy, wx) is the map's token ((wy·w + t/w + shift) mod H, (wx·w + t%w + shift) mod W), or padding past H or W (timm pads
/// with zeros after norm1, so a padded token's q, k and v are the qkv bias). No rolled, padded or partitioned copy exists.
/// Per window and head: S = scale·Q·Kᵀ + B + M, P = softmax(S), O = P·V, with B from the relative position bias table
/// (row index recomputed) and M timm's −100 shift mask. Backward: dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − rowsum(P∘dP)),
/// dQ = scale·dS·K, dK = scale·dSᵀ·Q, dB_h[r] = Σ dS over the (i, j) of every window and image whose index is r.
/// One work item is one (image, window, head): it owns that head's columns of its window's token rows (each token lies in
/// exactly one window) and of its window's padding row; the bias table's column h and the padding rows' sum are reduced
/// afterwards in a fixed order, so results do not depend on the thread count. P is kept from the forward pass and
/// overwritten by dS in the backward pass.
/// </summary>
public sealed unsafe class WindowAttentionGrad
{
    readonly WindowGeometry _g;
    readonly int _heads, _headDim, _c, _n, _tableRows;
    readonly float _scale;
    // Bias table row of window tokens (i, j), row-major [N, N].
    readonly int[] _relIndex;
    // timm's shift masks [4][N][stride] (WindowAttention.ShiftMasks); empty without a shift.
    readonly float[] _masks;
    readonly float[][] _rowScratch;

    public WindowAttentionGrad(WindowGeometry geometry, int heads, int headDim, float scale, int threads)
    {
        _g = geometry;
        _heads = heads;
        _headDim = headDim;
        _c = heads * headDim;
        _scale = scale;
        int w = geometry.Window, n = geometry.Tokens, side = 2 * w - 1;
        _n = n;
        _tableRows = side * side;
        _relIndex = GC.AllocateArray<int>(n * n, pinned: true);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                _relIndex[i * n + j] = (i / w - j / w + w - 1) * side + (i % w - j % w + w - 1);
        _masks = GC.AllocateArray<float>(geometry.Shift > 0 ? 4 * n * geometry.Stride : 0, pinned: true);
        if (geometry.Shift > 0) WindowAttention.ShiftMasks(geometry, _masks);
        _rowScratch = Enumerable.Range(0, threads).Select(_ => GC.AllocateArray<float>(n, pinned: true)).ToArray();
    }

    /// <summary>Whether the map pads to whole windows (padded tokens' gradients then go to the qkv bias).</summary>
    public bool Pads => _g.PaddedHeight != _g.Height || _g.PaddedWidth != _g.Width;

    /// <summary>Floats of P for a batch: one [N, N] map per image, window and head.</summary>
    public long ProbabilityFloats(int batch) => (long)batch * _g.Windows * _heads * _n * _n;

    /// <summary>Rows of the padding gradient for a batch (one [3C] row per image and window).</summary>
    public int PadRows(int batch) => batch * _g.Windows;

    /// <summary>
    /// qkv [images·H·W, 3C] → o [images·H·W, C], keeping P. <paramref name="padQkv"/> is the qkv bias (a padded
    /// token's q, k, v); <paramref name="table"/> the bias table [(2w−1)², heads].
    /// </summary>
    public void Forward(float* qkv, float* padQkv, float* table, int batch, float* p, float* o, ThreadTeam team) =>
        team.For(batch * _g.Windows * _heads, new ForwardBody(this, qkv, padQkv, table, p, o));

    /// <summary>
    /// dO [images·H·W, C] → dQKV [images·H·W, 3C] (overwritten), dTable [(2w−1)², heads] (overwritten) and, when the
    /// map pads, dPadSum [3C] (overwritten): the gradient of the padded tokens' q, k, v, which the caller adds to the
    /// qkv bias's. <paramref name="dPad"/> is scratch of <see cref="PadRows"/>·3C floats. P is overwritten with dS.
    /// </summary>
    public void Backward(float* qkv, float* padQkv, float* p, float* dO, int batch, float* dQkv, float* dTable, float* dPad, float* dPadSum, ThreadTeam team)
    {
        team.For(batch * _g.Windows * _heads, new BackwardBody(this, qkv, padQkv, p, dO, dQkv, dPad));
        team.For(_heads, new TableBody(this, p, batch, dTable));
        if (Pads) team.For(3 * _c, new PadSumBody(dPad, PadRows(batch), 3 * _c, dPadSum));
    }

    /// <summary>Each window token's row in the map (−1 for padding), and the window's shift-mask type (0: none).</summary>
    int WindowTokens(int item, int* source)
    {
        var g = _g;
        int imageWindow = item / _heads, win = imageWindow % g.Windows, image = imageWindow / g.Windows;
        int w = g.Window, cols = g.PaddedWidth / w, wy = win / cols, wx = win % cols, s = g.Shift;
        for (int t = 0; t < _n; t++)
        {
            int i = wy * w + t / w, j = wx * w + t % w;
            source[t] = i < g.Height && j < g.Width ? (image * g.Height + (i + s) % g.Height) * g.Width + (j + s) % g.Width : -1;
        }
        return s == 0 ? 0 : (wx == cols - 1 ? 1 : 0) | (wy == g.PaddedHeight / w - 1 ? 2 : 0);
    }

    float* Row(float* qkv, float* pad, int token) => token >= 0 ? qkv + (long)token * 3 * _c : pad;

    readonly struct ForwardBody(WindowAttentionGrad a, float* qkv, float* pad, float* table, float* p, float* o) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            int n = a._n, d = a._headDim, c = a._c, ld = a._g.Stride;
            int* source = stackalloc int[n];
            fixed (int* rel = a._relIndex) fixed (float* masks = a._masks)
                for (int item = start; item < end; item++)
                {
                    int h = item % a._heads, type = a.WindowTokens(item, source);
                    float* map = p + (long)item * n * n;
                    float* mask = type != 0 ? masks + (long)type * n * ld : null;
                    for (int i = 0; i < n; i++)
                    {
                        float* pi = map + (long)i * n;
                        if (source[i] < 0) { new Span<float>(pi, n).Clear(); continue; }   // a padded query's output is cropped
                        float* qi = a.Row(qkv, pad, source[i]) + h * d;
                        float max = float.NegativeInfinity;
                        for (int j = 0; j < n; j++)
                        {
                            float s = a._scale * DenseLinear.Dot(qi, a.Row(qkv, pad, source[j]) + c + h * d, d) + table[rel[i * n + j] * a._heads + h];
                            if (mask != null) s += mask[i * ld + j];
                            pi[j] = s;
                            max = MathF.Max(max, s);
                        }
                        float sum = 0;
                        for (int j = 0; j < n; j++) { pi[j] = MathF.Exp(pi[j] - max); sum += pi[j]; }
                        float inv = 1f / sum;
                        for (int j = 0; j < n; j++) pi[j] *= inv;
                        float* oi = o + (long)source[i] * c + h * d;
                        new Span<float>(oi, d).Clear();
                        for (int j = 0; j < n; j++) DenseLinear.Axpy(pi[j], a.Row(qkv, pad, source[j]) + 2 * c + h * d, oi, d);
                    }
                }
        }
    }

    readonly struct BackwardBody(WindowAttentionGrad a, float* qkv, float* pad, float* p, float* dO, float* dQkv, float* dPad) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            int n = a._n, d = a._headDim, c = a._c, row = 3 * c;
            int* source = stackalloc int[n];
            float* ds = ParameterSet.Pin(a._rowScratch[worker]);
            for (int item = start; item < end; item++)
            {
                int h = item % a._heads;
                a.WindowTokens(item, source);
                int qCol = h * d, kCol = c + h * d, vCol = 2 * c + h * d;
                // This item's gradient rows: each real token's own row, and the window's padding row for padded tokens.
                float* padRow = dPad + (long)(item / a._heads) * row;
                for (int part = 0; part < 3; part++) new Span<float>(padRow + part * c + h * d, d).Clear();
                for (int t = 0; t < n; t++)
                {
                    if (source[t] < 0) continue;
                    float* r = dQkv + (long)source[t] * row;
                    for (int part = 0; part < 3; part++) new Span<float>(r + part * c + h * d, d).Clear();
                }
                float* map = p + (long)item * n * n;
                for (int i = 0; i < n; i++)
                {
                    float* pi = map + (long)i * n;
                    if (source[i] < 0) continue;   // no gradient reaches a padded query (its row of P is zero)
                    float* doi = dO + (long)source[i] * c + h * d;
                    // dP_ij = dO_i·V_j, then dS_ij = P_ij·(dP_ij − Σ_j' P_ij'·dP_ij').
                    float dot = 0;
                    for (int j = 0; j < n; j++)
                    {
                        ds[j] = DenseLinear.Dot(doi, a.Row(qkv, pad, source[j]) + vCol, d);
                        dot += pi[j] * ds[j];
                    }
                    float* qi = a.Row(qkv, pad, source[i]) + qCol;
                    float* dqi = dQkv + (long)source[i] * row + qCol;
                    for (int j = 0; j < n; j++)
                    {
                        float dsij = pi[j] * (ds[j] - dot), s = dsij * a._scale;
                        float* dj = source[j] >= 0 ? dQkv + (long)source[j] * row : padRow;
                        DenseLinear.Axpy(s, a.Row(qkv, pad, source[j]) + kCol, dqi, d);   // dQ_i += scale·dS_ij·K_j
                        DenseLinear.Axpy(s, qi, dj + kCol, d);                            // dK_j += scale·dS_ij·Q_i
                        DenseLinear.Axpy(pi[j], doi, dj + vCol, d);                       // dV_j += P_ij·dO_i
                        pi[j] = dsij;   // P_ij is no longer needed: keep dS_ij for the bias table
                    }
                }
            }
        }
    }

    /// <summary>dTable[r, h] = Σ over images, windows (in order) and (i, j) with index r of dS_ij; one item per head.</summary>
    readonly struct TableBody(WindowAttentionGrad a, float* ds, int batch, float* dTable) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            int n = a._n, heads = a._heads, windows = batch * a._g.Windows;
            fixed (int* rel = a._relIndex)
                for (int h = start; h < end; h++)
                {
                    for (int r = 0; r < a._tableRows; r++) dTable[r * heads + h] = 0;
                    for (int win = 0; win < windows; win++)
                    {
                        float* map = ds + ((long)win * heads + h) * n * n;
                        for (int k = 0; k < n * n; k++) dTable[rel[k] * heads + h] += map[k];
                    }
                }
        }
    }

    /// <summary>dPadSum[col] = Σ over padding rows (in order) of dPad[row, col]; one item per column.</summary>
    readonly struct PadSumBody(float* dPad, int rows, int width, float* dPadSum) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            for (int col = start; col < end; col++)
            {
                float s = 0;
                for (int r = 0; r < rows; r++) s += dPad[(long)r * width + col];
                dPadSum[col] = s;
            }
        }
    }
}
