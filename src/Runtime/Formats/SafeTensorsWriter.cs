using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace VitSparse.Runtime.Formats;

/// <summary>One tensor to write: F32 data stored as F32, F16 or BF16, or (DType I32) the integers in <see cref="Ints"/>.</summary>
public sealed record TensorToWrite(string Name, long[] Shape, ReadOnlyMemory<float> Data, DType DType = DType.F32)
{
    /// <summary>The data of an I32 tensor (sparse index data).</summary>
    public ReadOnlyMemory<int> Ints { get; init; }

    /// <summary>An I32 tensor to write.</summary>
    public static TensorToWrite Int32(string name, long[] shape, int[] data) => new(name, shape, default, DType.I32) { Ints = data };
}

/// <summary>
/// Writes safetensors files: tensors in the order given, 8-byte aligned header (padded with spaces, as the
/// reference implementation does), string metadata. The file appears atomically: it is written beside the
/// target and renamed, so a failure never leaves a partial file behind.
/// </summary>
public static class SafeTensorsWriter
{
    /// <summary>Writes <paramref name="tensors"/> in order, with <paramref name="metadata"/>, atomically to <paramref name="path"/>.</summary>
    public static void Write(string path, IReadOnlyList<TensorToWrite> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        long offset = 0;
        var offsets = new List<(long Begin, long End)>();
        foreach (var t in tensors)
        {
            if (t.Name == "__metadata__" || !names.Add(t.Name)) throw new ArgumentException($"tensor name '{t.Name}' is reserved or repeated", nameof(tensors));
            if (t.DType is not (DType.F32 or DType.F16 or DType.BF16 or DType.I32)) throw new ArgumentException($"tensor '{t.Name}': can write F32, F16, BF16 or I32, not {t.DType}", nameof(tensors));
            long elements = t.Shape.Aggregate(1L, (a, b) => a * b);
            if (elements != (t.DType == DType.I32 ? t.Ints.Length : t.Data.Length)) throw new ArgumentException($"tensor '{t.Name}': shape [{string.Join(",", t.Shape)}] has {elements} elements, data has {t.Data.Length}", nameof(tensors));
            long bytes = elements * SafeTensorsFile.SizeOf(t.DType);
            offsets.Add((offset, offset + bytes));
            offset += bytes;
        }

        using var headerStream = new MemoryStream();
        using (var w = new Utf8JsonWriter(headerStream))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            for (int i = 0; i < tensors.Count; i++)
            {
                var t = tensors[i];
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.DType switch { DType.F16 => "F16", DType.BF16 => "BF16", DType.I32 => "I32", _ => "F32" });
                w.WriteStartArray("shape");
                foreach (long d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offsets[i].Begin);
                w.WriteNumberValue(offsets[i].End);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        var header = headerStream.ToArray().ToList();
        while (header.Count % 8 != 0) header.Add((byte)' ');

        AtomicFile.Write(path, fs =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Count);
            fs.Write(len);
            fs.Write(CollectionsMarshal.AsSpan(header));
            foreach (var t in tensors) WriteData(fs, t);
        });
    }

    static void WriteData(Stream s, TensorToWrite t)
    {
        if (t.DType == DType.I32)
        {
            var ints = t.Ints.Span;
            var bytes = new byte[4 * ints.Length];
            for (int j = 0; j < ints.Length; j++) BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4 * j), ints[j]);
            s.Write(bytes);
            return;
        }
        var src = t.Data.Span;
        const int chunk = 1 << 16;
        var buf = new byte[chunk * 4];
        for (int i = 0; i < src.Length; i += chunk)
        {
            var part = src.Slice(i, Math.Min(chunk, src.Length - i));
            int n;
            switch (t.DType)
            {
                case DType.F16:
                    for (int j = 0; j < part.Length; j++) BinaryPrimitives.WriteHalfLittleEndian(buf.AsSpan(2 * j), (Half)part[j]);
                    n = 2 * part.Length; break;
                case DType.BF16:
                    for (int j = 0; j < part.Length; j++) BinaryPrimitives.WriteUInt16LittleEndian(buf.AsSpan(2 * j), ToBf16(part[j]));
                    n = 2 * part.Length; break;
                default:
                    for (int j = 0; j < part.Length; j++) BinaryPrimitives.WriteSingleLittleEndian(buf.AsSpan(4 * j), part[j]);
                    n = 4 * part.Length; break;
            }
            s.Write(buf, 0, n);
        }
    }

    /// <summary>Round to nearest even, as torch does; NaN stays NaN.</summary>
    static ushort ToBf16(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((bits >> 16) | 0x40);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }
}
