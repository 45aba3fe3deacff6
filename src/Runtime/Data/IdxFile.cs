using System.Buffers.Binary;
using System.IO.Compression;

namespace VitSparse.Runtime.Data;

/// <summary>
/// An IDX file (MNIST / Fashion-MNIST format: big-endian magic 0x0000TTDD, DD dimensions, unsigned bytes),
/// raw or gzip-compressed, read as a stream: items are pulled in batches, never all loaded at once.
/// </summary>
public sealed class IdxFile : IDisposable
{
    readonly Stream _stream;
    long _read;

    /// <summary>The file as given.</summary>
    public string Path { get; }
    /// <summary>Dimensions from the header: count first.</summary>
    public int[] Dims { get; }
    /// <summary>Items in the file.</summary>
    public int Count => Dims[0];
    /// <summary>Bytes per item: rows·cols for an image file, 1 for a label file.</summary>
    public int ItemSize { get; }
    /// <summary>Items not read yet.</summary>
    public long Remaining => Count - _read;

    /// <summary>Opens an IDX file (raw or gzip) and checks its header against its size.</summary>
    public IdxFile(string path)
    {
        Path = path;
        if (!File.Exists(path)) throw new FileFormatException(path, "file not found");
        Stream s = File.OpenRead(path);
        try
        {
            Span<byte> head = stackalloc byte[4];
            if (s.Read(head) == 4 && head[0] == 0x1f && head[1] == 0x8b)
            {
                s.Position = 0;
                s = new GZipStream(s, CompressionMode.Decompress);
                ReadExactly(s, head, "magic number");
            }
            else if (s.Length < 4) throw new FileFormatException(path, "truncated: no IDX magic number");
            if (head[0] != 0 || head[1] != 0 || head[2] != 0x08)
                throw new FileFormatException(path, $"wrong IDX magic 0x{BinaryPrimitives.ReadUInt32BigEndian(head):x8}: expected unsigned-byte data (0x0000080N)");
            int rank = head[3];
            if (rank is < 1 or > 4) throw new FileFormatException(path, $"IDX rank {rank} is not supported (1–4)");
            Dims = new int[rank];
            Span<byte> dim = stackalloc byte[4];
            long size = 1;
            for (int i = 0; i < rank; i++)
            {
                ReadExactly(s, dim, "dimensions");
                uint d = BinaryPrimitives.ReadUInt32BigEndian(dim);
                if (d > int.MaxValue) throw new FileFormatException(path, $"dimension {i} = {d} is too large");
                Dims[i] = (int)d;
                if (i > 0) size *= d;
            }
            if (size > 1 << 26) throw new FileFormatException(path, $"items of {size} bytes are too large");
            ItemSize = (int)size;
            _stream = s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    void ReadExactly(Stream s, Span<byte> buffer, string what)
    {
        try { s.ReadExactly(buffer); }
        catch (EndOfStreamException) { throw new FileFormatException(Path, $"truncated while reading the {what}"); }
        catch (InvalidDataException e) { throw new FileFormatException(Path, $"corrupt gzip stream: {e.Message}"); }
    }

    /// <summary>Reads the next <paramref name="items"/> items into <paramref name="dst"/> (items·ItemSize bytes).</summary>
    public void Read(int items, Span<byte> dst)
    {
        if (items > Remaining) throw new ArgumentOutOfRangeException(nameof(items), $"{items} requested, {Remaining} left in {Path}");
        ReadExactly(_stream, dst[..(items * ItemSize)], $"items {_read}..{_read + items}");
        _read += items;
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _stream.Dispose();
}
