using System.Buffers.Binary;
using System.IO.Compression;

namespace VitSparse.Runtime.Images;

/// <summary>
/// PNG decoding on <see cref="ZLibStream"/>: every color type (gray, RGB, palette, gray+alpha, RGBA), bit
/// depths 1–16 (16-bit samples keep their high byte, as PIL's 8-bit conversion does), all five filters,
/// Adam7 interlacing, CRC-checked chunks. Output is 8-bit gray (1 channel), RGB (3) or RGBA (4: alpha
/// from the alpha channel or a tRNS chunk). Sizes above the limit are refused before anything is inflated.
/// </summary>
public static class PngDecoder
{
    static ReadOnlySpan<byte> Signature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    public static DecodedImage Decode(string path, int maxSide = JpegDecoder.DefaultMaxSide)
    {
        if (!File.Exists(path)) throw new FileFormatException(path, "file not found");
        return Decode(File.ReadAllBytes(path), path, maxSide);
    }

    public static DecodedImage Decode(ReadOnlySpan<byte> png, string name, int maxSide = JpegDecoder.DefaultMaxSide)
    {
        if (png.Length < 8 || !png[..8].SequenceEqual(Signature)) throw new FileFormatException(name, "not a PNG file (bad signature)");
        int width = 0, height = 0, depth = 0, colorType = -1, interlace = 0;
        byte[]? palette = null, trns = null;
        var idat = new MemoryStream();
        bool seenEnd = false;
        int pos = 8;
        while (pos < png.Length && !seenEnd)
        {
            if (pos + 12 > png.Length) throw new FileFormatException(name, "truncated chunk");
            uint length = BinaryPrimitives.ReadUInt32BigEndian(png[pos..]);
            if (length > int.MaxValue || pos + 12 + (long)length > png.Length) throw new FileFormatException(name, "truncated chunk");
            var type = png.Slice(pos + 4, 4);
            var data = png.Slice(pos + 8, (int)length);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(png[(pos + 8 + (int)length)..]);
            if (Crc32(png.Slice(pos + 4, 4 + (int)length)) != crc)
                throw new FileFormatException(name, $"CRC mismatch in chunk '{System.Text.Encoding.ASCII.GetString(type)}'");
            string t = System.Text.Encoding.ASCII.GetString(type);
            if (colorType < 0 && t != "IHDR") throw new FileFormatException(name, "missing IHDR (it must be the first chunk)");
            switch (t)
            {
                case "IHDR":
                    if (length != 13) throw new FileFormatException(name, "IHDR has the wrong length");
                    width = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(data), int.MaxValue);
                    height = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(data[4..]), int.MaxValue);
                    depth = data[8]; colorType = data[9]; interlace = data[12];
                    if (width <= 0 || height <= 0) throw new FileFormatException(name, $"PNG has zero size ({width}×{height})");
                    if (width > maxSide || height > maxSide) throw new FileFormatException(name, $"PNG is {width}×{height}, above the {maxSide}×{maxSide} limit");
                    bool ok = colorType switch
                    {
                        0 => depth is 1 or 2 or 4 or 8 or 16,
                        3 => depth is 1 or 2 or 4 or 8,
                        2 or 4 or 6 => depth is 8 or 16,
                        _ => false,
                    };
                    if (!ok) throw new FileFormatException(name, $"invalid color type {colorType} with bit depth {depth}");
                    if (data[10] != 0 || data[11] != 0 || interlace > 1) throw new FileFormatException(name, "unknown compression, filter or interlace method");
                    break;
                case "PLTE": palette = data.ToArray(); break;
                case "tRNS": trns = data.ToArray(); break;
                case "IDAT": idat.Write(data); break;
                case "IEND": seenEnd = true; break;
            }
            pos += 12 + (int)length;
        }
        if (colorType < 0) throw new FileFormatException(name, "missing IHDR");
        if (colorType == 3 && palette == null) throw new FileFormatException(name, "palette image without PLTE");
        if (idat.Length == 0) throw new FileFormatException(name, "no image data (IDAT)");

        int samples = colorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, _ => 4 };
        int bitsPerPixel = samples * depth, bpp = Math.Max(1, bitsPerPixel / 8);
        byte[] raw;
        try
        {
            idat.Position = 0;
            using var z = new ZLibStream(idat, CompressionMode.Decompress);
            using var ms = new MemoryStream();
            z.CopyTo(ms);
            raw = ms.ToArray();
        }
        catch (InvalidDataException e) { throw new FileFormatException(name, $"corrupt zlib stream: {e.Message}"); }

        int outChannels = colorType switch { 0 => trns != null ? 4 : 1, 2 or 3 => trns != null ? 4 : 3, _ => 4 };
        var pixels = new byte[checked(width * height * outChannels)];
        int offset = 0;
        // Adam7 passes: (x0, y0, dx, dy); a non-interlaced image is one pass over everything.
        (int X0, int Y0, int Dx, int Dy)[] passes = interlace == 0 ? [(0, 0, 1, 1)] :
            [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];
        foreach (var (x0, y0, dx, dy) in passes)
        {
            int pw = (width - x0 + dx - 1) / dx, ph = (height - y0 + dy - 1) / dy;
            if (pw <= 0 || ph <= 0) continue;
            int stride = (pw * bitsPerPixel + 7) / 8;
            var prev = new byte[stride];
            var line = new byte[stride];
            for (int r = 0; r < ph; r++)
            {
                if (offset + 1 + stride > raw.Length) throw new FileFormatException(name, "image data is shorter than the image (truncated IDAT)");
                int filter = raw[offset];
                Array.Copy(raw, offset + 1, line, 0, stride);
                offset += 1 + stride;
                Unfilter(filter, line, prev, bpp, name);
                for (int c = 0; c < pw; c++)
                    Store(line, c, colorType, depth, palette, trns, pixels, ((y0 + r * dy) * width + x0 + c * dx) * outChannels, outChannels, name);
                (prev, line) = (line, prev);
            }
        }
        return new DecodedImage(width, height, outChannels, pixels);
    }

    static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    static void Unfilter(int filter, byte[] line, byte[] prev, int bpp, string name)
    {
        switch (filter)
        {
            case 0: break;
            case 1: for (int i = bpp; i < line.Length; i++) line[i] += line[i - bpp]; break;
            case 2: for (int i = 0; i < line.Length; i++) line[i] += prev[i]; break;
            case 3:
                for (int i = 0; i < line.Length; i++) line[i] += (byte)(((i >= bpp ? line[i - bpp] : 0) + prev[i]) >> 1);
                break;
            case 4:
                for (int i = 0; i < line.Length; i++)
                {
                    int a = i >= bpp ? line[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
                    int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
                    line[i] += (byte)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
                }
                break;
            default: throw new FileFormatException(name, $"unknown filter type {filter}");
        }
    }

    /// <summary>Channel <paramref name="s"/> of a pixel: 8-bit as is, 16-bit as its high byte, 1–4-bit as the raw value.</summary>
    static int Sample(byte[] line, int pixel, int s, int samples, int depth)
    {
        if (depth == 8) return line[pixel * samples + s];
        if (depth == 16) return line[(pixel * samples + s) * 2];
        int bit = (pixel * samples + s) * depth;
        int v = (line[bit >> 3] >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
        return v;
    }

    static int Raw16(byte[] line, int pixel, int s, int samples) => (line[(pixel * samples + s) * 2] << 8) | line[(pixel * samples + s) * 2 + 1];

    static void Store(byte[] line, int c, int colorType, int depth, byte[]? palette, byte[]? trns, byte[] dst, int o, int channels, string name)
    {
        switch (colorType)
        {
            case 0:
            {
                int v = Sample(line, c, 0, 1, depth);
                int gray = depth >= 8 ? v : v * 255 / ((1 << depth) - 1);
                dst[o] = (byte)gray;
                if (channels == 4)
                {
                    int key = BinaryPrimitives.ReadUInt16BigEndian(trns);
                    int rawValue = depth == 16 ? Raw16(line, c, 0, 1) : v;
                    dst[o + 1] = dst[o + 2] = (byte)gray;
                    dst[o + 3] = (byte)(rawValue == key ? 0 : 255);
                }
                break;
            }
            case 2:
                for (int s = 0; s < 3; s++) dst[o + s] = (byte)Sample(line, c, s, 3, depth);
                if (channels == 4)
                {
                    bool transparent = trns!.Length >= 6;
                    for (int s = 0; s < 3 && transparent; s++)
                        transparent = (depth == 16 ? Raw16(line, c, s, 3) : Sample(line, c, s, 3, depth)) == BinaryPrimitives.ReadUInt16BigEndian(trns.AsSpan(2 * s));
                    dst[o + 3] = (byte)(transparent ? 0 : 255);
                }
                break;
            case 3:
            {
                int i = Sample(line, c, 0, 1, depth);
                if (3 * i + 2 >= palette!.Length) throw new FileFormatException(name, $"palette index {i} is outside the {palette.Length / 3}-entry PLTE");
                dst[o] = palette[3 * i]; dst[o + 1] = palette[3 * i + 1]; dst[o + 2] = palette[3 * i + 2];
                if (channels == 4) dst[o + 3] = i < trns!.Length ? trns[i] : (byte)255;
                break;
            }
            case 4:
            {
                byte g = (byte)Sample(line, c, 0, 2, depth);
                dst[o] = dst[o + 1] = dst[o + 2] = g;
                dst[o + 3] = (byte)Sample(line, c, 1, 2, depth);
                break;
            }
            default:
                for (int s = 0; s < 4; s++) dst[o + s] = (byte)Sample(line, c, s, 4, depth);
                break;
        }
    }
}
