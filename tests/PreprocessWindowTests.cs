using VitSparse.Runtime;
using VitSparse.Runtime.Images;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// The full PIL resize followed by the center crop, as Preprocess.ToTensor computed it before it learned to
/// compute only the crop window: the reference the windowed path must equal bit for bit.
/// </summary>
static class FullResizeReference
{
    public static float[] ToTensor(DecodedImage img, int size, float cropPct, float[] mean, float[] std)
    {
        int channels = mean.Length;
        var rgb = ToChannels(img, channels);
        int resize = (int)Math.Floor(size / cropPct);
        int w = rgb.Width, h = rgb.Height;
        (int ow, int oh) = w <= h ? (resize, (int)((long)resize * h / w)) : ((int)((long)resize * w / h), resize);
        var resized = Preprocess.Resize(rgb, ow, oh);
        int top = (int)Math.Round((oh - size) / 2.0, MidpointRounding.ToEven), left = (int)Math.Round((ow - size) / 2.0, MidpointRounding.ToEven);
        var chw = new float[channels * size * size];
        for (int c = 0; c < channels; c++)
        {
            float inv = 1f / std[c];
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                    chw[(c * size + y) * size + x] = (resized.Pixels[((long)(top + y) * ow + left + x) * channels + c] / 255f - mean[c]) * inv;
        }
        return chw;
    }

    static DecodedImage ToChannels(DecodedImage img, int channels)
    {
        if (img.Channels == channels) return img;
        int n = img.Width * img.Height;
        var dst = new byte[n * channels];
        for (int i = 0; i < n; i++)
        {
            int src = i * img.Channels;
            if (channels == 1)
                dst[i] = img.Channels >= 3
                    ? (byte)((img.Pixels[src] * 19595 + img.Pixels[src + 1] * 38470 + img.Pixels[src + 2] * 7471 + 0x8000) >> 16)
                    : img.Pixels[src];
            else
                for (int c = 0; c < 3; c++) dst[i * 3 + c] = img.Channels >= 3 ? img.Pixels[src + c] : img.Pixels[src];
        }
        return new DecodedImage(img.Width, img.Height, channels, dst);
    }

    public static float[] Windowed(DecodedImage img, int size, float cropPct, float[] mean, float[] std)
    {
        var chw = new float[mean.Length * size * size];
        Preprocess.ToTensor(img, size, cropPct, mean, std, chw);
        return chw;
    }
}

public class PreprocessWindowTests
{
    static readonly float[] Mean3 = [0.485f, 0.456f, 0.406f], Std3 = [0.229f, 0.224f, 0.225f], Mean1 = [0.5f], Std1 = [0.25f];

    static DecodedImage Noise(int w, int h, int channels, int seed)
    {
        var px = new byte[w * h * channels];
        new Random(seed).NextBytes(px);
        return new DecodedImage(w, h, channels, px);
    }

    public static TheoryData<string, int, float> Photos => new()
    {
        { "photo_fruits.png", 64, 0.875f }, { "photo_baboon.png", 64, 0.875f }, { "photo_chicky.png", 64, 0.875f },
        { "photo_fruits.png", 224, 0.875f }, { "photo_baboon.png", 100, 0.9f }, { "photo_chicky.png", 17, 1f },
        { "photo_fruits.png", 31, 0.05f }, { "gradient.jpg", 20, 0.95f }, { "png_gray8.png", 9, 0.7f }, { "png_rgba16_adam7.png", 11, 1f },
    };

    [Theory]
    [MemberData(nameof(Photos))]
    public void Window_equals_the_full_resize_and_crop_on_real_images(string file, int size, float cropPct)
    {
        var img = ImageFile.Decode(Fixtures.Path_(file));
        Assert.Equal(FullResizeReference.ToTensor(img, size, cropPct, Mean3, Std3), FullResizeReference.Windowed(img, size, cropPct, Mean3, Std3));
        Assert.Equal(FullResizeReference.ToTensor(img, size, cropPct, Mean1, Std1), FullResizeReference.Windowed(img, size, cropPct, Mean1, Std1));
    }

