using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VitSparse.Runtime.Images;

/// <summary>8-bit interleaved pixels, row-major, rows packed (stride = Width·Channels).</summary>
public sealed record DecodedImage(int Width, int Height, int Channels, byte[] Pixels);

/// <summary>
/// JPEG decoding through libjpeg-turbo's TurboJPEG 2.x API (Debian libturbojpeg0), with our own bindings.
/// Decodes to RGB with libjpeg's defaults (accurate integer DCT, fancy upsampling), so pixels equal what
/// PIL/torchvision get from the same library. Any libjpeg warning (a truncated or corrupt stream, which
/// libjpeg would silently fill with grey) is an error, as is a size above the limit (decompression bombs).
/// </summary>
public static partial class JpegDecoder
{
    const string Library = "libturbojpeg.so.0";
    const int PixelFormatRgb = 0;
    const int FlagAccurateDct = 4096, FlagStopOnWarning = 8192;
    public const int DefaultMaxSide = 16384;

    public static DecodedImage Decode(ReadOnlySpan<byte> jpeg, string name, int maxSide = DefaultMaxSide)
    {
        if (jpeg.Length < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8) throw new FileFormatException(name, "not a JPEG file (no SOI marker)");
        using var handle = Open();
        unsafe
        {
            fixed (byte* src = jpeg)
            {
                int width, height, subsamp, colorspace;
                if (tjDecompressHeader3(handle, src, (nuint)jpeg.Length, &width, &height, &subsamp, &colorspace) != 0)
                    throw new FileFormatException(name, $"corrupt JPEG header: {Error(handle)}");
                if (width <= 0 || height <= 0) throw new FileFormatException(name, $"JPEG has zero size ({width}×{height})");
                if (width > maxSide || height > maxSide)
                    throw new FileFormatException(name, $"JPEG is {width}×{height}, above the {maxSide}×{maxSide} limit");
                var pixels = new byte[checked(width * height * 3)];
                fixed (byte* dst = pixels)
                    if (tjDecompress2(handle, src, (nuint)jpeg.Length, dst, width, width * 3, height, PixelFormatRgb, FlagAccurateDct | FlagStopOnWarning) != 0)
                        throw new FileFormatException(name, $"corrupt or truncated JPEG data: {Error(handle)}");
                return new DecodedImage(width, height, 3, pixels);
            }
        }
    }

    public static DecodedImage Decode(string path, int maxSide = DefaultMaxSide)
    {
        if (!File.Exists(path)) throw new FileFormatException(path, "file not found");
        return Decode(File.ReadAllBytes(path), path, maxSide);
    }

    static TurboJpegHandle Open()
    {
        TurboJpegHandle h;
        try { h = tjInitDecompress(); }
        catch (DllNotFoundException e) { throw new VitSparseException($"{Library} is not installed (Debian package libturbojpeg0); it decodes JPEG", e); }
        if (h.IsInvalid) throw new VitSparseException("TurboJPEG could not create a decompressor");
        return h;
    }

    static unsafe string Error(TurboJpegHandle h) => Marshal.PtrToStringUTF8((nint)tjGetErrorStr2(h)) ?? "unknown error";

    sealed class TurboJpegHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public TurboJpegHandle() : base(true) { }
        protected override bool ReleaseHandle() => tjDestroy(handle) == 0;
    }

    [LibraryImport(Library)] private static partial TurboJpegHandle tjInitDecompress();
    [LibraryImport(Library)] private static partial int tjDestroy(nint handle);
    [LibraryImport(Library)] private static unsafe partial byte* tjGetErrorStr2(TurboJpegHandle handle);
    [LibraryImport(Library)] private static unsafe partial int tjDecompressHeader3(TurboJpegHandle handle, byte* jpeg, nuint size, int* width, int* height, int* subsamp, int* colorspace);
    [LibraryImport(Library)] private static unsafe partial int tjDecompress2(TurboJpegHandle handle, byte* jpeg, nuint size, byte* dst, int width, int pitch, int height, int pixelFormat, int flags);
}
