using System.IO.Compression;
using VitSparse.Runtime;
using VitSparse.Runtime.Data;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

public class DataTests
{
    static byte[] Idx(int[] dims, byte[] data, uint magic = 0x0800)
    {
        var ms = new MemoryStream();
        ms.Write([0, 0, (byte)(magic >> 8), (byte)dims.Length]);
        foreach (int d in dims) ms.Write([(byte)(d >> 24), (byte)(d >> 16), (byte)(d >> 8), (byte)d]);
        ms.Write(data);
        return ms.ToArray();
    }

    static string Write(string dir, string name, byte[] bytes, bool gzip = false)
    {
        string path = Path.Combine(dir, name);
        if (!gzip) { File.WriteAllBytes(path, bytes); return path; }
        using var f = File.Create(path);
        using var z = new GZipStream(f, CompressionLevel.Fastest);
        z.Write(bytes);
        return path;
    }

    static readonly VitConfig Tiny = VitConfig.Uniform("tiny", 8, 1, 1, classes: 3, imageSize: 4, patchSize: 2, inChannels: 1) with { Mean = [0.5f], Std = [0.25f] };

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Idx_images_are_streamed_normalised_with_their_labels(bool gzip)
    {
        string dir = Fixtures.TempDir();
        var pixels = Enumerable.Range(0, 3 * 16).Select(i => (byte)(i * 5)).ToArray();
        string images = Write(dir, "img.idx", Idx([3, 4, 4], pixels), gzip);
        string labels = Write(dir, "lab.idx", Idx([3], [2, 0, 1]), gzip);
        using var set = new IdxImages(images, labels, Tiny);
        Assert.Equal(3, set.Count);
        var x = new float[2 * 16];
        var y = new int[2];
        Assert.Equal(2, set.Next(2, x, y));
        Assert.Equal(new[] { 2, 0 }, y);
        Assert.Equal((5 * 17 / 255f - 0.5f) / 0.25f, x[17], 5);
        Assert.Equal(1, set.Next(2, x, y));
        Assert.Equal(1, y[0]);
        Assert.Equal(0, set.Next(2, x, y));
    }

    [Fact]
    public void Broken_idx_files_are_reported_by_name()
    {
        string dir = Fixtures.TempDir();
        string images = Write(dir, "img.idx", Idx([3, 4, 4], new byte[48]));
        string wrongMagic = Write(dir, "bad.idx", [0, 0, 0x0D, 3, 0, 0, 0, 1]);
        string fewLabels = Write(dir, "few.idx", Idx([2], [0, 1]));
        string truncated = Write(dir, "trunc.idx", Idx([3, 4, 4], new byte[20]));
        string labels = Write(dir, "lab.idx", Idx([3], [0, 1, 2]));
        string badZip = Write(dir, "zip.idx.gz", [0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

        Assert.Contains("wrong IDX magic", Assert.Throws<FileFormatException>(() => new IdxImages(wrongMagic, labels, Tiny)).Message);
        var e = Assert.Throws<FileFormatException>(() => new IdxImages(images, fewLabels, Tiny));
        Assert.Contains("2 labels for 3 images", e.Message);
        Assert.Equal(fewLabels, e.File);
        // A raw file's length is checked against its header at open; a gzip file's only as it is read.
        Assert.Contains("truncated", Assert.Throws<FileFormatException>(() => new IdxImages(truncated, labels, Tiny)).Message);
        string truncatedZip = Write(dir, "trunc.idx.gz", Idx([3, 4, 4], new byte[20]), gzip: true);
        using (var set = new IdxImages(truncatedZip, labels, Tiny))
            Assert.Contains("truncated", Assert.Throws<FileFormatException>(() => set.Next(3, new float[48], new int[3])).Message);
        var z = Assert.Throws<FileFormatException>(() => new IdxImages(badZip, labels, Tiny));
        Assert.Equal(badZip, z.File);
        Assert.Contains("gzip", z.Message);
        Assert.Contains("4×4", Assert.Throws<InputException>(() => new IdxImages(images, labels, Tiny with { ImageSize = 8 })).Message);
    }

    [Fact]
    public void Evaluation_counts_top1_top5_and_confusions()
    {
        var model = VitModel.Load(Fixtures.Path_("ragged_tiny.safetensors"));
        var x = Fixtures.Npy_("ragged_tiny.input.npy");
        var golden = Fixtures.Npy_("ragged_tiny.logits.npy");
        var predicted = Enumerable.Range(0, 3).Select(i => Array.IndexOf(golden.Data, golden.Data.AsSpan(i * 10, 10).ToArray().Max(), i * 10) - i * 10).ToArray();
        string dir = Fixtures.TempDir();
        string xp = Path.Combine(dir, "x.npy"), yp = Path.Combine(dir, "y.npy");
        VitSparse.Runtime.Formats.Npy.Write(xp, x.Shape, x.Data);
        VitSparse.Runtime.Formats.Npy.Write(yp, [3], [predicted[0], predicted[1], (predicted[2] + 1) % 10]);
        using var session = new InferenceSession(model, 1);
        using var set = new NpyImages(xp, yp, model.Config);
        var r = Evaluation.Run(session, set, 2);
        Assert.Equal(3, r.Images);
        Assert.Equal(2.0 / 3, r.Top1, 6);
        Assert.Equal(predicted[2], r.Predictions[2]);
        Assert.Equal(1, r.Confusion[(predicted[2] + 1) % 10, predicted[2]]);
    }
}
