using VitSparse.Runtime;
using VitSparse.Runtime.Images;
using Xunit;

namespace VitSparse.Tests;

public class JpegTests
{
    static string Jpeg => Fixtures.Path_("gradient.jpg");

    [Fact]
    public void Decodes_the_pixels_libjpeg_gives_pil()
    {
        var img = JpegDecoder.Decode(Jpeg);
        Assert.Equal((45, 31, 3), (img.Width, img.Height, img.Channels));
        var expected = Fixtures.Npy_("gradient.jpg.pixels.npy");
        Assert.Equal(new[] { 31, 45, 3 }, expected.Shape);
        Assert.Equal(expected.Data, img.Pixels.Select(b => (float)b).ToArray()); // same library, same settings: exact
    }

    [Fact]
    public void Truncated_jpeg_is_an_error_not_grey_pixels()
    {
        var bytes = File.ReadAllBytes(Jpeg);
        var e = Assert.Throws<FileFormatException>(() => JpegDecoder.Decode(bytes.AsSpan(0, bytes.Length * 2 / 3), "cut.jpg"));
        Assert.Equal("cut.jpg", e.File);
    }

    [Fact]
    public void Garbage_and_oversized_images_are_refused()
    {
        Assert.Contains("no SOI marker", Assert.Throws<FileFormatException>(() => JpegDecoder.Decode("PNG!..."u8, "x.jpg")).Message);
        Assert.Equal("y.jpg", Assert.Throws<FileFormatException>(() => JpegDecoder.Decode([0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3], "y.jpg")).File);
        Assert.Contains("above the 40×40 limit", Assert.Throws<FileFormatException>(() => JpegDecoder.Decode(Jpeg, maxSide: 40)).Message);
        Assert.Contains("not found", Assert.Throws<FileFormatException>(() => JpegDecoder.Decode(Jpeg + ".missing")).Message);
    }
}
