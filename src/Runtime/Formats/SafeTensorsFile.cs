using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace VitSparse.Runtime.Formats;

/// <summary>Element types of the safetensors format; VitSparse reads F32, F16, BF16 and F64 weights.</summary>
public enum DType
{
    /// <summary>64-bit float.</summary>
    F64,
    /// <summary>32-bit float.</summary>
    F32,
    /// <summary>IEEE half.</summary>
    F16,
    /// <summary>bfloat16.</summary>
    BF16,
    /// <summary>64-bit integer.</summary>
    I64,
    /// <summary>32-bit integer.</summary>
    I32,
    /// <summary>16-bit integer.</summary>
    I16,
    /// <summary>8-bit integer.</summary>
    I8,
    /// <summary>64-bit unsigned.</summary>
    U64,
    /// <summary>32-bit unsigned.</summary>
    U32,
    /// <summary>16-bit unsigned.</summary>
    U16,
    /// <summary>8-bit unsigned.</summary>
    U8,
    /// <summary>Boolean byte.</summary>
    Bool,
    /// <summary>8-bit float, 4-bit exponent.</summary>
    F8E4M3,
    /// <summary>8-bit float, 5-bit exponent.</summary>
    F8E5M2,
}

/// <summary>One tensor of a safetensors header.</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions.</param>
/// <param name="Begin">First byte in the data buffer.</param>
/// <param name="End">One past the last byte in the data buffer.</param>
public sealed record TensorInfo(string Name, DType DType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of elements: the product of the shape.</summary>
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
    /// <summary>The shape as "[a,b]" for messages.</summary>
    public string ShapeText => "[" + string.Join(",", Shape) + "]";
}

