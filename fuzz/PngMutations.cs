using System.Buffers.Binary;
using System.Text;

namespace VitSparse.Fuzz;

/// <summary>
/// PNG-aware mutations: every chunk carries a CRC, so a plain byte flip is refused at the first check.
/// These mutate chunks (drop, duplicate, swap, truncate, insert short ancillary chunks such as a 1-byte
/// tRNS, extreme IHDR fields) or bytes, then make every CRC correct again so the decoder gets further.
/// </summary>
static class PngMutations
{
    static readonly string[] InsertedTypes = ["tRNS", "PLTE", "IDAT", "IHDR", "IEND", "gAMA", "sBIT", "bKGD"];
    static readonly uint[] IhdrValues = [0, 1, 2, 3, 4, 7, 8, 16, 255, 16384, 65535, 65536, 1 << 20, int.MaxValue, uint.MaxValue];
    static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    public static byte[] Mutate(byte[] input, Random rng, Func<byte[], byte[]> mutateBytes)
    {
        var chunks = Parse(input);
        if (chunks == null || chunks.Count == 0 || rng.NextDouble() < 0.5) return FixCrcs(mutateBytes(input));
        int i = rng.Next(chunks.Count);
        switch (rng.Next(7))
        {
            case 0: chunks.RemoveAt(i); break;
            case 1: chunks.Insert(rng.Next(chunks.Count + 1), chunks[i]); break;
            case 2: int j = rng.Next(chunks.Count); (chunks[i], chunks[j]) = (chunks[j], chunks[i]); break;
            case 3: chunks[i] = (chunks[i].Type, chunks[i].Data[..rng.Next(chunks[i].Data.Length + 1)]); break;
            case 4:
                var data = new byte[rng.Next(rng.NextDouble() < 0.8 ? 9 : 1024)];
                rng.NextBytes(data);
                chunks.Insert(1 + rng.Next(chunks.Count), (InsertedTypes[rng.Next(InsertedTypes.Length)], data));
                break;
            case 5:
                int ihdr = chunks.FindIndex(c => c.Type == "IHDR");
                if (ihdr < 0 || chunks[ihdr].Data.Length < 13) break;
                var h = (byte[])chunks[ihdr].Data.Clone();
                int field = rng.Next(7);   // width, height, then bit depth, colour type, compression, filter, interlace
                if (field < 2) BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(4 * field), IhdrValues[rng.Next(IhdrValues.Length)]);
                else h[6 + field] = (byte)IhdrValues[rng.Next(IhdrValues.Length)];
                chunks[ihdr] = ("IHDR", h);
                break;
            default: chunks[i] = (chunks[i].Type, mutateBytes(chunks[i].Data)); break;
        }
        return Write(input.AsSpan(0, 8), chunks);
    }

    static List<(string Type, byte[] Data)>? Parse(byte[] png)
    {
        if (png.Length < 8) return null;
        var chunks = new List<(string, byte[])>();
        for (int pos = 8; pos + 12 <= png.Length;)
        {
            uint length = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos));
            if (length > png.Length - pos - 12) return chunks;
            chunks.Add((Encoding.Latin1.GetString(png, pos + 4, 4), png.AsSpan(pos + 8, (int)length).ToArray()));
            pos += 12 + (int)length;
        }
        return chunks;
    }

    static byte[] Write(ReadOnlySpan<byte> signature, List<(string Type, byte[] Data)> chunks)
    {
        var ms = new MemoryStream();
        ms.Write(signature);
        Span<byte> word = stackalloc byte[4];
        foreach (var (type, data) in chunks)
        {
            BinaryPrimitives.WriteUInt32BigEndian(word, (uint)data.Length);
            ms.Write(word);
            byte[] typed = [.. Encoding.Latin1.GetBytes(type), .. data];
            ms.Write(typed);
            BinaryPrimitives.WriteUInt32BigEndian(word, Crc(typed));
            ms.Write(word);
        }
        return ms.ToArray();
    }

    /// <summary>Recomputes the CRC of every chunk whose length still fits the file.</summary>
    static byte[] FixCrcs(byte[] png)
    {
        for (int pos = 8; pos + 12 <= png.Length;)
        {
            uint length = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos));
            if (length > png.Length - pos - 12) break;
            BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(pos + 8 + (int)length), Crc(png.AsSpan(pos + 4, 4 + (int)length)));
            pos += 12 + (int)length;
        }
        return png;
    }

    static uint Crc(ReadOnlySpan<byte> bytes)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in bytes) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
}
