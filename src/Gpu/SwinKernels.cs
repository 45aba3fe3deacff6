using ILGPU;
using ILGPU.Algorithms;

namespace VitSparse.Gpu;

/// <summary>
/// Swin's kernels beyond DeiT's: (shifted) window attention, the 2×2 patch merge and mean pooling. Simple
/// one-thread-per-output kernels: correctness first (window attention recomputes each query's scores per output column).
/// </summary>
static class SwinKernels
{
    /// <summary>
    /// One thread per output element (token, channel) of the unpadded map. The token's place in the rolled map
    /// ((y − shift) mod H, (x − shift) mod W) gives its window and position; each key of the window maps back to its
    /// original token ((i + shift) mod H, (j + shift) mod W), or to the padded row (the qkv bias) past H or W. The −100
    /// shift mask comes from the window's place (last window row/column) and the two tokens' regions, as
    /// <c>WindowAttention.ShiftMasks</c> builds it. Softmax is stable: max pass, then exp-sum and ·V in one pass.
    /// </summary>
    public static void WindowAttention(Index1D i, ArrayView<float> qkv, ArrayView<float> pad, ArrayView<float> bias, ArrayView<float> output, WindowShape s)
    {
        int w = s.Window, n = w * w, d = s.HeadDim, c = s.Heads * d, shift = s.Shift;
        int ch = i % c, token = i / c, h = ch / d, e = ch % d;
        int x = token % s.Width, y = token / s.Width % s.Height, image = token / s.Width / s.Height;
        int ry = (y - shift + s.Height) % s.Height, rx = (x - shift + s.Width) % s.Width;
        int wy = ry / w, wx = rx / w, ti = ry % w * w + rx % w;
        int paddedH = (s.Height + w - 1) / w * w, paddedW = (s.Width + w - 1) / w * w;
        bool lastRow = shift > 0 && wy == paddedH / w - 1, lastCol = shift > 0 && wx == paddedW / w - 1;
        int qOff = h * d, kOff = c + h * d, vOff = 2 * c + h * d, row = 3 * c;
        long q = (long)token * row + qOff;
        int regionI = Region(ti, w, shift, lastRow, lastCol);
        long biasRow = ((long)h * n + ti) * s.Stride;

        float mx = float.NegativeInfinity;
        for (int t = 0; t < n; t++) mx = XMath.Max(mx, Score(qkv, pad, bias, s, q, kOff, d, t, wy, wx, image, biasRow, regionI, lastRow, lastCol));
        float sum = 0f, acc = 0f;
        for (int t = 0; t < n; t++)
        {
            float p = XMath.Exp(Score(qkv, pad, bias, s, q, kOff, d, t, wy, wx, image, biasRow, regionI, lastRow, lastCol) - mx);
            sum += p;
            long src = Source(s, t, wy, wx, image);
            acc += p * (src >= 0 ? qkv[src * row + vOff + e] : pad[vOff + e]);
        }
        output[(long)token * c + ch] = acc * (1f / sum);
    }

    static float Score(ArrayView<float> qkv, ArrayView<float> pad, ArrayView<float> bias, WindowShape s, long q, int kOff, int d, int t,
        int wy, int wx, int image, long biasRow, int regionI, bool lastRow, bool lastCol)
    {
        long src = Source(s, t, wy, wx, image);
        float dot = 0f;
        if (src >= 0) { long k = src * 3 * s.Heads * d + kOff; for (int e = 0; e < d; e++) dot += qkv[q + e] * qkv[k + e]; }
        else for (int e = 0; e < d; e++) dot += qkv[q + e] * pad[kOff + e];
        float l = dot * s.Scale + bias[biasRow + t];
        if (Region(t, s.Window, s.Shift, lastRow, lastCol) != regionI) l += -100f;
        return l;
    }

    /// <summary>The qkv row of window token t (−1 for padding).</summary>
    static long Source(WindowShape s, int t, int wy, int wx, int image)
    {
        int w = s.Window, i = wy * w + t / w, j = wx * w + t % w;
        if (i >= s.Height || j >= s.Width) return -1;
        return ((long)image * s.Height + (i + s.Shift) % s.Height) * s.Width + (j + s.Shift) % s.Width;
    }

    static int Region(int t, int w, int shift, bool lastRow, bool lastCol) =>
        (lastRow ? (t / w < w - shift ? 1 : 2) : 0) * 3 + (lastCol ? (t % w < w - shift ? 1 : 2) : 0);

    /// <summary>One thread per output element of [images, H/2, W/2, 4C]: part p of a row is x(2i + (p &amp; 1), 2j + (p &gt;&gt; 1)).</summary>
    public static void PatchMerge(Index1D i, ArrayView<float> x, ArrayView<float> dst, int height, int width, int channels)
    {
        int oh = height / 2, ow = width / 2, c4 = 4 * channels;
        int col = i % c4, part = col / channels, k = col % channels;
        int j = i / c4 % ow, r = i / c4 / ow % oh, image = i / c4 / ow / oh;
        int y = 2 * r + (part & 1), xc = 2 * j + (part >> 1);
        dst[i] = x[(((long)image * height + y) * width + xc) * channels + k];
    }

    /// <summary>One thread per (image, channel): the sum over tokens in token order, times 1/tokens.</summary>
    public static void MeanPool(Index1D i, ArrayView<float> x, ArrayView<float> dst, int tokens, int channels)
    {
        int image = i / channels, k = i % channels;
        float sum = 0f;
        for (int t = 0; t < tokens; t++) sum += x[((long)image * tokens + t) * channels + k];
        dst[i] = sum * (1f / tokens);
    }
}

/// <summary>The shape arguments of <see cref="SwinKernels.WindowAttention"/>.</summary>
struct WindowShape
{
    /// <summary>Map height and width (unpadded).</summary>
    public int Height, Width;
    /// <summary>Window side and cyclic shift.</summary>
    public int Window, Shift;
    /// <summary>Heads and head width.</summary>
    public int Heads, HeadDim;
    /// <summary>Row stride of the expanded bias.</summary>
    public int Stride;
    /// <summary>Softmax scale.</summary>
    public float Scale;
}
