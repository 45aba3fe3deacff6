using VitSparse.Runtime.Models;

namespace VitSparse.Runtime.Images;

/// <summary>
/// timm/torchvision evaluation preprocessing, reproduced to the pixel: resize the shorter side to
/// ⌊size / crop_pct⌋ with PIL's bicubic (a = −0.5, antialiased when shrinking: the kernel is stretched by
/// the scale), center crop to size, scale to [0, 1], normalise by mean/std. PIL resamples 8-bit images in
/// two separable passes (horizontal, then vertical) in 22-bit fixed point, rounding to 8 bits after each
/// pass; doing the same here keeps results within 1/255 of torchvision (checked on real photos).
/// </summary>
public static class Preprocess
{
    const int PrecisionBits = 32 - 8 - 2;

    /// <summary>RGB (or gray) 8-bit image → one CHW input of the model (its size, crop_pct, mean and std).</summary>
    public static void ToTensor(DecodedImage img, VitConfig model, Span<float> chw) =>
        ToTensor(img, model.ImageSize, model.CropPct, model.Mean, model.Std, chw);

    /// <summary>RGB (or gray) 8-bit image → CHW floats for a model of the given size/crop/mean/std.</summary>
    public static void ToTensor(DecodedImage img, int size, float cropPct, ReadOnlySpan<float> mean, ReadOnlySpan<float> std, Span<float> chw)
    {
        int channels = mean.Length;
        if (chw.Length != channels * size * size) throw new ArgumentException($"output needs {channels}×{size}×{size} floats", nameof(chw));
        var rgb = ToChannels(img, channels);
        int resize = (int)Math.Floor(size / cropPct);
        int w = rgb.Width, h = rgb.Height;
        (int ow, int oh) = w <= h ? (resize, (int)((long)resize * h / w)) : ((int)((long)resize * w / h), resize);
        var resized = Resize(rgb, ow, oh);
        if (ow < size || oh < size) throw new InputException("image", $"resized to {ow}×{oh}, smaller than the {size}×{size} crop");
        int top = (int)Math.Round((oh - size) / 2.0, MidpointRounding.ToEven), left = (int)Math.Round((ow - size) / 2.0, MidpointRounding.ToEven);
        for (int c = 0; c < channels; c++)
        {
            float inv = 1f / std[c];
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                    chw[(c * size + y) * size + x] = (resized.Pixels[((top + y) * ow + left + x) * channels + c] / 255f - mean[c]) * inv;
        }
    }

    /// <summary>Drops alpha; turns gray into RGB or RGB into gray (ITU-R 601-2 luma, as PIL's convert("L")) to match the model.</summary>
    static DecodedImage ToChannels(DecodedImage img, int channels)
    {
        if (img.Channels == channels) return img;
        int n = img.Width * img.Height;
        var dst = new byte[n * channels];
        for (int i = 0; i < n; i++)
        {
            int src = i * img.Channels;
            if (channels == 1)
            {
                if (img.Channels >= 3)
                    dst[i] = (byte)((img.Pixels[src] * 19595 + img.Pixels[src + 1] * 38470 + img.Pixels[src + 2] * 7471 + 0x8000) >> 16);
                else dst[i] = img.Pixels[src];
            }
            else
                for (int c = 0; c < 3; c++) dst[i * 3 + c] = img.Channels >= 3 ? img.Pixels[src + c] : img.Pixels[src];
        }
        return new DecodedImage(img.Width, img.Height, channels, dst);
    }

    /// <summary>PIL's Image.resize(size, BICUBIC) for 8-bit images.</summary>
    public static DecodedImage Resize(DecodedImage img, int outW, int outH)
    {
        int ch = img.Channels;
        var (hb, hk, hn) = Coefficients(img.Width, outW);
        var (vb, vk, vn) = Coefficients(img.Height, outH);
        var tmp = new byte[outW * img.Height * ch];
        for (int y = 0; y < img.Height; y++)
            for (int x = 0; x < outW; x++)
                for (int c = 0; c < ch; c++)
                {
                    long ss = 1L << (PrecisionBits - 1);
                    for (int i = 0; i < hn[x]; i++) ss += img.Pixels[(y * img.Width + hb[x] + i) * ch + c] * (long)hk[x][i];
                    tmp[(y * outW + x) * ch + c] = Clip8(ss);
                }
        var dst = new byte[outW * outH * ch];
        for (int y = 0; y < outH; y++)
            for (int x = 0; x < outW; x++)
                for (int c = 0; c < ch; c++)
                {
                    long ss = 1L << (PrecisionBits - 1);
                    for (int i = 0; i < vn[y]; i++) ss += tmp[((vb[y] + i) * outW + x) * ch + c] * (long)vk[y][i];
                    dst[(y * outW + x) * ch + c] = Clip8(ss);
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

    /// <summary>Per output pixel: first input index, fixed-point weights, count (PIL's precompute_coeffs).</summary>
    static (int[] Bounds, int[][] Weights, int[] Counts) Coefficients(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = 2.0 * filterScale;
        var bounds = new int[outSize];
        var counts = new int[outSize];
        var weights = new int[outSize][];
        for (int x = 0; x < outSize; x++)
        {
            double center = (x + 0.5) * scale;
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
            bounds[x] = xmin; counts[x] = xmax; weights[x] = fixedK;
        }
        return (bounds, weights, counts);
    }
}
