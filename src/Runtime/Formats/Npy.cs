using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace VitSparse.Runtime.Formats;

/// <summary>A float32 array with its shape, as read from or written to a NumPy .npy file.</summary>
public sealed record NpyArray(int[] Shape, float[] Data)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Refuses anything but a non-empty [batch, C, H, W] batch of images for <paramref name="config"/>; returns the batch size.</summary>
    public int RequireImages(VitSparse.Runtime.Models.VitConfig config, string argument, string path)
    {
        if (Shape.Length != 4 || Shape[0] < 1 || Shape[1] != config.InChannels || Shape[2] != config.ImageSize || Shape[3] != config.ImageSize)
            throw new InputException(argument, $"{path} has shape ({string.Join(", ", Shape)}), model '{config.Name}' needs (batch, {config.InChannels}, {config.ImageSize}, {config.ImageSize})");
        return Shape[0];
    }
}

/// <summary>
/// NumPy .npy (format versions 1, 2 and 3) for little-endian float32 C-order arrays, the only kind the
/// CLI exchanges. Anything else is refused with the file name and what was found.
/// </summary>
public static partial class Npy
{
    static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")] private static partial Regex DescrRx();
    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")] private static partial Regex FortranRx();
    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")] private static partial Regex ShapeRx();

    /// <summary>
    /// NumPy's own reader refuses headers over 10,000 bytes (max_header_size); real headers are under 200.
    /// Bounding it keeps the regexes below cheap on hostile files.
    /// </summary>
    public const int MaxHeaderBytes = 10_000;

    public static NpyArray Read(string path)
    {
        long length;
        try { length = new FileInfo(path).Length; }
        catch (FileNotFoundException) { throw new FileFormatException(path, "file not found"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new FileFormatException(path, $"cannot read: {e.Message}", e); }
        // A float32 array in one .NET array holds at most Array.MaxLength elements; refuse before reading.
        if (length > 4L * Array.MaxLength + 12 + MaxHeaderBytes)
            throw new FileFormatException(path, $"{length} bytes is larger than one float32 array can hold");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new FileFormatException(path, $"cannot read: {e.Message}", e); }
        return Parse(bytes, path);
    }

    public static NpyArray Parse(ReadOnlySpan<byte> bytes, string name)
    {
        if (bytes.Length < 10 || !bytes[..6].SequenceEqual(Magic)) throw new FileFormatException(name, "not a NumPy .npy file (bad magic)");
        int major = bytes[6];
        long headerLen;
        int headerStart;
        if (major == 1) { headerLen = BinaryPrimitives.ReadUInt16LittleEndian(bytes[8..]); headerStart = 10; }
        else if (major is 2 or 3)
        {
            if (bytes.Length < 12) throw new FileFormatException(name, "truncated .npy header");
            headerLen = BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]); headerStart = 12;
        }
        else throw new FileFormatException(name, $"unsupported .npy format version {major}");
        if (headerLen > MaxHeaderBytes) throw new FileFormatException(name, $"header of {headerLen} bytes exceeds the {MaxHeaderBytes}-byte limit NumPy also applies");
        if (headerStart + headerLen > bytes.Length) throw new FileFormatException(name, "truncated .npy header");
        string header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(bytes.Slice(headerStart, (int)headerLen));

        var descr = DescrRx().Match(header);
        var fortran = FortranRx().Match(header);
        var shapeM = ShapeRx().Match(header);
        if (!descr.Success || !fortran.Success || !shapeM.Success) throw new FileFormatException(name, $"malformed .npy header: {Printable(header)}");
        if (descr.Groups[1].Value != "<f4") throw new FileFormatException(name, $"dtype '{Printable(descr.Groups[1].Value)}' is not little-endian float32 ('<f4'); convert with x.astype('<f4')");
        if (fortran.Groups[1].Value == "True") throw new FileFormatException(name, "array is in Fortran order; save a C-order array (np.ascontiguousarray)");
        var shape = ParseShape(shapeM.Groups[1].Value, name);
        long dataStart = headerStart + headerLen, dataBytes = bytes.Length - dataStart;
        // Checked 64-bit product, bounded by what the file holds at every step: a shape like
        // (2^30, 2^30, 16) must not wrap to 0 elements, and nothing is allocated before this check.
        long elements = 1;
        foreach (int d in shape)
        {
            elements = d == 0 ? 0 : elements > long.MaxValue / d ? long.MaxValue : elements * d;
            if (elements > Array.MaxLength) throw new FileFormatException(name, $"shape ({string.Join(", ", shape)}) is too big: over {Array.MaxLength} elements (array is too big)");
        }
        if (dataBytes != elements * 4)
            throw new FileFormatException(name, $"shape ({string.Join(",", shape)}) needs {elements * 4} data bytes, file has {dataBytes}");
        var data = new float[elements];
        var src = bytes[(int)dataStart..];
        for (int i = 0; i < data.Length; i++) data[i] = BinaryPrimitives.ReadSingleLittleEndian(src[(4 * i)..]);
        return new NpyArray(shape, data);
    }

    /// <summary>"3, 224, 224" or "5," or "" (a scalar): non-negative decimal dimensions, an optional trailing comma.</summary>
    static int[] ParseShape(string text, string name)
    {
        var dims = text.Split(',', StringSplitOptions.TrimEntries);
        int count = dims.Length;
        if (count > 1 && dims[^1].Length == 0) count--;   // "(5,)"
        if (count == 1 && dims[0].Length == 0) count = 0; // "()"
        var shape = new int[count];
        for (int i = 0; i < count; i++)
            if (!int.TryParse(dims[i], NumberStyles.None, CultureInfo.InvariantCulture, out shape[i]))
                throw new FileFormatException(name, $"bad shape entry '{Printable(dims[i])}' (dimensions are integers up to {int.MaxValue})");
        return shape;
    }

    /// <summary>Header text for an error message: short, control characters shown as '?'.</summary>
    static string Printable(string s)
    {
        s = s.Trim();
        if (s.Length > 200) s = s[..200] + "…";
        return string.Create(s.Length, s, (dst, src) => { for (int i = 0; i < src.Length; i++) dst[i] = char.IsControl(src[i]) ? '?' : src[i]; });
    }

    public static void Write(string path, ReadOnlySpan<int> shape, ReadOnlySpan<float> data)
    {
        long elements = 1;
        foreach (int d in shape) elements *= d;
        if (elements != data.Length) throw new ArgumentException($"shape has {elements} elements, data has {data.Length}", nameof(data));
        string dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape.ToArray());
        string dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}";
        int total = 10 + dict.Length + 1;
        string header = dict + new string(' ', (64 - total % 64) % 64) + "\n";
        var buf = new byte[10 + header.Length + 4L * data.Length];
        Magic.CopyTo(buf);
        buf[6] = 1; buf[7] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(buf.AsSpan(8), (ushort)header.Length);
        Encoding.Latin1.GetBytes(header, buf.AsSpan(10));
        int o = 10 + header.Length;
        for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(buf.AsSpan(o + 4 * i), data[i]);
        AtomicFile.Write(path, s => s.Write(buf));
    }
}
