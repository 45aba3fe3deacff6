using VitSparse.Runtime.Models;

namespace VitSparse.Runtime.Images;

/// <summary>
/// timm/torchvision evaluation preprocessing, reproduced to the pixel: resize the shorter side to
/// ⌊size / crop_pct⌋ with PIL's bicubic (a = −0.5, antialiased when shrinking: the kernel is stretched by
/// the scale), center crop to size, scale to [0, 1], normalise by mean/std. PIL resamples 8-bit images in
/// two separable passes (horizontal, then vertical) in 22-bit fixed point, rounding to 8 bits after each
/// pass; doing the same here keeps results within 1/255 of torchvision (checked on real photos).
/// Only the center-crop window of the resized image is computed (its columns' and rows' coefficients, and
/// the horizontal pass on just the input rows the window's rows read), which gives the same bits as the
/// full resize followed by the crop, with memory O(size² + input) whatever the aspect ratio.
/// </summary>
public static class Preprocess
{
    const int PrecisionBits = 32 - 8 - 2;

    /// <summary>Smallest crop_pct accepted: ⌊size / crop_pct⌋ is then at most 20·size.</summary>
    public const float MinCropPct = 0.05f;

    /// <summary>RGB (or gray) 8-bit image → one CHW input of the model (its size, crop_pct, mean and std).</summary>
    public static void ToTensor(DecodedImage img, IImageModelConfig model, Span<float> chw) =>
        ToTensor(img, model.ImageSize, model.CropPct, model.Mean, model.Std, chw);

