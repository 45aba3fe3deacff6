using VitSparse.Runtime;
using VitSparse.Runtime.Images;
using Xunit;

namespace VitSparse.Tests;

public class JpegTests
{
    static string Jpeg => Fixtures.Path_("gradient.jpg");

    [Fact]
    public void Decodes_the_pixels_pil_gives()
    {
        var img = ImageFile.Decode(Jpeg);
        Assert.Equal((45, 31, 3), (img.Width, img.Height, img.Channels));
        var expected = Fixtures.Npy_("gradient.jpg.pixels.npy");
        Assert.Equal(new[] { 31, 45, 3 }, expected.Shape);
        Assert.Equal(expected.Data, img.Pixels.Select(b => (float)b).ToArray()); // libjpeg-turbo inside Skia, no colour conversion: exact
    }

    [Fact]
    public void Truncated_jpeg_is_an_error_not_grey_pixels()
    {
        var bytes = File.ReadAllBytes(Jpeg);
        var e = Assert.Throws<FileFormatException>(() => ImageFile.Decode(bytes.AsSpan(0, bytes.Length * 2 / 3), "cut.jpg"));
        Assert.Equal("cut.jpg", e.File);
    }

    [Fact]
    public void Garbage_and_oversized_images_are_refused()
    {
        Assert.Contains("unknown signature", Assert.Throws<FileFormatException>(() => ImageFile.Decode("PNG!..."u8, "x.jpg")).Message);
        Assert.Equal("y.jpg", Assert.Throws<FileFormatException>(() => ImageFile.Decode([0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3], "y.jpg")).File);
        Assert.Contains("above the 40×40 limit", Assert.Throws<FileFormatException>(() => ImageFile.Decode(Jpeg, maxSide: 40)).Message);
        var e = Assert.Throws<FileFormatException>(() => ImageFile.Decode(Jpeg, maxPixels: 45 * 31 - 1));
        Assert.Contains("45×31 = 1,395 pixels, above the limit of 1,394", e.Message);
        Assert.Contains("--max-image-pixels", e.Message);
        Assert.Equal(45, ImageFile.Decode(Jpeg, maxPixels: 45 * 31).Width); // the limit itself is allowed
        Assert.Contains("not found", Assert.Throws<FileFormatException>(() => ImageFile.Decode(Jpeg + ".missing")).Message);
        Assert.Equal("maxPixels", Assert.Throws<InputException>(() => ImageFile.Decode(Jpeg, maxPixels: 0)).Argument);
    }
}

/// <summary>
/// JPEG decoding against PIL on every real photo in Debian opencv-doc (59 files: 4:2:0, 4:4:4, progressive,
/// gray): the SHA-256 of PIL's pixels is committed (tools/images/make_image_fixtures.py); the files come
/// from the opencv-doc package, which test.sh installs.
/// </summary>
public class RealPhotoJpegTests
{
    const string Photos = "/usr/share/doc/opencv-doc/examples/data";

    [Fact]
    public void Every_opencv_doc_jpeg_decodes_to_the_pixels_pil_gives()
    {
        Assert.True(Directory.Exists(Photos), $"{Photos} is missing: apt-get install opencv-doc (test.sh does)");
        var lines = File.ReadAllLines(Fixtures.Path_("opencv_doc_jpeg_pil.txt")).Where(l => !l.StartsWith('#')).ToArray();
        Assert.Equal(59, lines.Length);
        var wrong = new List<string>();
        foreach (var line in lines)
        {
            var f = line.Split(' ');
            var img = ImageFile.Decode(Path.Combine(Photos, f[0]));
            string got = $"{img.Width} {img.Height} {(img.Channels == 1 ? "L" : "RGB")} {Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(img.Pixels))}";
            if (got != string.Join(' ', f[1..])) wrong.Add($"{f[0]}: PIL {string.Join(' ', f[1..4])}, ours {got[..got.LastIndexOf(' ')]}");
        }
        Assert.True(wrong.Count == 0, $"{wrong.Count} of {lines.Length} differ from PIL: {string.Join("; ", wrong)}");
    }
}
