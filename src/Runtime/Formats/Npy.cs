using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace VitSparse.Runtime.Formats;

/// <summary>A float32 array with its shape, as read from or written to a NumPy .npy file.</summary>
public sealed record NpyArray(int[] Shape, float[] Data)
{
    /// <summary>Number of elements: the product of the shape.</summary>
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Refuses anything but a non-empty [batch, C, H, W] batch of images for <paramref name="config"/>; returns the batch size.</summary>
    public int RequireImages(VitSparse.Runtime.Models.IImageModelConfig config, string argument, string path)
    {
        if (Shape.Length != 4 || Shape[0] < 1 || Shape[1] != config.InChannels || Shape[2] != config.ImageSize || Shape[3] != config.ImageSize)
            throw new InputException(argument, $"{path} has shape ({string.Join(", ", Shape)}), model '{config.Name}' needs (batch, {config.InChannels}, {config.ImageSize}, {config.ImageSize})");
        return Shape[0];
    }
}

/// <summary>Integer class labels read from a .npy file (<see cref="Npy.ReadLabels"/>).</summary>
public sealed record NpyLabels(int[] Shape, long[] Values);

/// <summary>
/// NumPy .npy (format versions 1, 2 and 3) for little-endian float32 C-order arrays, the kind the CLI
/// exchanges, and integer label arrays. Anything else is refused with the file name and what was found.
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

    /// <summary>Reads a float32 .npy file; any other dtype, Fortran order or a size mismatch is a <see cref="FileFormatException"/>.</summary>
    public static NpyArray Read(string path) => Parse(ReadBytes(path, 4), path);

    /// <summary>The whole file, refused before reading when it is larger than one array of <paramref name="elementSize"/>-byte elements can hold.</summary>
    static byte[] ReadBytes(string path, int elementSize)
    {
        long length;
        try { length = new FileInfo(path).Length; }
        catch (FileNotFoundException) { throw new FileFormatException(path, "file not found"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new FileFormatException(path, $"cannot read: {e.Message}", e); }
        // An array in one .NET array holds at most Array.MaxLength elements; refuse before reading.
        if (length > (long)elementSize * Array.MaxLength + 12 + MaxHeaderBytes)
            throw new FileFormatException(path, $"{length} bytes is larger than one array can hold");
        try { return File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new FileFormatException(path, $"cannot read: {e.Message}", e); }
    }

    /// <summary>Parses a float32 .npy held in memory; <paramref name="name"/> names it in errors.</summary>
    public static NpyArray Parse(ReadOnlySpan<byte> bytes, string name)
    {
        var (_, shape, start) = ParseHeader(bytes, name, labels: false);
        var data = bytes[start..];
        var floats = new float[data.Length / 4];
        for (int i = 0; i < floats.Length; i++) floats[i] = BinaryPrimitives.ReadSingleLittleEndian(data[(4 * i)..]);
        return new NpyArray(shape, floats);
    }

    /// <summary>
    /// Reads class labels: any integer dtype NumPy writes (int64 by default; int32, int16, int8, uint8 … too), or
    /// float32/float64 holding whole numbers. Shape and values are returned as read; the caller checks ranges.
    /// </summary>
    public static NpyLabels ReadLabels(string path)
    {
        byte[] bytes = ReadBytes(path, 8);
        var (dtype, shape, start) = ParseHeader(bytes, path, labels: true);
        var data = bytes.AsSpan(start);
        int size = LabelDtypes[dtype];
        var values = new long[data.Length / size];
        for (int i = 0; i < values.Length; i++)
        {
            var b = data[(i * size)..];
            values[i] = dtype switch
            {
                "<i8" => BinaryPrimitives.ReadInt64LittleEndian(b), "<i4" => BinaryPrimitives.ReadInt32LittleEndian(b),
                "<i2" => BinaryPrimitives.ReadInt16LittleEndian(b), "|i1" => (sbyte)b[0],
                "<u8" => (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(b), long.MaxValue), "<u4" => BinaryPrimitives.ReadUInt32LittleEndian(b),
                "<u2" => BinaryPrimitives.ReadUInt16LittleEndian(b), "|u1" => b[0],
                _ => Whole(dtype == "<f4" ? BinaryPrimitives.ReadSingleLittleEndian(b) : BinaryPrimitives.ReadDoubleLittleEndian(b), i, path),
            };
        }
        return new NpyLabels(shape, values);
    }

    static long Whole(double v, int index, string path) => v == Math.Floor(v) && Math.Abs(v) < 1e15 ? (long)v
        : throw new FileFormatException(path, $"label {v} at {index} is not a whole number");

    /// <summary>Label dtypes and their element sizes.</summary>
    static readonly Dictionary<string, int> LabelDtypes = new(StringComparer.Ordinal)
    {
        ["<i8"] = 8, ["<i4"] = 4, ["<i2"] = 2, ["|i1"] = 1, ["<u8"] = 8, ["<u4"] = 4, ["<u2"] = 2, ["|u1"] = 1, ["<f4"] = 4, ["<f8"] = 8,
    };

    /// <summary>Checks magic, version, header, dtype, order and size; returns the dtype, the shape and where the data starts.</summary>
    static (string Dtype, int[] Shape, int DataStart) ParseHeader(ReadOnlySpan<byte> bytes, string name, bool labels)
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
        string dtype = descr.Groups[1].Value;
        if (labels && !LabelDtypes.ContainsKey(dtype))
            throw new FileFormatException(name, $"dtype '{Printable(dtype)}' is not a label type: little-endian integers (int64, int32, int16, int8, uint8 …) or float32/float64 whole numbers");
        if (!labels && dtype != "<f4") throw new FileFormatException(name, $"dtype '{Printable(dtype)}' is not little-endian float32 ('<f4'); convert with x.astype('<f4')");
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
        int size = labels ? LabelDtypes[dtype] : 4;
        if (dataBytes != elements * size)
            throw new FileFormatException(name, $"shape ({string.Join(",", shape)}) needs {elements * size} data bytes, file has {dataBytes}");
        return (dtype, shape, (int)dataStart);
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

    /// <summary>Writes a float32 C-order .npy (format 1.0) atomically; the shape must match the data.</summary>
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
