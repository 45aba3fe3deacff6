using VitSparse.Runtime;
using VitSparse.Runtime.Images;

namespace VitSparse.Cli;

static class ImageFiles
{
    /// <summary>Decodes a JPEG or PNG by its signature (not its extension).</summary>
    public static DecodedImage Decode(string path)
    {
        if (!File.Exists(path)) throw new FileFormatException(path, "file not found");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length >= 2 && bytes[0] == 0xFF && bytes[1] == 0xD8) return JpegDecoder.Decode(bytes, path);
        if (bytes.Length >= 8 && bytes[0] == 0x89 && bytes[1] == (byte)'P') return PngDecoder.Decode(bytes, path);
        throw new FileFormatException(path, "not a JPEG or PNG image");
    }
}
