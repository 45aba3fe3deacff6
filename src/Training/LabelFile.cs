using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;
using VitSparse.Runtime;

namespace VitSparse.Training;

/// <summary>
/// Class labels from a NumPy .npy: a 1-D little-endian int32 or int64 array, C order (what
/// `np.save(path, y.astype(np.int64))` writes). Anything else is refused naming the file.
/// </summary>
public static partial class LabelFile
{
    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")] private static partial Regex DescrRx();
    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")] private static partial Regex FortranRx();
    [GeneratedRegex(@"'shape'\s*:\s*\(\s*(\d+)\s*,?\s*\)")] private static partial Regex ShapeRx();

    /// <summary>Reads the labels and checks there are <paramref name="count"/> of them, each in [0, classes).</summary>
    public static int[] Read(string path, string argument, int count, int classes)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new FileFormatException(path, $"cannot read: {e.Message}", e); }
        var labels = Parse(bytes, path);
        if (labels.Length != count) throw new InputException(argument, $"{path} has {labels.Length} labels for {count} images");
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] < 0 || labels[i] >= classes)
                throw new InputException(argument, $"{path}: label {labels[i]} of image {i} is outside [0, {classes})");
        return labels;
    }

    public static int[] Parse(ReadOnlySpan<byte> bytes, string path)
    {
        if (bytes.Length < 10 || bytes[0] != 0x93 || !bytes[1..6].SequenceEqual("NUMPY"u8))
            throw new FileFormatException(path, "not a NumPy .npy file (bad magic)");
        int major = bytes[6];
        int headerStart = major == 1 ? 10 : major is 2 or 3 ? 12 : throw new FileFormatException(path, $"unsupported .npy format version {major}");
        if (bytes.Length < headerStart) throw new FileFormatException(path, "truncated .npy header");
        long headerLen = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(bytes[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]);
        if (headerLen > 10_000 || headerStart + headerLen > bytes.Length) throw new FileFormatException(path, "truncated or oversized .npy header");
        string header = Encoding.Latin1.GetString(bytes.Slice(headerStart, (int)headerLen));
        var descr = DescrRx().Match(header);
        var fortran = FortranRx().Match(header);
        var shape = ShapeRx().Match(header);
        if (!descr.Success || !fortran.Success) throw new FileFormatException(path, "malformed .npy header");
        if (fortran.Groups[1].Value == "True") throw new FileFormatException(path, "array is in Fortran order; save a C-order array");
        int size = descr.Groups[1].Value switch
        {
            "<i4" => 4,
            "<i8" => 8,
            var d => throw new FileFormatException(path, $"labels have dtype '{d}'; expected int32 or int64 ('<i4' or '<i8')"),
        };
        if (!shape.Success) throw new FileFormatException(path, "labels must be a 1-D array of class indices");
        if (!int.TryParse(shape.Groups[1].Value, out int n)) throw new FileFormatException(path, $"too many labels: {shape.Groups[1].Value}");
        var data = bytes[(int)(headerStart + headerLen)..];
        if (data.Length != (long)n * size) throw new FileFormatException(path, $"{n} labels need {(long)n * size} data bytes, file has {data.Length}");
        var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            long v = size == 4 ? BinaryPrimitives.ReadInt32LittleEndian(data[(4 * i)..]) : BinaryPrimitives.ReadInt64LittleEndian(data[(8 * i)..]);
            labels[i] = v is >= int.MinValue and <= int.MaxValue ? (int)v : v < 0 ? -1 : int.MaxValue; // out-of-range values stay out of range
        }
        return labels;
    }
}
