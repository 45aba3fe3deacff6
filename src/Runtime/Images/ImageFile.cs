namespace VitSparse.Runtime.Images;

/// <summary>Image files and camera buffers to <see cref="DecodedImage"/>.</summary>
public static class ImageFile
{
    /// <summary>
    /// Decodes a JPEG or PNG by its signature (not its extension). Images wider or taller than
    /// <paramref name="maxSide"/> are refused before any pixel memory is allocated (decompression bombs).
    /// </summary>
    public static DecodedImage Decode(string path, int maxSide = JpegDecoder.DefaultMaxSide)
    {
        if (maxSide < 1) throw new InputException(nameof(maxSide), $"must be at least 1, got {maxSide}");
        if (!File.Exists(path)) throw new FileFormatException(path, "file not found");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length >= 2 && bytes[0] == 0xFF && bytes[1] == 0xD8) return JpegDecoder.Decode(bytes, path, maxSide);
        if (bytes.Length >= 8 && bytes[0] == 0x89 && bytes[1] == (byte)'P') return PngDecoder.Decode(bytes, path, maxSide);
        throw new FileFormatException(path, "not a JPEG or PNG image");
    }

    /// <summary>
    /// A camera frame: 8-bit interleaved pixels in <paramref name="order"/>, rows <paramref name="stride"/> bytes
    /// apart (stride ≥ width·bytes per pixel; padding ignored). Returned as RGB (or gray for Gray).
    /// </summary>
    public static DecodedImage FromPixels(ReadOnlySpan<byte> pixels, int width, int height, int stride, PixelOrder order)
    {
        int bpp = order switch { PixelOrder.Gray => 1, PixelOrder.Rgb or PixelOrder.Bgr => 3, _ => 4 };
        if (width < 1 || height < 1) throw new InputException("width/height", $"frame of {width}×{height} is empty");
        if (stride < width * bpp) throw new InputException("stride", $"{stride} bytes is less than a row of {width}×{bpp}");
        if (pixels.Length < (long)stride * (height - 1) + width * bpp)
            throw new InputException("pixels", $"{pixels.Length} bytes cannot hold {height} rows of stride {stride}");
        int channels = order == PixelOrder.Gray ? 1 : 3;
        var dst = new byte[width * height * channels];
        bool bgr = order is PixelOrder.Bgr or PixelOrder.Bgra;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                var p = pixels.Slice(y * stride + x * bpp, bpp);
                int o = (y * width + x) * channels;
                if (channels == 1) dst[o] = p[0];
                else { dst[o] = p[bgr ? 2 : 0]; dst[o + 1] = p[1]; dst[o + 2] = p[bgr ? 0 : 2]; }
            }
        return new DecodedImage(width, height, channels, dst);
    }
}

public enum PixelOrder { Rgb, Bgr, Rgba, Bgra, Gray }
