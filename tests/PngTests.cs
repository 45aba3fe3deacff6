using VitSparse.Runtime;
using VitSparse.Runtime.Images;
using Xunit;

namespace VitSparse.Tests;

/// <summary>Hand-made PNGs (tools/images/make_image_fixtures.py): every color type, depths 1–16, all filters, Adam7.</summary>
public class PngTests
{
    [Theory]
    [InlineData("gray8", 1)]
    [InlineData("gray1", 1)]
    [InlineData("gray4_adam7", 1)]
    [InlineData("gray16", 1)]
    [InlineData("rgb8", 3)]
    [InlineData("rgb8_adam7", 3)]
    [InlineData("rgb16", 3)]
    [InlineData("gray_alpha8", 4)]
    [InlineData("rgba16_adam7", 4)]
    [InlineData("palette4", 3)]
    [InlineData("palette8_trns", 4)]
    public void Decodes_known_pixels(string name, int channels)
    {
        var img = ImageFile.Decode(Fixtures.Path_($"png_{name}.png"));
        Assert.Equal((13, 11, channels), (img.Width, img.Height, img.Channels));
        Assert.Equal(Fixtures.Npy_($"png_{name}.pixels.npy").Data, img.Pixels.Select(b => (float)b).ToArray());
    }

    static byte[] Rgb8 => File.ReadAllBytes(Fixtures.Path_("png_rgb8.png"));

    static FileFormatException Fails(byte[] png) => Assert.Throws<FileFormatException>(() => ImageFile.Decode(png, "bad.png"));

    [Fact]
    public void Corrupt_pngs_are_refused_with_the_file_named()
    {
        var crc = Rgb8; crc[30] ^= 0xFF; // inside IHDR's data → its CRC no longer matches
        Assert.Contains("corrupt or truncated PNG header", Fails(crc).Message);
        Assert.Contains("unknown signature", Fails([1, 2, 3, 4, 5, 6, 7, 8, 9]).Message);
        Assert.Contains("truncated or corrupt PNG", Fails(Rgb8[..(Rgb8.Length / 2)]).Message);
        Assert.Contains("corrupt or truncated PNG header", Fails(Rgb8[..20]).Message);
        Assert.Equal("bad.png", Fails(crc).File);
    }

    [Fact]
    public void Missing_ihdr_bad_zlib_and_oversized_images_are_refused()
    {
        var png = Rgb8;
        // Drop IHDR (8-byte signature, then 25 bytes of IHDR chunk).
        var noIhdr = png[..8].Concat(png[33..]).ToArray();
        Assert.Contains("corrupt or truncated PNG header", Fails(noIhdr).Message);
        Assert.Contains("above the 12×12 limit", Assert.Throws<FileFormatException>(() => ImageFile.Decode(png, "big.png", maxSide: 12)).Message);
        Assert.Contains("corrupt or truncated PNG header", Fails(WithIhdr(png, width: 0)).Message);
        Assert.Contains("above the 16384×16384 limit", Fails(WithIhdr(png, width: 1_000_000)).Message);
        Assert.Contains("truncated or corrupt PNG", Fails(WithIdat(png, [0x78, 0x9c, 0xFF, 0xFF, 0xFF, 0x00])).Message);
    }

    static byte[] WithIhdr(byte[] png, int width)
    {
        var p = (byte[])png.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(p.AsSpan(16), width);
        FixCrc(p, 8, 13);
        return p;
    }

    /// <summary>Replaces the first IDAT's data (with a valid CRC), to feed the inflater a broken stream.</summary>
    static byte[] WithIdat(byte[] png, byte[] data)
    {
        int pos = 8;
        while (System.Text.Encoding.ASCII.GetString(png, pos + 4, 4) != "IDAT")
            pos += 12 + System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(pos));
        int len = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(pos));
        var chunk = new byte[12 + data.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(chunk, data.Length);
        "IDAT"u8.CopyTo(chunk.AsSpan(4));
        data.CopyTo(chunk, 8);
        var p = png[..pos].Concat(chunk).Concat(png[(pos + 12 + len)..]).ToArray();
        FixCrc(p, pos, data.Length);
        return p;
    }

    static void FixCrc(byte[] p, int chunkStart, int length)
    {
        uint c = 0xFFFFFFFFu;
        for (int i = chunkStart + 4; i < chunkStart + 8 + length; i++)
        {
            c ^= p[i];
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(chunkStart + 8 + length), c ^ 0xFFFFFFFFu);
    }
}

/// <summary>Eval preprocessing against torchvision on crops of real photos (tools/images/make_image_fixtures.py).</summary>
public class PreprocessTests
{
    [Theory]
    [InlineData("fruits")]
    [InlineData("baboon")]
    [InlineData("chicky")]
    public void Matches_torchvision_within_one_level(string name)
    {
        var img = ImageFile.Decode(Fixtures.Path_($"photo_{name}.png"));
        var tensor = new float[3 * 64 * 64];
        Preprocess.ToTensor(img, 64, 0.875f, [0f, 0f, 0f], [1f, 1f, 1f], tensor);
        var expected = Fixtures.Npy_($"photo_{name}.eval64.npy");
        Assert.Equal(new[] { 3, 64, 64 }, expected.Shape);
        double worst = expected.Data.Zip(tensor, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(worst <= 1 / 255.0 + 1e-6, $"{name}: worst difference {worst * 255:0.00}/255");
    }

    [Fact]
    public void Normalises_with_mean_and_std_and_converts_gray()
    {
        var gray = new DecodedImage(2, 2, 1, [0, 255, 51, 102]);
        var t = new float[3 * 2 * 2];
        Preprocess.ToTensor(gray, 2, 1f, [0.5f, 0.5f, 0.5f], [0.25f, 0.5f, 1f], t);
        Assert.Equal((0 - 0.5f) / 0.25f, t[0], 5);
        Assert.Equal((1 - 0.5f) / 0.5f, t[4 + 1], 5);
        Assert.Equal(0.2f - 0.5f, t[8 + 2], 5);
    }
}
