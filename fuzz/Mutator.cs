using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace VitSparse.Fuzz;

/// <summary>How a target's inputs are structured, so mutations can reach past the outer checks.</summary>
public enum InputKind
{
    /// <summary>Bytes: flips, inserts, deletes, splices, interesting integers.</summary>
    Binary,
    /// <summary>JSON or other text: numbers replaced by extremes, invalid UTF-8, deep nesting, plus binary ops.</summary>
    Json,
    /// <summary>safetensors: the JSON header mutated as text, its 8-byte length refreshed most of the time.</summary>
    SafeTensors,
    /// <summary>NPY: the Python-dict header mutated as text, its length field refreshed most of the time.</summary>
    Npy,
    /// <summary>gzip: the decompressed payload mutated and recompressed, or the compressed bytes themselves.</summary>
    Gzip,
    /// <summary>PNG: chunks dropped, repeated, truncated, inserted, IHDR fields set to extremes; CRCs made valid again.</summary>
    Png,
}

/// <summary>
/// Deterministic mutations: the same <see cref="Random"/> seed and corpus give the same inputs, so a CI
/// failure reproduces from the seed alone (the failing input is also written out).
/// </summary>
public sealed class Mutator(Random rng)
{
    /// <summary>Inputs never grow past this: large allocations must come from what a file declares, not its size.</summary>
    public const int MaxInputBytes = 1 << 20;

    static readonly long[] InterestingIntegers =
    [
        0, 1, -1, 2, 3, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 1023, 1024, 4095, 4096,
        32767, 32768, 65535, 65536, 1 << 20, 1 << 21, 1 << 22, 1 << 26, 1 << 30, int.MaxValue, int.MinValue,
        1L << 31, uint.MaxValue, 1L << 32, 1L << 40, 100L << 20, long.MaxValue, long.MinValue,
    ];

    static readonly string[] InterestingJson =
    [
        "0", "-1", "1", "-0", "0.0", "1e999", "-1e999", "1e-45", "1e39", "3.4028235e38", "2147483647", "2147483648",
        "-2147483648", "4294967295", "4294967296", "9223372036854775807", "9223372036854775808",
        "18446744073709551615", "18446744073709551616", "99999999999999999999999999", "1073741824", "65536",
        "NaN", "Infinity", "null", "true", "\"\"", "[]", "{}", "\"NaN\"", "0.001", "1.5", "-7",
    ];

