using System.Runtime.CompilerServices;
using System.Numerics;
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
/// overwritten by dS in the backward pass. Each item gathers its head's q, k, v (and dO) rows into contiguous tiles,
/// then runs the products on <see cref="TiledProduct.RunSerial"/> as <see cref="AttentionGrad"/> does (Pᵀ and dSᵀ read
/// in place) and the softmax with vector exponentials: calls of a d-long dot and three axpys per (i, j) pair (d = 16 or
/// 32) had cost 46 % of a swin_fmnist training step.
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
    // The bias table expanded per head, [heads][N][N]: refilled by every Forward (the table trains), read by its rows.
    readonly float[] _bias;
    readonly float[][] _tiles;   // per worker, TileFloats

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
        _bias = GC.AllocateArray<float>(heads * n * n, pinned: true);
        if (geometry.Shift > 0) WindowAttention.ShiftMasks(geometry, _masks);
        _tiles = Enumerable.Range(0, threads).Select(_ => GC.AllocateArray<float>(TileFloats, pinned: true)).ToArray();
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
    public void Forward(float* qkv, float* padQkv, float* table, int batch, float* p, float* o, ThreadTeam team)
    {
        for (int h = 0; h < _heads; h++)
            for (int ij = 0; ij < _n * _n; ij++) _bias[h * _n * _n + ij] = table[_relIndex[ij] * _heads + h];
        team.For(batch * _g.Windows * _heads, new ForwardBody(this, qkv, padQkv, p, o));
    }

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

    /// <summary>A worker's tiles: six [n][d] (Q, K, V, dO, and dQ/dK of the backward pass), two [d][n] (Kᵀ, Vᵀ) and S [n][n].</summary>
    int TileFloats => 8 * _n * _headDim + _n * _n;

    /// <summary>Tiles of one worker, carved from its pinned block.</summary>
    readonly struct Tiles
    {
        public readonly float* Q, K, V, DO, A, B;   // [n][d]
        public readonly float* KT, VT;              // [d][n]
        public readonly float* S;                   // [n][n]
        public Tiles(WindowAttentionGrad a, int worker)
        {
            float* t = ParameterSet.Pin(a._tiles[worker]);
            int nd = a._n * a._headDim;
            Q = t; K = Q + nd; V = K + nd; DO = V + nd; A = DO + nd; B = A + nd; KT = B + nd; VT = KT + nd; S = VT + nd;
        }
    }

    /// <summary>This head's d columns of part (0 q, 1 k, 2 v) of every window token into rows [n][d] and/or columns [d][n].</summary>
    void Gather(float* qkv, float* pad, int* source, int h, int part, float* rows, float* cols)
    {
        int d = _headDim;
        for (int t = 0; t < _n; t++)
        {
            float* src = Row(qkv, pad, source[t]) + part * _c + h * d;
            if (rows != null) Copy(src, rows + t * d, d);
            if (cols != null) for (int col = 0; col < d; col++) cols[col * _n + t] = src[col];
        }
    }

    /// <summary>d floats from src to dst: a head's row is 1–4 vectors, too short for a general memmove's set-up.</summary>
    static void Copy(float* src, float* dst, int d)
    {
        int vc = Vector<float>.Count, i = 0;
        for (; i <= d - vc; i += vc) Vector.Store(Vector.Load(src + i), dst + i);
        for (; i < d; i++) dst[i] = src[i];
    }

    /// <summary>dst[0..d) = alpha·src[0..d).</summary>
    static void Scaled(float* src, float alpha, float* dst, int d)
    {
        int vc = Vector<float>.Count, i = 0;
        for (var va = new Vector<float>(alpha); i <= d - vc; i += vc) Vector.Store(Vector.Load(src + i) * va, dst + i);
        for (; i < d; i++) dst[i] = alpha * src[i];
    }

    /// <summary>A row of scores → its softmax, in place: the exponentials a vector at a time (<see cref="FastExp"/>), the sum in order.</summary>
    readonly struct SoftmaxOp : ISpanOp
    {
        public void Run<TOps, TV>(Span<float> x) where TOps : struct, IVec<TV> where TV : struct
        {
            float max = float.NegativeInfinity;
            foreach (float v in x) max = MathF.Max(max, v);
            TV m = TOps.Broadcast(max);
            ref float r = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
            int i = 0;
            for (; i <= x.Length - TOps.Count; i += TOps.Count)
                TOps.Store(ref Unsafe.Add(ref r, i), FastExp.Exp<TOps, TV>(TOps.Sub(TOps.Load(ref Unsafe.Add(ref r, i)), m)));
            if (i < x.Length)
            {
                // The tail in a whole vector (padding −∞ → 0), so every element takes the same exp.
                Span<float> tail = stackalloc float[TOps.Count];
                tail.Fill(float.NegativeInfinity);
                x[i..].CopyTo(tail);
                ref float t = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(tail);
                TOps.Store(ref t, FastExp.Exp<TOps, TV>(TOps.Sub(TOps.Load(ref t), m)));
                tail[..(x.Length - i)].CopyTo(x[i..]);
            }
            float sum = 0;
            foreach (float v in x) sum += v;
            float inv = 1f / sum;
            for (int j = 0; j < x.Length; j++) x[j] *= inv;
        }
    }

    readonly struct ForwardBody(WindowAttentionGrad a, float* qkv, float* pad, float* p, float* o) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            int n = a._n, d = a._headDim, c = a._c, ld = a._g.Stride, vc = Vector<float>.Count;
            int* source = stackalloc int[n];
            var t = new Tiles(a, worker);
            var scale = new Vector<float>(a._scale);
            fixed (float* masks = a._masks) fixed (float* biases = a._bias)
                for (int item = start; item < end; item++)
                {
                    int h = item % a._heads, type = a.WindowTokens(item, source);
                    float* map = p + (long)item * n * n;
                    float* mask = type != 0 ? masks + (long)type * n * ld : null;
                    a.Gather(qkv, pad, source, h, 0, t.Q, null);
                    a.Gather(qkv, pad, source, h, 1, null, t.KT);
                    a.Gather(qkv, pad, source, h, 2, t.V, null);
                    TiledProduct.RunSerial(t.Q, d, 1, t.KT, n, map, n, n, n, d, null);   // S = Q·Kᵀ, unscaled, into P's place
                    for (int i = 0; i < n; i++)
                    {
                        float* pi = map + (long)i * n;
                        if (source[i] < 0) { new Span<float>(pi, n).Clear(); continue; }   // a padded query's output is cropped
                        // s = scale·(q·k) + B (+ M), then its softmax.
                        float* bi = biases + ((long)h * n + i) * n, mi = mask != null ? mask + i * ld : null;
                        int j = 0;
                        for (; j <= n - vc; j += vc)
                        {
                            var v = Vector.Load(pi + j) * scale + Vector.Load(bi + j);
                            if (mi != null) v += Vector.Load(mi + j);
                            Vector.Store(v, pi + j);
                        }
                        for (; j < n; j++) pi[j] = a._scale * pi[j] + bi[j] + (mi != null ? mi[j] : 0f);
                        Simd.Dispatch(new SoftmaxOp(), new Span<float>(pi, n));
                    }
                    TiledProduct.RunSerial(map, n, 1, t.V, d, t.A, d, n, d, n, null);    // O = P·V
                    for (int i = 0; i < n; i++)
                        if (source[i] >= 0) Copy(t.A + i * d, o + (long)source[i] * c + h * d, d);
                }
        }
    }

    readonly struct BackwardBody(WindowAttentionGrad a, float* qkv, float* pad, float* p, float* dO, float* dQkv, float* dPad) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            int n = a._n, d = a._headDim, c = a._c, row = 3 * c, vc = Vector<float>.Count;
            int* source = stackalloc int[n];
            var t = new Tiles(a, worker);
            for (int item = start; item < end; item++)
            {
                int h = item % a._heads;
                a.WindowTokens(item, source);
                a.Gather(qkv, pad, source, h, 0, t.Q, null);
                a.Gather(qkv, pad, source, h, 1, t.K, null);
                a.Gather(qkv, pad, source, h, 2, null, t.VT);
                // dO rows; a padded query has none (its output is cropped), so its row of dP and dS is zero.
                for (int i = 0; i < n; i++)
                    if (source[i] >= 0) Copy(dO + (long)source[i] * c + h * d, t.DO + i * d, d);
                    else new Span<float>(t.DO + i * d, d).Clear();
                float* map = p + (long)item * n * n;
                TiledProduct.RunSerial(map, 1, n, t.DO, d, t.V, d, n, d, n, null);    // dV = Pᵀ·dO (Pᵀ read in place; V's tile is free)
                TiledProduct.RunSerial(t.DO, d, 1, t.VT, n, t.S, n, n, n, d, null);   // dP = dO·Vᵀ
                for (int i = 0; i < n; i++)
                {
                    // dS_ij = P_ij·(dP_ij − Σ_j' P_ij'·dP_ij'), in P's place (P is no longer needed; dS feeds the bias table).
                    float* pi = map + (long)i * n, dpi = t.S + (long)i * n;
                    float dot = DenseLinear.Dot(pi, dpi, n);
                    int j = 0;
                    for (var vdot = new Vector<float>(dot); j <= n - vc; j += vc)
                        Vector.Store(Vector.Load(pi + j) * (Vector.Load(dpi + j) - vdot), pi + j);
                    for (; j < n; j++) pi[j] = pi[j] * (dpi[j] - dot);
                }
                TiledProduct.RunSerial(map, n, 1, t.K, d, t.A, d, n, d, n, null);    // dQ = dS·K   (× scale below)
                TiledProduct.RunSerial(map, 1, n, t.Q, d, t.B, d, n, d, n, null);    // dK = dSᵀ·Q  (× scale below; dSᵀ read in place)
                // Each real token's own rows; padded tokens' k and v gradients summed, in token order, into the window's padding row.
                float* padRow = dPad + (long)(item / a._heads) * row;
                for (int part = 0; part < 3; part++) new Span<float>(padRow + part * c + h * d, d).Clear();
                for (int j = 0; j < n; j++)
                {
                    float* dq = t.A + j * d, dk = t.B + j * d, dv = t.V + j * d;
                    if (source[j] >= 0)
                    {
                        float* r = dQkv + (long)source[j] * row + h * d;
                        Scaled(dq, a._scale, r, d);
                        Scaled(dk, a._scale, r + c, d);
                        Copy(dv, r + 2 * c, d);
                    }
                    else
                    {
                        DenseLinear.Axpy(a._scale, dk, padRow + c + h * d, d);
                        DenseLinear.Axpy(1f, dv, padRow + 2 * c + h * d, d);
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
