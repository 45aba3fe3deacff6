using System.Buffers.Binary;
using System.IO.Compression;

namespace VitSparse.Runtime.Data;

/// <summary>
/// An IDX file (MNIST / Fashion-MNIST format: big-endian magic 0x0000TTDD, DD dimensions, unsigned bytes),
/// raw or gzip-compressed, read as a stream: items are pulled in batches, never all loaded at once.
/// The data size the header declares is checked before anything is allocated: against the file's length
/// for a raw file; for a gzip file (whose length does not bound the data) against what deflate can expand
/// that many bytes to and <see cref="MaxGzipDataBytes"/>, and inflation never reads past the declared size.
/// </summary>
public sealed class IdxFile : IDisposable
{
    /// <summary>Largest item (product of the dimensions after the first): 64 MiB, far above any image set.</summary>
    public const long MaxItemBytes = 1L << 26;

    /// <summary>
    /// Most data a gzip-compressed IDX may declare: 4 GiB (Fashion-MNIST's training images are 47 MB).
    /// A larger set can be read uncompressed, where the file's length is the bound.
    /// </summary>
    public const long MaxGzipDataBytes = 4L << 30;

    /// <summary>Deflate expands one input byte to at most 1032 output bytes (zlib's documented limit).</summary>
    const long MaxDeflateRatio = 1032;

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
        Stream s;
        try { s = File.OpenRead(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new FileFormatException(path, $"cannot read: {e.Message}", e); }
        try
        {
            long fileLength = s.Length;
            Span<byte> head = stackalloc byte[4];
            bool gzip = false;
            if (s.Read(head) == 4 && head[0] == 0x1f && head[1] == 0x8b)
            {
                gzip = true;
                s.Position = 0;
                s = new GZipStream(s, CompressionMode.Decompress);
                ReadExactly(s, head, "magic number");
            }
            else if (fileLength < 4) throw new FileFormatException(path, "truncated: no IDX magic number");
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
                if (i == 0) continue;
                // An item of 0 bytes would make any count "fit" the file: 2^31 empty images from 16 bytes.
                if (d == 0) throw new FileFormatException(path, $"dimension {i} is 0: items would hold no data");
                // Bounded at every step, so the product can neither overflow nor wrap to 0
                // (dimensions 2^21·2^21·2^22 did).
                size *= d;
                if (size > MaxItemBytes) throw new FileFormatException(path, $"items of {ItemText(Dims, i)} bytes are too large (limit {MaxItemBytes})");
            }
            ItemSize = (int)size;
            long headerBytes = 4 + 4L * rank, dataBytes = Count * size;
            if (!gzip && headerBytes + dataBytes != fileLength)
                throw new FileFormatException(path, $"{(headerBytes + dataBytes > fileLength ? "truncated" : "trailing bytes")}: header declares {Count} items of {size} bytes ({dataBytes} bytes of data), the file holds {fileLength - headerBytes}");
            if (gzip && dataBytes > Math.Min(MaxGzipDataBytes, MaxDeflateRatio * fileLength))
                throw new FileFormatException(path, $"header declares {dataBytes} bytes of data, more than a {fileLength}-byte gzip file can hold (limit {MaxGzipDataBytes}; decompress it to read larger sets)");
            // Inflating stops at the declared end: reads past it are refused by Read's count check.
            _stream = s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    static string ItemText(int[] dims, int upTo) => string.Join("×", dims[1..(upTo + 1)]);

    void ReadExactly(Stream s, Span<byte> buffer, string what)
    {
        try { s.ReadExactly(buffer); }
        catch (EndOfStreamException) { throw new FileFormatException(Path, $"truncated while reading the {what}"); }
        catch (InvalidDataException e) { throw new FileFormatException(Path, $"corrupt gzip stream: {e.Message}", e); }
        // ZLibException and disk errors are IOExceptions: still this file's problem, named as such.
        catch (IOException e) { throw new FileFormatException(Path, $"cannot read the {what}: {e.Message}", e); }
    }

    /// <summary>Reads the next <paramref name="items"/> items into <paramref name="dst"/> (items·ItemSize bytes).</summary>
    public void Read(int items, Span<byte> dst)
    {
        if (items < 0 || items > Remaining) throw new ArgumentOutOfRangeException(nameof(items), $"{items} requested, {Remaining} left in {Path}");
        long bytes = (long)items * ItemSize;
        if (bytes > dst.Length) throw new ArgumentException($"{items} items of {ItemSize} bytes do not fit in {dst.Length} bytes", nameof(dst));
        ReadExactly(_stream, dst[..(int)bytes], $"items {_read}..{_read + items}");
        _read += items;
        // A raw file's length was checked at open; a gzip stream is checked for one byte past the
        // declared end, so a stream that would inflate further is refused without inflating it.
        if (Remaining == 0 && _stream is GZipStream && ReadPastEnd())
            throw new FileFormatException(Path, $"trailing data after the {Count} items the header declares");
    }

    bool ReadPastEnd()
    {
        try { return _stream.ReadByte() >= 0; }
        catch (Exception e) when (e is InvalidDataException or IOException) { throw new FileFormatException(Path, $"corrupt gzip stream after the last item: {e.Message}", e); }
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _stream.Dispose();
}
