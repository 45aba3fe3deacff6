using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace VitSparse.Kernels;

/// <summary>
/// Where one Swin block's windows lie on a token map of Height×Width (NHWC, row-major tokens): the window
/// side, the cyclic shift (timm rolls the map by −shift before partitioning), and the map padded up to whole
/// windows (timm pads with zeros after norm1, so a padded token's q, k and v are the qkv bias).
/// </summary>
public readonly record struct WindowGeometry(int Height, int Width, int Window, int Shift)
{
    /// <summary>Rows padded to whole windows.</summary>
    public int PaddedHeight => (Height + Window - 1) / Window * Window;
    /// <summary>Columns padded to whole windows.</summary>
    public int PaddedWidth => (Width + Window - 1) / Window * Window;
    /// <summary>Windows per image.</summary>
    public int Windows => PaddedHeight / Window * (PaddedWidth / Window);
    /// <summary>Tokens per window.</summary>
    public int Tokens => Window * Window;
    /// <summary>Row stride of the expanded bias and mask matrices: window tokens rounded up to 16 floats, so vector loads stay inside.</summary>
    public int Stride => (Tokens + 15) / 16 * 16;
}

/// <summary>
/// Swin's (shifted) window attention, softmax(scale·Q·Kᵀ + B + M)·V per window and head, read straight from the
/// unshifted NHWC qkv activations: the cyclic shift, the padding and the window partition are index arithmetic
/// when a window's tokens are gathered into the worker's scratch, and the output goes back to each token's own
/// row, so no rolled, padded or partitioned copy of the map exists. The relative position bias B (expanded once
/// per block, <see cref="ExpandBias"/>) and the shift mask M (<see cref="ShiftMasks"/>) are added in the score
/// loop. Both products run on the GEMM register tile. Work items are (image, window, head), many small heads
/// per team call; each owns its output slice, so results are identical for any thread count.
/// </summary>
public sealed class WindowAttention
{
    readonly int _maxTokens, _maxHeadDim, _nr;
    readonly SimdWidth _simd;
    readonly float[][] _scratch;

    /// <summary>Per-worker scratch for windows up to <paramref name="maxWindow"/> on a side and heads up to <paramref name="maxHeadDim"/> wide.</summary>
    public WindowAttention(int maxWindow, int maxHeadDim, int threads, SimdWidth simd = 0)
    {
        if (maxWindow < 1 || maxHeadDim < 1) throw new ArgumentOutOfRangeException(nameof(maxWindow), "window and head width must be positive");
        _maxTokens = maxWindow * maxWindow;
        _maxHeadDim = maxHeadDim;
        _simd = simd == 0 ? (Isa.Best == SimdWidth.Scalar ? SimdWidth.V128 : Isa.Best) : simd;
        _nr = 2 * Isa.LanesOf(_simd);
        int nPad = (_maxTokens + _nr - 1) / _nr * _nr, dPad = (maxHeadDim + _nr - 1) / _nr * _nr;
        _scratch = new float[threads][];
        for (int t = 0; t < threads; t++)
            _scratch[t] = new float[nPad * maxHeadDim + dPad * _maxTokens + _maxTokens * maxHeadDim + MicroKernel.Mr * nPad + MicroKernel.Mr * _nr];
    }

