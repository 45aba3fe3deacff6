using System.Text;

namespace VitSparse.Runtime.Formats;

/// <summary>
/// Small user-supplied text files (class names, pruning ratios): size bounded before reading, strict UTF-8,
/// and every failure (missing, unreadable, too large, not UTF-8) reported as a <see cref="FileFormatException"/>
/// naming the file.
/// </summary>
public static class TextFile
{
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The text of <paramref name="path"/> (at most <paramref name="maxBytes"/>, UTF-8); <paramref name="what"/> names the kind of file in errors.</summary>
    public static string Read(string path, long maxBytes, string what)
    {
        if (!File.Exists(path)) throw new FileFormatException(path, $"{what} not found");
        byte[] bytes;
        try
        {
            long length = new FileInfo(path).Length;
            if (length > maxBytes) throw new FileFormatException(path, $"{what} of {length} bytes exceeds the {maxBytes}-byte limit");
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new FileFormatException(path, $"cannot read the {what}: {e.Message}", e); }
        var text = bytes.AsSpan();
        if (text.StartsWith(Encoding.UTF8.Preamble)) text = text[3..];
        try { return StrictUtf8.GetString(text); }
        catch (DecoderFallbackException e) { throw new FileFormatException(path, $"{what} is not UTF-8 text (invalid byte at offset {e.Index})", e); }
    }
}
