using VitSparse.Runtime;
using VitSparse.Runtime.Images;
using VitSparse.Runtime.Models;
using Xunit;
using Xunit.Abstractions;

namespace VitSparse.Tests;

/// <summary>
/// Hostile JPEG/PNG files (tools/hostile/make_image_fixtures.py, issue 19), decoded and preprocessed as
/// infer/eval do for a 224×224 DeiT: each is refused with our exception naming the file, or (thin but valid
/// images) preprocessed correctly, in under a second and within a managed-allocation budget on this thread.
/// </summary>
public class HostileImageTests(ITestOutputHelper output)
{
    static readonly VitConfig Deit = Architectures.Get("deit_s");

    static string Hostile(string name) => Fixtures.Path_(Path.Combine("hostile", name));


    // Budgets are managed allocation on this thread (Skia's own buffers are native: for a refused file only its
    // header state). A refused file costs its bytes (≤ 1.4 KB here), Skia's managed wrappers and the exception:
    // measured ≤ 22 KiB, so 256 KiB leaves room for JIT and runtime noise while any pixel buffer of a bomb
    // (the 16384² PNG allocated 1 GiB before this fix) fails it by orders of magnitude.
    [Theory]
    [InlineData("bomb_16384x16384_rgba.png", "PNG is 16384×16384 = 268,435,456 pixels, above the limit of 89,478,485", 256)]
    [InlineData("header_16000x16000.jpg", "JPEG is 16000×16000 = 256,000,000 pixels, above the limit of 89,478,485", 256)]
    [InlineData("header_65000x65000.jpg", "JPEG is 65000×65000, above the 16384×16384 limit", 256)]
    [InlineData("corrupt_zlib.png", "truncated or corrupt PNG", 256)]
    [InlineData("truncated_adam7.png", "truncated or corrupt PNG", 256)]
    [InlineData("truncated.jpg", "truncated or corrupt JPEG", 256)]
    public void Refused_naming_the_file_fast_and_within_budget(string name, string problem, int budgetKiB)
    {
        string path = Hostile(name);
        var chw = new float[Deit.ImageElements];
        var (error, ms, bytes) = Fixtures.Measure(() => ImageFile.ToTensor(path, Deit, chw));
        output.WriteLine($"{name}: {ms:0.0} ms, {bytes / 1024.0:0.0} KiB allocated: {error?.Message}");
        var e = Assert.IsType<FileFormatException>(error);
        Assert.Equal(path, e.File);
        Assert.StartsWith($"{path}: ", e.Message);
        Assert.Contains(problem, e.Message);
        Assert.True(ms < 1000, $"{name}: {ms:0} ms");
        Assert.True(bytes < budgetKiB << 10, $"{name}: {bytes:N0} bytes allocated, budget {budgetKiB} KiB");
    }

    [Fact]
    public void Limits_say_how_to_raise_them()
    {
        Assert.Contains("raise it with --max-image-pixels", Assert.Throws<FileFormatException>(() => ImageFile.Decode(Hostile("bomb_16384x16384_rgba.png"))).Message);
        Assert.Contains("raise it with --max-image-side", Assert.Throws<FileFormatException>(() => ImageFile.Decode(Hostile("header_65000x65000.jpg"))).Message);
        // Raising the side limit alone is not enough for a 4.2-gigapixel header: the pixel limit still holds.
        Assert.Contains("above the limit of 89,478,485", Assert.Throws<FileFormatException>(() => ImageFile.Decode(Hostile("header_65000x65000.jpg"), maxSide: 65535)).Message);
    }

    // The inflate bomb: libpng (inside Skia) inflates only what the one 1×1 row needs, never the 60 MB
    // (before this fix: 60 MB inflated into a MemoryStream). Budget: the 60 KB file read once, measured 61 KiB.
    [Fact]
    public void Inflate_bomb_decodes_its_one_pixel_without_inflating_the_rest()
    {
        string path = Hostile("inflate_1x1_60mb.png");
        DecodedImage? img = null;
        var (error, ms, bytes) = Fixtures.Measure(() => img = ImageFile.Decode(path));
        output.WriteLine($"inflate bomb: {ms:0.0} ms, {bytes / 1024.0:0.0} KiB allocated: {error?.Message}");
        Assert.Null(error);
        Assert.Equal((1, 1, 3), (img!.Width, img.Height, img.Channels));
        Assert.Equal(new byte[] { 0x10, 0x20, 0x30 }, img.Pixels);
        Assert.True(ms < 1000, $"{ms:0} ms");
        Assert.True(bytes < 256 << 10, $"{bytes:N0} bytes allocated, budget 256 KiB");
    }

