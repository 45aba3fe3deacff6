using VitSparse.Runtime;
using VitSparse.Runtime.Images;
using Xunit;

namespace VitSparse.Tests;

public class FolderTests
{
    static string ClassFolder(bool withBadImage)
    {
        string dir = Fixtures.TempDir();
        foreach (var (cls, files) in new[] { ("cats", new[] { "photo_fruits.png", "gradient.jpg" }), ("dogs", new[] { "photo_baboon.png" }) })
        {
            Directory.CreateDirectory(Path.Combine(dir, cls));
            foreach (var f in files) File.Copy(Fixtures.Path_(f), Path.Combine(dir, cls, f));
        }
        if (withBadImage) File.WriteAllBytes(Path.Combine(dir, "dogs", "broken.jpg"), [0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 1, 2]);
        File.WriteAllText(Path.Combine(dir, "dogs", "notes.txt"), "not an image");
        return dir;
    }

    [Fact]
    public void Eval_on_a_class_folder_stops_on_a_bad_image_unless_told_to_skip()
    {
        string dir = ClassFolder(withBadImage: true);
        var (code, _, err) = Fixtures.Cli("eval", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--data", dir);
        Assert.Equal(2, code);
        Assert.Contains("broken.jpg", err);
        (code, var stdout, err) = Fixtures.Cli("eval", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--data", dir, "--skip-bad");
        Assert.True(code == 0, err);
        Assert.Contains("skipping", err);
        Assert.Contains("broken.jpg", err);
        Assert.Contains("skipped 1 unreadable images", stdout);
        Assert.Contains(": 3 images, top-1", stdout);
    }

    [Fact]
    public void Eval_with_a_labels_file_and_prune_calibrating_on_a_folder()
    {
        string dir = ClassFolder(withBadImage: false);
        string labels = Path.Combine(dir, "labels.txt");
        File.WriteAllLines(labels, ["cats/photo_fruits.png 4", "dogs/photo_baboon.png 7", ""]);
        var (code, stdout, err) = Fixtures.Cli("eval", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--data", dir, "--labels", labels);
        Assert.True(code == 0, err);
        Assert.Contains(": 2 images", stdout);
        File.WriteAllLines(labels, ["cats/photo_fruits.png eleven"]);
        (code, _, err) = Fixtures.Cli("eval", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--data", dir, "--labels", labels);
        Assert.Equal(2, code);
        Assert.Contains("labels.txt: line 1", err);

        string output = Path.Combine(Fixtures.TempDir(), "p.safetensors");
        (code, stdout, err) = Fixtures.Cli("prune", "--weights", Fixtures.Path_("ragged_tiny.safetensors"), "--macs", "0.0003G", "--calib", dir, "-o", output);
        Assert.True(code == 0, err);
        Assert.Contains("calibrating on 3 images", stdout);
    }

    [Fact]
    public void Camera_frames_with_stride_and_bgr_order_equal_the_rgb_image()
    {
        var photo = ImageFile.Decode(Fixtures.Path_("photo_chicky.png"));
        int w = photo.Width, h = photo.Height, stride = w * 4 + 12;
        var frame = new byte[stride * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int s = (y * w + x) * 3, d = y * stride + x * 4;
                frame[d] = photo.Pixels[s + 2]; frame[d + 1] = photo.Pixels[s + 1]; frame[d + 2] = photo.Pixels[s]; frame[d + 3] = 255;
            }
        var fromFrame = ImageFile.FromPixels(frame, w, h, stride, PixelOrder.Bgra);
        Assert.Equal(photo.Pixels, fromFrame.Pixels);
        Assert.Equal("stride", Assert.Throws<InputException>(() => ImageFile.FromPixels(frame, w, h, w, PixelOrder.Bgra)).Argument);
        Assert.Equal("pixels", Assert.Throws<InputException>(() => ImageFile.FromPixels(frame.AsSpan(0, 100), w, h, stride, PixelOrder.Bgra)).Argument);
    }
}