    /// <summary>
    /// The relative position bias of every head as [heads][N][stride] (N = window², stride <see cref="WindowGeometry.Stride"/>)
    /// from timm's table [(2w−1)², heads]: entry (i, j) is table[(Δrow + w − 1)·(2w − 1) + Δcol + w − 1], Δ = token i − token j.
    /// </summary>
    public static void ExpandBias(ReadOnlySpan<float> table, int window, int heads, Span<float> dst)
    {
        int n = window * window, side = 2 * window - 1, ld = new WindowGeometry(window, window, window, 0).Stride;
        if (table.Length != side * side * heads) throw new ArgumentException($"bias table has {table.Length} values, expected {side * side}×{heads}", nameof(table));
        if (dst.Length < heads * n * ld) throw new ArgumentException("bias buffer too small", nameof(dst));
        dst[..(heads * n * ld)].Clear();
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                int index = (i / window - j / window + window - 1) * side + (i % window - j % window + window - 1);
                for (int h = 0; h < heads; h++) dst[(h * n + i) * ld + j] = table[index * heads + h];
            }
    }

    /// <summary>
    /// timm's shifted-window mask as [4][N][stride]: matrix t is for windows in the last window column (bit 0) and/or
    /// the last window row (bit 1) of the padded map, where the rolled map joins regions that were not neighbours;
    /// −100 between tokens of different regions (split at padded − window and padded − shift), 0 elsewhere.
    /// </summary>
    public static void ShiftMasks(WindowGeometry g, Span<float> dst)
    {
        int w = g.Window, n = g.Tokens, ld = g.Stride;
        if (dst.Length < 4 * n * ld) throw new ArgumentException("mask buffer too small", nameof(dst));
        dst[..(4 * n * ld)].Clear();
        for (int type = 1; type < 4; type++)
        {
            bool lastCol = (type & 1) != 0, lastRow = (type & 2) != 0;
            int Region(int t) => (lastRow ? (t / w < w - g.Shift ? 1 : 2) : 0) * 3 + (lastCol ? (t % w < w - g.Shift ? 1 : 2) : 0);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    if (Region(i) != Region(j)) dst[(type * n + i) * ld + j] = -100f;
        }
    }

    /// <summary>
    /// qkv: [images·H·W, 3·heads·headDim] in timm's row order [q heads | k heads | v heads]; padQkv: the q, k, v of a
    /// padded token (the qkv bias); bias: <see cref="ExpandBias"/>'s [heads][N][stride]; masks: <see cref="ShiftMasks"/>'s
    /// (ignored when the shift is 0); output: [images·H·W, heads·headDim], head h at column h·headDim.
    /// </summary>
    public void Forward(WindowGeometry g, ReadOnlySpan<float> qkv, int images, int heads, int headDim, float scale, ReadOnlySpan<float> padQkv,
        ReadOnlySpan<float> bias, ReadOnlySpan<float> masks, Span<float> output, ThreadTeam team)
    {
        int n = g.Tokens, c = heads * headDim, ld = g.Stride;
        if (g.Window < 1 || g.Height < 1 || g.Width < 1 || g.Shift < 0 || g.Shift >= g.Window)
            throw new ArgumentException($"window geometry {g} is not a map of positive size with 0 ≤ shift < window", nameof(g));
        if (n > _maxTokens || headDim > _maxHeadDim)
            throw new ArgumentException($"window {g.Window} and head width {headDim} exceed the {_maxTokens} tokens / {_maxHeadDim} set up for", nameof(g));
        if (team.Threads > _scratch.Length) throw new ArgumentException($"set up for {_scratch.Length} threads, called with {team.Threads}", nameof(team));
        if (images < 1 || heads < 1 || headDim < 1) throw new ArgumentOutOfRangeException(nameof(images), "images, heads and head width must be positive");
        long tokens = (long)images * g.Height * g.Width;
        if (qkv.Length < tokens * 3 * c) throw new ArgumentException("qkv buffer too small", nameof(qkv));
        if (output.Length < tokens * c) throw new ArgumentException("output buffer too small", nameof(output));
        if (padQkv.Length < 3 * c) throw new ArgumentException("padQkv needs one qkv row", nameof(padQkv));
        if (bias.Length < (long)heads * n * ld) throw new ArgumentException("bias buffer too small", nameof(bias));
        if (g.Shift > 0 && masks.Length < 4L * n * ld) throw new ArgumentException("mask buffer too small", nameof(masks));
        if (!(scale > 0)) throw new ArgumentOutOfRangeException(nameof(scale), scale, "must be positive");
        unsafe
        {
            fixed (float* pq = qkv) fixed (float* pp = padQkv) fixed (float* pb = bias) fixed (float* pm = masks) fixed (float* po = output)
                team.For(images * g.Windows * heads, new Body(this, g, pq, pp, pb, g.Shift > 0 ? pm : null, po, heads, headDim, scale));
        }
    }

    static int ValuePanelWidth(int remaining, int nr) => remaining > nr / 2 ? nr : nr / 2;

    unsafe readonly struct Body(WindowAttention a, WindowGeometry g, float* qkv, float* pad, float* bias, float* masks, float* output,
        int heads, int headDim, float scale) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            int* source = stackalloc int[g.Tokens];
            int windows = g.Windows, lastWindow = -1, type = 0;
            fixed (float* scratch = a._scratch[worker])
            {
                for (int item = start; item < end; item++)
                {
                    // Items are head-minor: a window's token rows are found once for all its heads.
                    int h = item % heads, imageWindow = item / heads;
                    if (imageWindow != lastWindow)
                    {
                        type = WindowTokens(imageWindow % windows, imageWindow / windows, source);
                        lastWindow = imageWindow;
                    }
                    switch (a._simd)
                    {
                        case SimdWidth.V512: Head<V512, Vector512<float>>(h, type, source, scratch); break;
                        case SimdWidth.V256: Head<V256, Vector256<float>>(h, type, source, scratch); break;
                        default: Head<V128, Vector128<float>>(h, type, source, scratch); break;
                    }
                }
            }
        }

        /// <summary>Each window token's row in qkv/output (−1 for padding), and the window's mask type.</summary>
        int WindowTokens(int win, int image, int* source)
        {
            int w = g.Window, cols = g.PaddedWidth / w, wy = win / cols, wx = win % cols, s = g.Shift;
            for (int t = 0; t < g.Tokens; t++)
            {
                int i = wy * w + t / w, j = wx * w + t % w;
                // The rolled map's (i, j) is the original ((i + s) mod H, (j + s) mod W); past H or W it is padding.
                source[t] = i < g.Height && j < g.Width ? (image * g.Height + (i + s) % g.Height) * g.Width + (j + s) % g.Width : -1;
            }
            return (wx == cols - 1 ? 1 : 0) | (wy == g.PaddedHeight / w - 1 ? 2 : 0);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Head<TOps, TV>(int h, int type, int* source, float* scratch) where TOps : struct, IVec<TV> where TV : struct
        {
            int n = g.Tokens, nr = a._nr, keyPanels = (n + nr - 1) / nr, nPad = keyPanels * nr, vc = TOps.Count, d = headDim, ld = g.Stride;
            int c = heads * d, row = 3 * c;
            float* kp = scratch;                                   // [keyPanels][d][nr]: K_hᵀ, zero past n
            float* vp = kp + nPad * a._maxHeadDim;                 // V_h in panels [n][width], zero past d
            float* q = vp + (a._maxHeadDim + nr - 1) / nr * nr * a._maxTokens; // [n][d]
            float* s = q + a._maxTokens * a._maxHeadDim;           // [Mr][nPad]: scores, then probabilities
            float* tile = s + MicroKernel.Mr * nPad;               // [Mr][nr]
            int qOff = h * d, kOff = c + h * d, vOff = 2 * c + h * d;

            new Span<float>(kp + (keyPanels - 1) * nr * d, nr * d).Clear();
            for (int t = 0; t < n; t++)
            {
                float* src = source[t] >= 0 ? qkv + (long)source[t] * row : pad;
                float* kdst = kp + t / nr * nr * d + t % nr;
                for (int e = 0; e < d; e++) kdst[e * nr] = src[kOff + e];
                new ReadOnlySpan<float>(src + qOff, d).CopyTo(new Span<float>(q + t * d, d));
            }
            for (int col0 = 0, off = 0; col0 < d; off += n * ValuePanelWidth(d - col0, nr), col0 += ValuePanelWidth(d - col0, nr))
            {
                int w = ValuePanelWidth(d - col0, nr), cols = Math.Min(w, d - col0);
                for (int t = 0; t < n; t++)
                {
                    float* v = (source[t] >= 0 ? qkv + (long)source[t] * row : pad) + vOff + col0;
                    float* dst = vp + off + t * w;
                    for (int e = 0; e < cols; e++) dst[e] = v[e];
                    for (int e = cols; e < w; e++) dst[e] = 0f;
                }
            }

            float* biasH = bias + (long)h * n * ld;
            float* mask = masks != null && type != 0 ? masks + (long)type * n * ld : null;
            TV negInf = TOps.Broadcast(float.NegativeInfinity), vs = TOps.Broadcast(scale);
            TV tailMask = TOps.LessThan(TOps.Indices, TOps.Broadcast(n % vc == 0 ? vc : n % vc));
            int lastVec = (n - 1) / vc * vc;
            float* max = stackalloc float[MicroKernel.Mr];
            float* inv = stackalloc float[MicroKernel.Mr];
            for (int i0 = 0; i0 < n; i0 += MicroKernel.Mr)
            {
                int mr = Math.Min(MicroKernel.Mr, n - i0);
                for (int p = 0; p < keyPanels; p++)
                    MicroKernel.Run<TOps, TV>(mr, ref q[i0 * d], d, ref *(kp + p * nr * d), d, ref s[p * nr], ldc: nPad);
                for (int r = 0; r < mr; r++)
                {
                    float* sr = s + r * nPad, br = biasH + (i0 + r) * ld, mrow = mask != null ? mask + (i0 + r) * ld : null;
                    // logits = scale·q·k + bias (+ mask), kept in the score row; lanes past n are −∞.
                    TV vmax = negInf;
                    for (int j = 0; j <= lastVec; j += vc)
                    {
                        TV l = TOps.Fma(TOps.Load(ref sr[j]), vs, TOps.Load(ref br[j]));
                        if (mrow != null) l = TOps.Add(l, TOps.Load(ref mrow[j]));
                        if (j == lastVec) l = TOps.Select(tailMask, l, negInf);
                        TOps.Store(ref sr[j], l);
                        vmax = TOps.MaxNative(vmax, l);
                    }
                    max[r] = TOps.MaxAcross(vmax);
                }
                // exp(l − max) = 2^(l·log2 e − max·log2 e).
                SoftmaxRows.Exp<TOps, TV>(s, mr, nPad, n, FastExp.Log2E, max, inv);
                for (int col0 = 0, off = 0; col0 < d; off += n * ValuePanelWidth(d - col0, nr), col0 += ValuePanelWidth(d - col0, nr))
                {
                    int w = ValuePanelWidth(d - col0, nr), cols = Math.Min(w, d - col0);
                    if (w == nr) MicroKernel.Run<TOps, TV>(mr, ref *s, nPad, ref *(vp + off), n, ref *tile);
                    else MicroKernel.RunNarrow<TOps, TV>(mr, ref *s, nPad, ref *(vp + off), n, ref *tile, w);
                    for (int r = 0; r < mr; r++)
                    {
                        int token = source[i0 + r];
                        if (token < 0) continue;
                        float* o = output + (long)token * c + qOff + col0;
                        float* t = tile + r * w;
                        TV scaleR = TOps.Broadcast(inv[r]);
                        int e = 0;
                        for (; e + vc <= cols; e += vc) TOps.Store(ref o[e], TOps.Mul(TOps.Load(ref t[e]), scaleR));
                        for (; e < cols; e++) o[e] = t[e] * inv[r];
                    }
                }
            }
        }
    }
}