    // Thin but valid images. Preprocessing computes only the 224×224 crop window, so what is allocated is the
    // file, the decoded image (96 KiB for 2×16384 RGB), the window's rows after the horizontal pass (a few
    // rows of 224·3 bytes) and 2×224 coefficient arrays: measured ≤ 161 KiB, budget 1 MiB. The full resize
    // needed 256×4,194,304×3 bytes (3 GiB) for 1×16384, and threw OverflowException for some sizes.
    [Theory]
    [InlineData("thin_1x16384.png", 1, 16384)]
    [InlineData("thin_2x16384.png", 2, 16384)]
    [InlineData("thin_16384x1.png", 16384, 1)]
    [InlineData("thin_8x4000.jpg", 8, 4000)]
    [InlineData("inflate_1x1_60mb.png", 1, 1)]
    public void Thin_images_are_preprocessed_correctly_within_budget(string name, int width, int height)
    {
        string path = Hostile(name);
        var chw = new float[Deit.ImageElements];
        var (error, ms, bytes) = Fixtures.Measure(() => ImageFile.ToTensor(path, Deit, chw));
        output.WriteLine($"{name}: {ms:0.0} ms, {bytes / 1024.0:0.0} KiB allocated: {error?.Message}");
        Assert.Null(error);
        Assert.True(ms < 1000, $"{name}: {ms:0} ms");
        Assert.True(bytes < 1 << 20, $"{name}: {bytes:N0} bytes allocated, budget 1 MiB");
        Assert.All(chw, v => Assert.True(float.IsFinite(v) && v > -3 && v < 3));

        // Correct: at a model size where the full resize is affordable, the window equals it bit for bit.
        var img = ImageFile.Decode(path);
        Assert.Equal((width, height, 3), (img.Width, img.Height, img.Channels));
        float[] mean = [0.5f, 0.4f, 0.3f], std = [0.2f, 0.25f, 0.3f];
        Assert.Equal(FullResizeReference.ToTensor(img, 8, 0.5f, mean, std), FullResizeReference.Windowed(img, 8, 0.5f, mean, std));
        // And at 224 each channel's crop of a 1-pixel-wide image is constant along x (one column, upscaled).
        if (width == 1)
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 224; y++)
                    Assert.All(chw.AsSpan((c * 224 + y) * 224, 224).ToArray(), v => Assert.Equal(chw[(c * 224 + y) * 224], v));
    }

    // A tRNS chunk shorter than its colour type needs (gray 2 bytes, RGB 6) crashed our own decoder
    // (ArgumentOutOfRangeException); libpng inside Skia drops the invalid chunk, like PIL's loader would not
    // even open the file. Either way nothing escapes: here the pixels are the file's own, exactly.
    [Theory]
    [InlineData("trns_short_gray.png")]
    [InlineData("trns_short_rgb.png")]
    public void Short_trns_chunks_are_ignored_not_a_crash(string name)
    {
        string path = Hostile(name);
        DecodedImage? img = null;
        var (error, ms, bytes) = Fixtures.Measure(() => img = ImageFile.Decode(path));
        output.WriteLine($"{name}: {ms:0.0} ms, {bytes / 1024.0:0.0} KiB allocated: {error?.Message ?? $"{img!.Width}×{img.Height}×{img.Channels}"}");
        Assert.Null(error);
        Assert.True(ms < 1000, $"{name}: {ms:0} ms");
        Assert.True(bytes < 256 << 10, $"{name}: {bytes:N0} bytes allocated, budget 256 KiB");
        bool gray = name.Contains("gray");
        Assert.Equal((16, 16, gray ? 1 : 3), (img!.Width, img.Height, img.Channels));
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++)
                for (int c = 0; c < img.Channels; c++)
                    Assert.Equal((byte)((x * 16 + y + c * 50) % 256), img.Pixels[(y * 16 + x) * img.Channels + c]);
    }

    [Fact]
    public void Infer_on_a_bomb_prints_the_file_and_exits_2()
    {
        string path = Hostile("bomb_16384x16384_rgba.png");
        var (code, stdout, err) = Fixtures.Cli("infer", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--input", path);
        Assert.Equal(2, code);
        Assert.StartsWith($"error: {path}: PNG is 16384×16384", err);
        Assert.Contains("--max-image-pixels", err);
        Assert.Equal("", stdout);

        string thin = Hostile("thin_1x16384.png");
        (code, stdout, err) = Fixtures.Cli("infer", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--input", thin);
        Assert.True(code == 0, err);
        Assert.Contains(thin, stdout);

        (code, _, err) = Fixtures.Cli("infer", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--input", thin, "--max-image-pixels", "16383");
        Assert.Equal(2, code);
        Assert.StartsWith($"error: {thin}: PNG is 1×16384 = 16,384 pixels, above the limit of 16,383", err);
        (code, _, err) = Fixtures.Cli("infer", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--input", thin, "--max-image-pixels", "0");
        Assert.Equal(2, code);
        Assert.StartsWith("error: --max-image-pixels: must be at least 1", err);
    }
}
