using System.Runtime.InteropServices;
using SkiaSharp;
using VitSparse.Runtime.Models;

namespace VitSparse.Runtime.Images;

/// <summary>8-bit interleaved pixels, row-major, rows packed (stride = Width·Channels).</summary>
public sealed record DecodedImage(int Width, int Height, int Channels, byte[] Pixels);

/// <summary>Image files and camera buffers to <see cref="DecodedImage"/>.</summary>
/// <remarks>
/// JPEG and PNG are decoded by SkiaSharp (Skia's codecs: libjpeg-turbo and libpng inside its native library),
/// into the source's own colours (no colour-space conversion), which gives the pixels PIL gives: exact on
/// JPEG (same libjpeg-turbo settings) and PNG (every colour type, Adam7, 16-bit keeps the high byte).
/// The header is read first and images over <see cref="DefaultMaxSide"/> per side or
/// <see cref="DefaultMaxPixels"/> pixels (PIL's MAX_IMAGE_PIXELS) are refused before any pixel memory is
/// allocated; truncated or corrupt data is an error, never grey or black pixels.
/// </remarks>
public static class ImageFile
{
    /// <summary>Default limit on width and height (the CLI's --max-image-side).</summary>
    public const int DefaultMaxSide = 16384;

    /// <summary>Default limit on width·height, PIL's Image.MAX_IMAGE_PIXELS (the CLI's --max-image-pixels).</summary>
    public const long DefaultMaxPixels = 89_478_485;

    /// <summary>
    /// Decodes a JPEG or PNG by its signature (not its extension). Images wider or taller than
    /// <paramref name="maxSide"/>, or with more than <paramref name="maxPixels"/> pixels, are refused from the
    /// header, before any pixel memory is allocated (decompression bombs).
    /// </summary>
    public static DecodedImage Decode(string path, int maxSide = DefaultMaxSide, long maxPixels = DefaultMaxPixels)
    {
        CheckLimits(maxSide, maxPixels);
        if (!File.Exists(path)) throw new FileFormatException(path, "file not found");
        return Decode(File.ReadAllBytes(path), path, maxSide, maxPixels);
    }

    /// <summary>Decodes JPEG or PNG bytes; <paramref name="name"/> is what errors name (the file).</summary>
    public static DecodedImage Decode(ReadOnlySpan<byte> bytes, string name, int maxSide = DefaultMaxSide, long maxPixels = DefaultMaxPixels)
    {
        CheckLimits(maxSide, maxPixels);
        string kind = bytes.Length >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF ? "JPEG"
            : bytes.Length >= 8 && bytes[..8].SequenceEqual(PngSignature) ? "PNG"
            : throw new FileFormatException(name, "not a JPEG or PNG image (unknown signature)");
        try
        {
            return DecodeWithSkia(bytes, name, kind, maxSide, maxPixels);
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
        {
            throw new VitSparseException($"SkiaSharp's native library (libSkiaSharp, from the SkiaSharp.NativeAssets.Linux.NoDependencies package) could not be loaded; it decodes {kind}", e);
        }
    }

    static ReadOnlySpan<byte> PngSignature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    static void CheckLimits(int maxSide, long maxPixels)
    {
        if (maxSide < 1) throw new InputException(nameof(maxSide), $"must be at least 1, got {maxSide}");
        if (maxPixels < 1) throw new InputException(nameof(maxPixels), $"must be at least 1, got {maxPixels}");
    }

    static unsafe DecodedImage DecodeWithSkia(ReadOnlySpan<byte> bytes, string name, string kind, int maxSide, long maxPixels)
    {
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data) ?? throw new FileFormatException(name, $"corrupt or truncated {kind} header");
        if (codec.EncodedFormat is not (SKEncodedImageFormat.Jpeg or SKEncodedImageFormat.Png))
            throw new FileFormatException(name, $"not a JPEG or PNG image ({codec.EncodedFormat})");
        // Everything up to here read only the header: the limits are checked before any pixel is allocated.
        var info = codec.Info;
        int w = info.Width, h = info.Height;
        if (w <= 0 || h <= 0) throw new FileFormatException(name, $"{kind} has zero size ({w}×{h})");
        if (w > maxSide || h > maxSide)
            throw new FileFormatException(name, $"{kind} is {w}×{h}, above the {maxSide}×{maxSide} limit (raise it with --max-image-side, or maxSide in ImageFile.Decode)");
        long pixels = (long)w * h;
        if (pixels > maxPixels)
            throw new FileFormatException(name, $"{kind} is {w}×{h} = {pixels:N0} pixels, above the limit of {maxPixels:N0} (a decompression-bomb guard, as PIL's MAX_IMAGE_PIXELS; raise it with --max-image-pixels, or maxPixels in ImageFile.Decode)");

        bool gray = info.ColorType == SKColorType.Gray8;
        bool opaque = info.AlphaType == SKAlphaType.Opaque;
        int channels = gray ? 1 : opaque ? 3 : 4;
        if (pixels * Math.Max(channels, 4) > Array.MaxLength)
            throw new FileFormatException(name, $"{kind} is {w}×{h}: too large to decode into one buffer");
        var result = new byte[pixels * channels];
        // The null colour space decodes the source's own values (no ICC/sRGB conversion), as PIL does.
        var dstInfo = new SKImageInfo(w, h, gray ? SKColorType.Gray8 : SKColorType.Rgba8888, gray ? SKAlphaType.Opaque : SKAlphaType.Unpremul, null);
        SKCodecResult status;
        if (channels != 3)
        {
            fixed (byte* dst = result) status = codec.GetPixels(dstInfo, (nint)dst);
        }
        else
        {
            // Opaque colour: Skia writes 4 bytes a pixel; decode into a native buffer and keep RGB.
            nuint size = (nuint)(pixels * 4);
            byte* rgba = (byte*)NativeMemory.Alloc(size);
            try
            {
                status = codec.GetPixels(dstInfo, (nint)rgba);
                if (status == SKCodecResult.Success)
                    for (long i = 0; i < pixels; i++)
                    {
                        result[i * 3] = rgba[i * 4];
                        result[i * 3 + 1] = rgba[i * 4 + 1];
                        result[i * 3 + 2] = rgba[i * 4 + 2];
                    }
            }
            finally { NativeMemory.Free(rgba); }
        }
        return status switch
        {
            SKCodecResult.Success => new DecodedImage(w, h, channels, result),
            SKCodecResult.IncompleteInput => throw new FileFormatException(name, $"truncated or corrupt {kind}: the image data ends or breaks off before the last row"),
            SKCodecResult.ErrorInInput or SKCodecResult.InvalidInput => throw new FileFormatException(name, $"corrupt {kind} image data"),
            _ => throw new FileFormatException(name, $"{kind} could not be decoded ({status})"),
        };
    }

