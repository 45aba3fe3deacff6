using System.Text;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using Xunit;

namespace VitSparse.Tests;

public class NpyTests
{
    static byte[] Raw(string dict, int dataBytes, byte major = 1)
    {
        var header = dict + "\n";
        var ms = new MemoryStream();
        ms.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', major, 0]);
        if (major == 1) ms.Write(BitConverter.GetBytes((ushort)header.Length));
        else ms.Write(BitConverter.GetBytes((uint)header.Length));
        ms.Write(Encoding.Latin1.GetBytes(header));
        ms.Write(new byte[dataBytes]);
        return ms.ToArray();
    }

    [Fact]
    public void Round_trips_and_reads_numpy_written_files()
    {
        string path = Path.Combine(Fixtures.TempDir(), "x.npy");
        var data = Fixtures.Random(24, 3);
        Npy.Write(path, [2, 3, 4], data);
        var back = Npy.Read(path);
        Assert.Equal(new[] { 2, 3, 4 }, back.Shape);
        Assert.Equal(data, back.Data);
        Assert.Equal(0, (File.ReadAllBytes(path).Length - 24 * 4) % 64);
        Assert.Equal(new[] { 3, 10 }, Fixtures.Npy_("ragged_tiny.logits.npy").Shape); // written by numpy
    }

    [Fact]
    public void Version_2_headers_are_read()
    {
        var a = Npy.Parse(Raw("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, major: 2), "v2.npy");
        Assert.Equal(new[] { 2 }, a.Shape);
    }

    [Theory]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16, "'<f8' is not little-endian float32")]
    [InlineData("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, "'>f4'")]
    [InlineData("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, "Fortran order")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20, "needs 24 data bytes")]
    [InlineData("{'descr': '<f4', 'shape': (2,), }", 8, "malformed")]
    public void Bad_arrays_are_refused_with_the_file_named(string dict, int bytes, string expected)
    {
        var e = Assert.Throws<FileFormatException>(() => Npy.Parse(Raw(dict, bytes), "in.npy"));
        Assert.Contains(expected, e.Message);
        Assert.Equal("in.npy", e.File);
    }

    [Fact]
    public void Non_npy_bytes_are_refused() =>
        Assert.Contains("bad magic", Assert.Throws<FileFormatException>(() => Npy.Parse(Encoding.ASCII.GetBytes("PK\x03\x04 not numpy"), "z.npy")).Message);
}