    [Theory]
    [InlineData(1, 300, 3)]   // thin: the long side becomes ⌊size/crop⌋·300
    [InlineData(300, 1, 3)]
    [InlineData(2, 517, 1)]
    [InlineData(517, 3, 4)]
    [InlineData(7, 2000, 3)]
    [InlineData(16, 16, 3)]  // the crop is the whole image
    [InlineData(5, 6, 1)]    // upscaled
    [InlineData(640, 480, 3)]
    public void Window_equals_the_full_resize_and_crop_on_any_aspect_ratio(int w, int h, int channels)
    {
        var img = Noise(w, h, channels, seed: w * 1000 + h);
        foreach (var (size, crop) in new[] { (16, 1f), (16, 0.875f), (13, 0.6f) })
        {
            Assert.Equal(FullResizeReference.ToTensor(img, size, crop, Mean3, Std3), FullResizeReference.Windowed(img, size, crop, Mean3, Std3));
            Assert.Equal(FullResizeReference.ToTensor(img, size, crop, Mean1, Std1), FullResizeReference.Windowed(img, size, crop, Mean1, Std1));
        }
    }

    [Theory]
    [InlineData(0f, "crop_pct")]
    [InlineData(1e-3f, "crop_pct")]
    [InlineData(0.049f, "crop_pct")]
    [InlineData(1.01f, "crop_pct")]
    [InlineData(float.PositiveInfinity, "crop_pct")] // what 1e39 becomes as a float
    [InlineData(float.NaN, "crop_pct")]
    public void Crop_pct_outside_its_interval_is_refused(float cropPct, string argument)
    {
        var img = Noise(20, 20, 3, 1);
        var e = Assert.Throws<InputException>(() => Preprocess.ToTensor(img, 8, cropPct, Mean3, Std3, new float[3 * 64]));
        Assert.Equal(argument, e.Argument);
        Preprocess.ToTensor(img, 8, Preprocess.MinCropPct, Mean3, Std3, new float[3 * 64]); // the bounds themselves are fine
        Preprocess.ToTensor(img, 8, 1f, Mean3, Std3, new float[3 * 64]);
    }

    [Fact]
    public void Mean_std_size_and_image_are_checked()
    {
        var img = Noise(20, 20, 3, 1);
        var chw = new float[3 * 64];
        InputException Fails(float[] mean, float[] std, int size = 8, float[]? output = null, DecodedImage? image = null) =>
            Assert.Throws<InputException>(() => Preprocess.ToTensor(image ?? img, size, 0.875f, mean, std, output ?? chw));
        Assert.Equal("mean", Fails([0.5f, float.PositiveInfinity, 0.5f], Std3).Argument);
        Assert.Equal("mean", Fails([float.NaN, 0.5f, 0.5f], Std3).Argument);
        Assert.Equal("std", Fails(Mean3, [0.2f, 0f, 0.2f]).Argument);
        Assert.Equal("std", Fails(Mean3, [0.2f, -1f, 0.2f]).Argument);
        Assert.Equal("std", Fails(Mean3, [0.2f, float.NaN, 0.2f]).Argument);
        Assert.Equal("std", Fails(Mean3, [0.2f, float.PositiveInfinity, 0.2f]).Argument);
        Assert.Equal("std", Fails(Mean3, [0.2f, 0.2f]).Argument);
        Assert.Equal("mean", Fails([0.1f, 0.2f], [0.2f, 0.2f]).Argument);
        Assert.Equal("size", Fails(Mean3, Std3, size: 0).Argument);
        Assert.Equal("chw", Fails(Mean3, Std3, output: new float[3 * 63]).Argument);
        Assert.Equal("image", Fails(Mean3, Std3, image: new DecodedImage(20, 20, 3, new byte[20])).Argument);
        Assert.Equal("image", Fails(Mean3, Std3, image: new DecodedImage(20, 20, 2, new byte[800])).Argument);
        Assert.Equal("image", Fails(Mean3, Std3, image: new DecodedImage(0, 5, 3, [])).Argument);
    }

    [Fact]
    public void Geometry_beyond_int_is_refused_not_overflowed()
    {
        // 1×200000 at size 1000 and crop 0.05: the long side would be 20000·200000 = 4·10⁹ pixels.
        var img = new DecodedImage(1, 200_000, 1, new byte[200_000]);
        var e = Assert.Throws<InputException>(() => Preprocess.ToTensor(img, 1000, 0.05f, Mean1, Std1, new float[1000 * 1000]));
        Assert.Contains("aspect ratio is too extreme", e.Message);
    }
}