    /// <summary>
    /// Decodes an image file and preprocesses it for <paramref name="model"/> into <paramref name="chw"/>;
    /// every problem, the decoder's or the preprocessing's, names the file.
    /// </summary>
    public static void ToTensor(string path, IImageModelConfig model, Span<float> chw, int maxSide = DefaultMaxSide, long maxPixels = DefaultMaxPixels)
    {
        var img = Decode(path, maxSide, maxPixels);
        try { Preprocess.ToTensor(img, model, chw); }
        catch (InputException e) { throw new FileFormatException(path, e.Message, e); }
    }

    /// <summary>
    /// A camera frame: 8-bit interleaved pixels in <paramref name="order"/>, rows <paramref name="stride"/> bytes
    /// apart (stride ≥ width·bytes per pixel; padding ignored). Returned as RGB (or gray for Gray).
    /// </summary>
    public static DecodedImage FromPixels(ReadOnlySpan<byte> pixels, int width, int height, int stride, PixelOrder order)
    {
        int bpp = order switch { PixelOrder.Gray => 1, PixelOrder.Rgb or PixelOrder.Bgr => 3, _ => 4 };
        if (width < 1 || height < 1) throw new InputException("width/height", $"frame of {width}×{height} is empty");
        if (stride < (long)width * bpp) throw new InputException("stride", $"{stride} bytes is less than a row of {width}×{bpp}");
        if (pixels.Length < (long)stride * (height - 1) + (long)width * bpp)
            throw new InputException("pixels", $"{pixels.Length} bytes cannot hold {height} rows of stride {stride}");
        int channels = order == PixelOrder.Gray ? 1 : 3;
        var dst = new byte[(long)width * height * channels];
        bool bgr = order is PixelOrder.Bgr or PixelOrder.Bgra;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                var p = pixels.Slice(y * stride + x * bpp, bpp);
                long o = ((long)y * width + x) * channels;
                if (channels == 1) dst[o] = p[0];
                else { dst[o] = p[bgr ? 2 : 0]; dst[o + 1] = p[1]; dst[o + 2] = p[bgr ? 0 : 2]; }
            }
        return new DecodedImage(width, height, channels, dst);
    }
}

/// <summary>Channel order of a pixel buffer given to <see cref="ImageFile.FromPixels"/>.</summary>
public enum PixelOrder
{
    /// <summary>3 bytes: red, green, blue.</summary>
    Rgb,
    /// <summary>3 bytes: blue, green, red (OpenCV).</summary>
    Bgr,
    /// <summary>4 bytes: red, green, blue, alpha (ignored).</summary>
    Rgba,
    /// <summary>4 bytes: blue, green, red, alpha (ignored; many camera APIs).</summary>
    Bgra,
    /// <summary>1 byte.</summary>
    Gray,
}