    /// <summary>
    /// RGB (or gray, or RGBA: alpha is dropped) 8-bit image → CHW floats for a model of the given size,
    /// crop_pct (in [<see cref="MinCropPct"/>, 1]), mean (finite) and std (finite, positive); 1 or 3 channels,
    /// as many as mean has. Bad arguments and extreme geometry are <see cref="InputException"/>s.
    /// </summary>
    public static void ToTensor(DecodedImage img, int size, float cropPct, ReadOnlySpan<float> mean, ReadOnlySpan<float> std, Span<float> chw)
    {
        int channels = mean.Length;
        if (channels is not (1 or 3)) throw new InputException("mean", $"needs 1 or 3 values (one per channel), got {channels}");
        if (std.Length != channels) throw new InputException("std", $"needs {channels} values like mean, got {std.Length}");
        for (int c = 0; c < channels; c++)
        {
            if (!float.IsFinite(mean[c])) throw new InputException("mean", $"value {c} is {mean[c]}, not a finite number");
            if (!float.IsFinite(std[c]) || !(std[c] > 0)) throw new InputException("std", $"value {c} is {std[c]}, not a finite positive number");
        }
        if (!(cropPct >= MinCropPct && cropPct <= 1)) throw new InputException("crop_pct", $"{cropPct} is outside [{MinCropPct}, 1]");
        if (size < 1) throw new InputException("size", $"must be at least 1, got {size}");
        if (chw.Length != (long)channels * size * size) throw new InputException("chw", $"output needs {channels}×{size}×{size} floats, got {chw.Length}");
        CheckImage(img);

        var (left, top, ow, oh) = CropWindow(img.Width, img.Height, size, cropPct);
        var (hb, hk, hn) = Coefficients(img.Width, ow, left, size);
        var (vb, vk, vn) = Coefficients(img.Height, oh, top, size);
        // Input rows the window's output rows read: the only rows the horizontal pass needs.
        int yFirst = int.MaxValue, yEnd = 0;
        for (int y = 0; y < size; y++) { yFirst = Math.Min(yFirst, vb[y]); yEnd = Math.Max(yEnd, vb[y] + vn[y]); }
        int rows = yEnd - yFirst, w = img.Width;
        var tmp = new byte[(long)rows * size * channels];
        var converted = img.Channels == channels ? null : new byte[(long)w * channels];
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<byte> src = converted == null
                ? img.Pixels.AsSpan((int)((long)(yFirst + r) * w * channels), w * channels)
                : ConvertRow(img, yFirst + r, channels, converted);
            for (int x = 0; x < size; x++)
            {
                int b = hb[x], n = hn[x];
                var k = hk[x];
                for (int c = 0; c < channels; c++)
                {
                    long ss = 1L << (PrecisionBits - 1);
                    for (int i = 0; i < n; i++) ss += src[(b + i) * channels + c] * (long)k[i];
                    tmp[((long)r * size + x) * channels + c] = Clip8(ss);
                }
            }
        }
        Span<float> inv = stackalloc float[channels];
        for (int c = 0; c < channels; c++) inv[c] = 1f / std[c];
        for (int y = 0; y < size; y++)
        {
            int b = vb[y] - yFirst, n = vn[y];
            var k = vk[y];
            for (int x = 0; x < size; x++)
                for (int c = 0; c < channels; c++)
                {
                    long ss = 1L << (PrecisionBits - 1);
                    for (int i = 0; i < n; i++) ss += tmp[((long)(b + i) * size + x) * channels + c] * (long)k[i];
                    chw[(c * size + y) * size + x] = (Clip8(ss) / 255f - mean[c]) * inv[c];
                }
        }
    }

    /// <summary>
    /// torchvision's Resize(⌊size / crop_pct⌋) + CenterCrop(size) geometry: the resized image's size and the
    /// crop's top-left corner in it. Sizes that overflow PIL's int are refused.
    /// </summary>
    internal static (int Left, int Top, int ResizedW, int ResizedH) CropWindow(int w, int h, int size, float cropPct)
    {
        long resize = (long)Math.Floor(size / cropPct);
        (long ow, long oh) = w <= h ? (resize, resize * h / w) : (resize * w / h, resize);
        if (ow > int.MaxValue || oh > int.MaxValue)
            throw new InputException("image", $"{w}×{h} resized to a shorter side of {resize} would be {ow}×{oh} pixels: the aspect ratio is too extreme");
        if (ow < size || oh < size) throw new InputException("image", $"resized to {ow}×{oh}, smaller than the {size}×{size} crop");
        int top = (int)Math.Round((oh - size) / 2.0, MidpointRounding.ToEven), left = (int)Math.Round((ow - size) / 2.0, MidpointRounding.ToEven);
        return (left, top, (int)ow, (int)oh);
    }

    static void CheckImage(DecodedImage img)
    {
        if (img.Width < 1 || img.Height < 1) throw new InputException("image", $"{img.Width}×{img.Height} is empty");
        if (img.Channels is not (1 or 3 or 4)) throw new InputException("image", $"{img.Channels} channels: expected 1 (gray), 3 (RGB) or 4 (RGBA)");
        if (img.Pixels.Length != (long)img.Width * img.Height * img.Channels)
            throw new InputException("image", $"{img.Pixels.Length} bytes do not hold {img.Width}×{img.Height}×{img.Channels} pixels");
    }

    /// <summary>
    /// One input row in the model's channels: drops alpha; turns gray into RGB or RGB into gray (ITU-R 601-2
    /// luma, as PIL's convert("L")), which PIL does before resizing.
    /// </summary>
    static ReadOnlySpan<byte> ConvertRow(DecodedImage img, int y, int channels, byte[] dst)
    {
        int w = img.Width, ic = img.Channels;
        var src = img.Pixels.AsSpan((int)((long)y * w * ic), w * ic);
        for (int i = 0; i < w; i++)
        {
            int s = i * ic;
            if (channels == 1)
                dst[i] = ic >= 3 ? (byte)((src[s] * 19595 + src[s + 1] * 38470 + src[s + 2] * 7471 + 0x8000) >> 16) : src[s];
            else
                for (int c = 0; c < 3; c++) dst[i * 3 + c] = ic >= 3 ? src[s + c] : src[s];
        }
        return dst;
    }

    /// <summary>PIL's Image.resize(size, BICUBIC) for 8-bit images (the whole image; ToTensor computes only the crop).</summary>
    public static DecodedImage Resize(DecodedImage img, int outW, int outH)
    {
        CheckImage(img);
        if (outW < 1 || outH < 1) throw new InputException("size", $"{outW}×{outH} is empty");
        int ch = img.Channels;
        if ((long)outW * Math.Max(outH, img.Height) * ch > Array.MaxLength) throw new InputException("size", $"{outW}×{outH} is too large to resize into");
        var (hb, hk, hn) = Coefficients(img.Width, outW, 0, outW);
        var (vb, vk, vn) = Coefficients(img.Height, outH, 0, outH);
        var tmp = new byte[(long)outW * img.Height * ch];
        for (int y = 0; y < img.Height; y++)
            for (int x = 0; x < outW; x++)
                for (int c = 0; c < ch; c++)
                {
                    long ss = 1L << (PrecisionBits - 1);
                    for (int i = 0; i < hn[x]; i++) ss += img.Pixels[((long)y * img.Width + hb[x] + i) * ch + c] * (long)hk[x][i];
                    tmp[((long)y * outW + x) * ch + c] = Clip8(ss);
                }
        var dst = new byte[(long)outW * outH * ch];
        for (int y = 0; y < outH; y++)
            for (int x = 0; x < outW; x++)
                for (int c = 0; c < ch; c++)
                {
                    long ss = 1L << (PrecisionBits - 1);
                    for (int i = 0; i < vn[y]; i++) ss += tmp[((long)(vb[y] + i) * outW + x) * ch + c] * (long)vk[y][i];
                    dst[((long)y * outW + x) * ch + c] = Clip8(ss);
                }
        return new DecodedImage(outW, outH, ch, dst);
    }

    static byte Clip8(long ss)
    {
        long v = ss >> PrecisionBits;
        return (byte)(v < 0 ? 0 : v > 255 ? 255 : v);
    }

    static double Bicubic(double x)
    {
        const double a = -0.5;
        if (x < 0) x = -x;
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
        return 0;
    }

    /// <summary>
    /// PIL's precompute_coeffs for resizing <paramref name="inSize"/> to <paramref name="outSize"/>, for the
    /// <paramref name="count"/> output pixels from <paramref name="first"/> on: first input index, fixed-point
    /// weights, number of weights.
    /// </summary>
    static (int[] Bounds, int[][] Weights, int[] Counts) Coefficients(int inSize, int outSize, int first, int count)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = 2.0 * filterScale;
        var bounds = new int[count];
        var counts = new int[count];
        var weights = new int[count][];
        for (int j = 0; j < count; j++)
        {
            double center = ((long)first + j + 0.5) * scale;
            double ww = 0, ss = 1.0 / filterScale;
            int xmin = Math.Max((int)(center - support + 0.5), 0);
            int xmax = Math.Min((int)(center + support + 0.5), inSize) - xmin;
            var k = new double[xmax];
            for (int i = 0; i < xmax; i++) { k[i] = Bicubic((i + xmin - center + 0.5) * ss); ww += k[i]; }
            var fixedK = new int[xmax];
            for (int i = 0; i < xmax; i++)
            {
                double v = ww != 0 ? k[i] / ww : 0;
                fixedK[i] = (int)(v < 0 ? -0.5 + v * (1 << PrecisionBits) : 0.5 + v * (1 << PrecisionBits));
            }
            bounds[j] = xmin; counts[j] = xmax; weights[j] = fixedK;
        }
        return (bounds, weights, counts);
    }
}