    static readonly byte[][] InvalidUtf8 =
    [
        [0xFF], [0xFE], [0xC0, 0x80], [0xC3], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x80], [0x00],
    ];

    public byte[] Mutate(byte[] input, InputKind kind, IReadOnlyList<byte[]> corpus)
    {
        byte[] data = kind switch
        {
            InputKind.SafeTensors when rng.NextDouble() < 0.8 => MutatePrefixedText(input, corpus, safetensors: true),
            InputKind.Npy when rng.NextDouble() < 0.6 => MutatePrefixedText(input, corpus, safetensors: false),
            InputKind.Gzip when rng.NextDouble() < 0.6 => MutateInflated(input, corpus),
            InputKind.Png when rng.NextDouble() < 0.8 => PngMutations.Mutate(input, rng, d => Stack(d, corpus, MutateBytes)),
            InputKind.Json when rng.NextDouble() < 0.7 => Stack(input, corpus, MutateText),
            _ => Stack(input, corpus, MutateBytes),
        };
        return data.Length > MaxInputBytes ? data[..MaxInputBytes] : data;
    }

    byte[] Stack(byte[] input, IReadOnlyList<byte[]> corpus, Func<byte[], IReadOnlyList<byte[]>, byte[]> op)
    {
        // Mostly one or two mutations (close to a valid file, past the first checks), sometimes many.
        int rounds = rng.NextDouble() < 0.7 ? 1 + rng.Next(2) : 1 + rng.Next(8);
        var data = input;
        for (int i = 0; i < rounds; i++) data = op(data, corpus);
        return data;
    }

    /// <summary>A text region behind a length field (safetensors: u64 at 0; NPY: u16 at 8 or u32 at 8), mutated as text.</summary>
    byte[] MutatePrefixedText(byte[] input, IReadOnlyList<byte[]> corpus, bool safetensors)
    {
        int lengthAt, lengthSize;
        if (safetensors) { lengthAt = 0; lengthSize = 8; }
        else if (input.Length >= 12 && input[6] is 2 or 3) { lengthAt = 8; lengthSize = 4; }
        else { lengthAt = 8; lengthSize = 2; }
        int start = lengthAt + lengthSize;
        if (input.Length < start) return Stack(input, corpus, MutateBytes);
        ulong declared = lengthSize switch
        {
            8 => BinaryPrimitives.ReadUInt64LittleEndian(input.AsSpan(lengthAt)),
            4 => BinaryPrimitives.ReadUInt32LittleEndian(input.AsSpan(lengthAt)),
            _ => BinaryPrimitives.ReadUInt16LittleEndian(input.AsSpan(lengthAt)),
        };
        if (declared > (ulong)(input.Length - start)) return Stack(input, corpus, MutateBytes);
        var text = input.AsSpan(start, (int)declared).ToArray();
        var rest = input.AsSpan(start + (int)declared).ToArray();
        text = Stack(text, corpus, MutateText);
        if (!safetensors && lengthSize == 2 && text.Length > ushort.MaxValue) text = text[..ushort.MaxValue];
        var output = new byte[start + text.Length + rest.Length];
        input.AsSpan(0, start).CopyTo(output);
        text.CopyTo(output, start);
        rest.CopyTo(output, start + text.Length);
        // Usually keep the length honest, so the parser gets as far as the text; sometimes leave it stale.
        if (rng.NextDouble() < 0.9)
        {
            var at = output.AsSpan(lengthAt);
            if (lengthSize == 8) BinaryPrimitives.WriteUInt64LittleEndian(at, (ulong)text.Length);
            else if (lengthSize == 4) BinaryPrimitives.WriteUInt32LittleEndian(at, (uint)text.Length);
            else BinaryPrimitives.WriteUInt16LittleEndian(at, (ushort)text.Length);
        }
        return output;
    }

    byte[] MutateInflated(byte[] input, IReadOnlyList<byte[]> corpus)
    {
        byte[] plain;
        try
        {
            using var z = new GZipStream(new MemoryStream(input), CompressionMode.Decompress);
            using var ms = new MemoryStream();
            var buffer = new byte[4096];
            int n;
            while ((n = z.Read(buffer)) > 0 && ms.Length < MaxInputBytes) ms.Write(buffer, 0, n);
            plain = ms.ToArray();
        }
        catch (Exception e) when (e is InvalidDataException or IOException) { return Stack(input, corpus, MutateBytes); }
        plain = Stack(plain, corpus, MutateBytes);
        using var output = new MemoryStream();
        using (var z = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)) z.Write(plain);
        return output.ToArray();
    }

    byte[] MutateText(byte[] data, IReadOnlyList<byte[]> corpus)
    {
        switch (rng.Next(9))
        {
            case 0:
            case 1: return ReplaceNumber(data, InterestingJson[rng.Next(InterestingJson.Length)]);
            case 2: return ReplaceNumber(data, rng.NextDouble() < 0.5 ? "-" + NumberAt(data) : InterestingIntegers[rng.Next(InterestingIntegers.Length)].ToString());
            case 3: return Insert(data, InsideString(data), InvalidUtf8[rng.Next(InvalidUtf8.Length)]);
            case 4: return SwapNumbers(data);
            case 5: return DuplicateRange(data);
            case 6: return Nest(data);
            case 7: return DeleteRange(data, 1 + rng.Next(8));
            default: return MutateBytes(data, corpus);
        }
    }

    byte[] MutateBytes(byte[] data, IReadOnlyList<byte[]> corpus)
    {
        if (data.Length == 0) return [(byte)rng.Next(256)];
        var d = (byte[])data.Clone();
        switch (rng.Next(10))
        {
            case 0: d[rng.Next(d.Length)] ^= (byte)(1 << rng.Next(8)); return d;
            case 1: d[rng.Next(d.Length)] = (byte)rng.Next(256); return d;
            case 2: d[rng.Next(d.Length)] = (byte)(rng.Next(4) switch { 0 => 0, 1 => 0xFF, 2 => 0x7F, _ => 0x80 }); return d;
            case 3:
            case 4: return WriteInteger(d);
            case 5: return Insert(data, rng.Next(data.Length + 1), RandomBytes(1 + rng.Next(rng.NextDouble() < 0.9 ? 16 : 512)));
            case 6: return DeleteRange(data, 1 + rng.Next(Math.Max(1, data.Length / 8)));
            case 7: return DuplicateRange(data);
            case 8: return Splice(data, corpus[rng.Next(corpus.Count)]);
            default: return data[..rng.Next(data.Length)];   // truncate
        }
    }

    /// <summary>An interesting integer, 1/2/4/8 bytes, little- or big-endian: lengths, dimensions, offsets, counts.</summary>
    byte[] WriteInteger(byte[] d)
    {
        long v = InterestingIntegers[rng.Next(InterestingIntegers.Length)];
        int size = 1 << rng.Next(4);
        if (d.Length < size) return d;
        var at = d.AsSpan(rng.Next(d.Length - size + 1), size);
        bool big = rng.Next(2) == 0;
        switch (size)
        {
            case 1: at[0] = (byte)v; break;
            case 2: if (big) BinaryPrimitives.WriteInt16BigEndian(at, (short)v); else BinaryPrimitives.WriteInt16LittleEndian(at, (short)v); break;
            case 4: if (big) BinaryPrimitives.WriteInt32BigEndian(at, (int)v); else BinaryPrimitives.WriteInt32LittleEndian(at, (int)v); break;
            default: if (big) BinaryPrimitives.WriteInt64BigEndian(at, v); else BinaryPrimitives.WriteInt64LittleEndian(at, v); break;
        }
        return d;
    }

    byte[] RandomBytes(int n)
    {
        var b = new byte[n];
        if (rng.Next(2) == 0) rng.NextBytes(b);
        else Array.Fill(b, (byte)rng.Next(256));
        return b;
    }

    static byte[] Insert(byte[] data, int at, ReadOnlySpan<byte> bytes) => [.. data.AsSpan(0, at), .. bytes, .. data.AsSpan(at)];

    byte[] DeleteRange(byte[] data, int length)
    {
        if (data.Length == 0) return data;
        int at = rng.Next(data.Length);
        length = Math.Min(length, data.Length - at);
        return [.. data.AsSpan(0, at), .. data.AsSpan(at + length)];
    }

    byte[] DuplicateRange(byte[] data)
    {
        if (data.Length == 0) return data;
        int from = rng.Next(data.Length), length = 1 + rng.Next(Math.Min(256, data.Length - from));
        return Insert(data, rng.Next(data.Length + 1), data.AsSpan(from, length));
    }

    /// <summary>This input's head with another's tail: structures that are each valid, joined wrongly.</summary>
    byte[] Splice(byte[] data, byte[] other)
    {
        if (other.Length == 0) return data;
        return [.. data.AsSpan(0, rng.Next(data.Length + 1)), .. other.AsSpan(rng.Next(other.Length))];
    }

    /// <summary>Deep nesting: a parser that recurses must stop at a limit, not at the stack's end.</summary>
    byte[] Nest(byte[] data)
    {
        int depth = rng.NextDouble() < 0.5 ? 1 + rng.Next(70) : 1000 + rng.Next(10000);
        string open = new('[', depth), close = new(']', depth);
        int at = rng.Next(data.Length + 1);
        return Insert(data, at, Encoding.ASCII.GetBytes(open + "0" + close));
    }

    /// <summary>Spans of digits (with sign, point, exponent) in the text.</summary>
    static List<(int Start, int Length)> Numbers(byte[] d)
    {
        var list = new List<(int, int)>();
        for (int i = 0; i < d.Length; i++)
        {
            if (!(IsDigit(d[i]) || (d[i] == '-' && i + 1 < d.Length && IsDigit(d[i + 1])))) continue;
            int j = i + 1;
            while (j < d.Length && (IsDigit(d[j]) || d[j] is (byte)'.' or (byte)'e' or (byte)'E' or (byte)'+' or (byte)'-')) j++;
            list.Add((i, j - i));
            i = j;
        }
        return list;
    }

    static bool IsDigit(byte b) => b is >= (byte)'0' and <= (byte)'9';

    string NumberAt(byte[] d)
    {
        var numbers = Numbers(d);
        if (numbers.Count == 0) return "1";
        var (s, l) = numbers[rng.Next(numbers.Count)];
        return Encoding.ASCII.GetString(d, s, l);
    }

    byte[] ReplaceNumber(byte[] d, string replacement)
    {
        var numbers = Numbers(d);
        if (numbers.Count == 0) return Insert(d, rng.Next(d.Length + 1), Encoding.ASCII.GetBytes(replacement));
        var (s, l) = numbers[rng.Next(numbers.Count)];
        return [.. d.AsSpan(0, s), .. Encoding.ASCII.GetBytes(replacement), .. d.AsSpan(s + l)];
    }

    /// <summary>Exchanges two numbers: offsets out of order, overlapping ranges, shapes that disagree with sizes.</summary>
    byte[] SwapNumbers(byte[] d)
    {
        var numbers = Numbers(d);
        if (numbers.Count < 2) return d;
        int i = rng.Next(numbers.Count), j = rng.Next(numbers.Count);
        if (i == j) return d;
        if (i > j) (i, j) = (j, i);
        var (a, al) = numbers[i];
        var (b, bl) = numbers[j];
        return [.. d.AsSpan(0, a), .. d.AsSpan(b, bl), .. d.AsSpan(a + al, b - a - al), .. d.AsSpan(a, al), .. d.AsSpan(b + bl)];
    }

    /// <summary>A position just inside a string literal (after a quote), or anywhere when there is none.</summary>
    int InsideString(byte[] d)
    {
        int quotes = 0;
        foreach (byte b in d) if (b == '"' || b == '\'') quotes++;
        if (quotes == 0) return rng.Next(d.Length + 1);
        int k = rng.Next(quotes);
        for (int i = 0; i < d.Length; i++)
            if ((d[i] == '"' || d[i] == '\'') && k-- == 0) return i + 1;
        return d.Length;
    }
}