/// <summary>
/// A safetensors file (8-byte little-endian header length, JSON header, data buffer), memory-mapped.
/// F32 tensors are read in place; F16, BF16 and F64 are converted to F32 on request. Every structural
/// problem is reported at open, naming the file and the tensor.
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    const long MaxHeader = 100L << 20;
    readonly MemoryMappedFile? _map;
    readonly MemoryMappedViewAccessor? _view;
    readonly byte* _base;
    readonly long _dataStart, _dataLength;
    readonly Dictionary<string, TensorInfo> _tensors = new(StringComparer.Ordinal);
    bool _disposed;

    /// <summary>The file as given.</summary>
    public string Path { get; }
    /// <summary>The header's __metadata__ strings (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Every tensor of the header.</summary>
    public IReadOnlyCollection<TensorInfo> Tensors => _tensors.Values;

    /// <summary>Maps the file and checks its whole structure; any problem is a <see cref="FileFormatException"/> naming the file.</summary>
    public SafeTensorsFile(string path)
    {
        Path = path;
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileFormatException(path, "file not found");
        long length = info.Length;
        if (length < 8) throw new FileFormatException(path, $"truncated: {length} bytes, a safetensors file starts with an 8-byte header length");
        try
        {
            _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _view = _map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _base = p + _view.PointerOffset;
            ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(_base, 8));
            if (headerLen > (ulong)(length - 8))
                throw new FileFormatException(path, $"header length {headerLen} is larger than the {length - 8} bytes that follow it (truncated or not safetensors)");
            if ((long)headerLen > MaxHeader)
                throw new FileFormatException(path, $"header length {headerLen} exceeds the {MaxHeader}-byte limit");
            _dataStart = 8 + (long)headerLen;
            _dataLength = length - _dataStart;
            Metadata = ParseHeader(new ReadOnlySpan<byte>(_base + 8, (int)headerLen));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    Dictionary<string, string> ParseHeader(ReadOnlySpan<byte> header)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        // JsonDocument defers UTF-8 validation of strings to GetString(), which then throws a bare
        // InvalidOperationException; the format requires UTF-8, so the whole header is checked first.
        if (!System.Text.Unicode.Utf8.IsValid(header))
            throw new FileFormatException(Path, $"header is not valid UTF-8 (first bad byte near offset {8 + FirstInvalidUtf8(header)})");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header.ToArray()); }
        catch (JsonException e) { throw new FileFormatException(Path, $"header is not valid JSON: {e.Message}", e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new FileFormatException(Path, "header JSON must be an object");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name)) throw new FileFormatException(Path, $"duplicate key '{prop.Name}' in header");
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw new FileFormatException(Path, "__metadata__ must be an object of strings");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw new FileFormatException(Path, $"__metadata__ value '{m.Name}' is not a string");
                        if (!metadata.TryAdd(m.Name, m.Value.GetString()!)) throw new FileFormatException(Path, $"duplicate __metadata__ key '{m.Name}'");
                    }
                    continue;
                }
                _tensors.Add(prop.Name, ParseEntry(prop.Name, prop.Value));
            }
        }
        // As the reference implementation requires: the tensors tile the data buffer exactly, in offset
        // order, with no overlap, no gap and nothing after the last one. Empty tensors sit at a boundary.
        var ordered = _tensors.Values.OrderBy(t => t.Begin).ThenBy(t => t.End).ToList();
        long expected = 0;
        TensorInfo? previous = null;
        foreach (var t in ordered)
        {
            if (t.Begin < expected)
                throw new FileFormatException(Path, $"tensor '{t.Name}' data [{t.Begin},{t.End}) overlaps '{previous!.Name}' [{previous.Begin},{previous.End})");
            if (t.Begin > expected)
                throw new FileFormatException(Path, $"tensor '{t.Name}' data starts at {t.Begin}, leaving a gap of {t.Begin - expected} bytes after {(previous == null ? "the header" : $"'{previous.Name}'")}");
            expected = t.End;
            previous = t;
        }
        if (expected != _dataLength)
            throw new FileFormatException(Path, $"tensor data covers {expected} bytes but the data buffer holds {_dataLength} (trailing bytes or truncated offsets)");
        return metadata;
    }

    static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        int i = 0;
        while (i < bytes.Length)
        {
            if (System.Text.Rune.DecodeFromUtf8(bytes[i..], out _, out int used) != System.Buffers.OperationStatus.Done) return i;
            i += used;
        }
        return i;
    }

    TensorInfo ParseEntry(string name, JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object) throw new FileFormatException(Path, $"tensor '{name}': entry is not an object");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new FileFormatException(Path, $"tensor '{name}': missing dtype");
        DType dtype = dt.GetString() switch
        {
            "F64" => DType.F64, "F32" => DType.F32, "F16" => DType.F16, "BF16" => DType.BF16,
            "I64" => DType.I64, "I32" => DType.I32, "I16" => DType.I16, "I8" => DType.I8,
            "U64" => DType.U64, "U32" => DType.U32, "U16" => DType.U16, "U8" => DType.U8, "BOOL" => DType.Bool,
            "F8_E4M3" => DType.F8E4M3, "F8_E5M2" => DType.F8E5M2,
            var other => throw new FileFormatException(Path, $"tensor '{name}': unknown dtype '{other}'"),
        };
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new FileFormatException(Path, $"tensor '{name}': missing shape");
        var shape = new List<long>();
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0)
                throw new FileFormatException(Path, $"tensor '{name}': shape entries must be non-negative integers");
            shape.Add(v);
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new FileFormatException(Path, $"tensor '{name}': data_offsets must be [begin, end]");
        long begin = ReadOffset(name, off[0]), end = ReadOffset(name, off[1]);
        if (end < begin) throw new FileFormatException(Path, $"tensor '{name}': data_offsets end {end} is before begin {begin}");
        if (end > _dataLength) throw new FileFormatException(Path, $"tensor '{name}': data_offsets [{begin},{end}) run past the {_dataLength}-byte data buffer (truncated?)");
        var info = new TensorInfo(name, dtype, shape.ToArray(), begin, end);
        long elements = 1;
        foreach (long d in info.Shape)
        {
            if (d != 0 && elements > long.MaxValue / d) throw new FileFormatException(Path, $"tensor '{name}': shape {info.ShapeText} overflows");
            elements *= d;
        }
        if (elements > long.MaxValue / 8 || elements * SizeOf(dtype) != end - begin)
            throw new FileFormatException(Path, $"tensor '{name}': {dtype} {info.ShapeText} needs {elements * SizeOf(dtype)} bytes but data_offsets span {end - begin}");
        return info;
    }

    long ReadOffset(string name, JsonElement v) =>
        v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long x) && x >= 0
            ? x : throw new FileFormatException(Path, $"tensor '{name}': data_offsets must be non-negative integers");

    /// <summary>Bytes per element of <paramref name="t"/>.</summary>
    public static int SizeOf(DType t) => t switch
    {
        DType.F64 or DType.I64 or DType.U64 => 8,
        DType.F32 or DType.I32 or DType.U32 => 4,
        DType.F16 or DType.BF16 or DType.I16 or DType.U16 => 2,
        _ => 1,
    };

    /// <summary>Whether the file holds a tensor called <paramref name="name"/>.</summary>
    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>The header entry of <paramref name="name"/>; a missing tensor is a <see cref="ModelException"/>.</summary>
    public TensorInfo Info(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _tensors.TryGetValue(name, out var t) ? t : throw new FileFormatException(Path, $"missing tensor '{name}'");
    }

    /// <summary>An F32 tensor in place, valid until the file is disposed.</summary>
    public ReadOnlySpan<float> GetF32(string name)
    {
        var t = Info(name);
        if (t.DType != DType.F32) throw new FileFormatException(Path, $"tensor '{name}' is {t.DType}, not F32");
        return new ReadOnlySpan<float>(_base + _dataStart + t.Begin, ElementCount(t));
    }

    /// <summary>An I32 tensor in place (sparse index data), valid until the file is disposed.</summary>
    public ReadOnlySpan<int> GetI32(string name)
    {
        var t = Info(name);
        if (t.DType != DType.I32) throw new FileFormatException(Path, $"tensor '{name}' is {t.DType}, not I32");
        return new ReadOnlySpan<int>(_base + _dataStart + t.Begin, ElementCount(t));
    }

    /// <summary>A floating-point tensor as F32: in place for F32, converted for F16, BF16 and F64.</summary>
    public ReadOnlySpan<float> GetFloats(string name)
    {
        var t = Info(name);
        if (t.DType == DType.F32) return GetF32(name);
        int n = ElementCount(t);
        byte* src = _base + _dataStart + t.Begin;
        var dst = new float[n];
        switch (t.DType)
        {
            case DType.F16:
                var h = new ReadOnlySpan<Half>(src, n);
                for (int i = 0; i < n; i++) dst[i] = (float)h[i];
                break;
            case DType.BF16:
                var bf = new ReadOnlySpan<ushort>(src, n);
                for (int i = 0; i < n; i++) dst[i] = BitConverter.Int32BitsToSingle(bf[i] << 16);
                break;
            case DType.F64:
                var d = new ReadOnlySpan<double>(src, n);
                for (int i = 0; i < n; i++) dst[i] = (float)d[i];
                break;
            default:
                throw new FileFormatException(Path, $"tensor '{name}' is {t.DType}, not a floating-point type");
        }
        return dst;
    }

    int ElementCount(TensorInfo t) => t.Elements <= Array.MaxLength ? (int)t.Elements
        : throw new FileFormatException(Path, $"tensor '{t.Name}' {t.ShapeText} has {t.Elements} elements, more than one array can hold ({Array.MaxLength})");

    /// <summary>Unmaps the file; spans from <see cref="GetFloats"/> must not be used after.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_view != null)
        {
            if (_base != null) _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }
}
