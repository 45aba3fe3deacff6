using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using Xunit;

namespace VitSparse.Tests;

public class SafeTensorsTests
{
    static string WriteRaw(string header, byte[] data, long? declaredLength = null)
    {
        string path = Path.Combine(Fixtures.TempDir(), "t.safetensors");
        var h = Encoding.UTF8.GetBytes(header);
        using var fs = File.Create(path);
        var len = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)(declaredLength ?? h.Length));
        fs.Write(len);
        fs.Write(h);
        fs.Write(data);
        return path;
    }

    static FileFormatException Fails(string path)
    {
        var e = Assert.Throws<FileFormatException>(() => { using var f = new SafeTensorsFile(path); });
        Assert.Equal(path, e.File);
        Assert.Contains(path, e.Message);
        return e;
    }

    [Fact]
    public void Round_trips_f32_f16_bf16_and_metadata()
    {
        string path = Path.Combine(Fixtures.TempDir(), "rt.safetensors");
        var a = Fixtures.Random(6, 1);
        var b = new float[] { 1.5f, -2.25f, 65504f, 0.000061035156f };
        var c = new float[] { 1f, -3.140625f, 1e20f };
        SafeTensorsWriter.Write(path, [
            new("a", [2, 3], a),
            new("b", [4], b, DType.F16),
            new("c", [3], c, DType.BF16),
        ], new Dictionary<string, string> { ["k"] = "v" });
        using var f = new SafeTensorsFile(path);
        Assert.Equal("v", f.Metadata["k"]);
        Assert.Equal(a, f.GetF32("a").ToArray());
        Assert.Equal(new long[] { 2, 3 }, f.Info("a").Shape);
        Assert.Equal(b, f.GetFloats("b").ToArray());
        Assert.Equal(DType.BF16, f.Info("c").DType);
        Assert.Equal(1f, f.GetFloats("c")[0]);
        Assert.Equal(-3.140625f, f.GetFloats("c")[1]);
        Assert.Equal(1e20f, f.GetFloats("c")[2], 1e20f * 0.01f);
        Assert.Throws<FileFormatException>(() => f.GetF32("b"));
        Assert.Contains("missing tensor 'zz'", Assert.Throws<FileFormatException>(() => f.Info("zz")).Message);
    }

    [Fact]
    public void Truncated_file_is_refused()
    {
        string path = Path.Combine(Fixtures.TempDir(), "short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Contains("truncated", Fails(path).Message);
    }

    [Fact]
    public void Header_length_larger_than_file_is_refused() =>
        Assert.Contains("header length", Fails(WriteRaw("{}", [], declaredLength: 1000)).Message);

    [Fact]
    public void Header_that_is_not_json_is_refused() =>
        Assert.Contains("not valid JSON", Fails(WriteRaw("{\"a\": [1,", [])).Message);

    [Fact]
    public void Header_that_is_not_an_object_is_refused() =>
        Assert.Contains("object", Fails(WriteRaw("[1,2]", [])).Message);

    [Fact]
    public void Unknown_dtype_is_refused() =>
        Assert.Contains("unknown dtype 'F13'", Fails(WriteRaw("{\"x\":{\"dtype\":\"F13\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4])).Message);

    [Fact]
    public void Duplicate_keys_are_refused() =>
        Assert.Contains("duplicate key 'x'", Fails(WriteRaw(
            "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8])).Message);

    [Fact]
    public void Overlapping_offsets_are_refused() =>
        Assert.Contains("overlaps", Fails(WriteRaw(
            "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", new byte[12])).Message);

    [Fact]
    public void Offsets_past_the_data_are_refused() =>
        Assert.Contains("run past", Fails(WriteRaw("{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", new byte[8])).Message);

    [Fact]
    public void Shape_that_disagrees_with_byte_span_is_refused() =>
        Assert.Contains("needs 12 bytes", Fails(WriteRaw("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8])).Message);

    [Fact]
    public void Missing_file_is_reported_by_name()
    {
        string path = Path.Combine(Fixtures.TempDir(), "nope.safetensors");
        Assert.Contains("not found", Fails(path).Message);
    }

    [Fact]
    public void Failed_write_leaves_no_file_behind()
    {
        string dir = Fixtures.TempDir();
        string path = Path.Combine(dir, "out.safetensors");
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(path, [new("a", [3], new float[2])]));
        Assert.Empty(Directory.GetFiles(dir));
    }

    /// <summary>
    /// tests/fixtures/writer_sample.safetensors was written by this writer and read back by
    /// tools/reference/check_writer.py (a spec-strict reader); its view of the file is kept beside it.
    /// The writer must still produce exactly those bytes, and the Python view must match what was written.
    /// </summary>
    [Fact]
    public void Writer_output_is_what_the_python_reader_verified()
    {
        string path = Path.Combine(Fixtures.TempDir(), "writer_sample.safetensors");
        WriterSample.Write(path);
        if (Environment.GetEnvironmentVariable("VITSPARSE_REGENERATE_FIXTURES") == "1")
            File.Copy(path, Path.Combine(WriterSample.SourceFixtures, "writer_sample.safetensors"), overwrite: true);
        Assert.Equal(File.ReadAllBytes(Fixtures.Path_("writer_sample.safetensors")), File.ReadAllBytes(path));
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.Path_("writer_sample.python.json")));
        var tensors = doc.RootElement.GetProperty("tensors");
        using var f = new SafeTensorsFile(path);
        Assert.Equal(f.Tensors.Count, tensors.EnumerateObject().Count());
        foreach (var t in tensors.EnumerateObject())
        {
            var info = f.Info(t.Name);
            Assert.Equal(info.DType.ToString().ToUpperInvariant(), t.Value.GetProperty("dtype").GetString());
            Assert.Equal(info.Shape, t.Value.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray());
            var values = t.Value.GetProperty("values").EnumerateArray().Select(x => x.GetSingle()).ToArray();
            Assert.Equal(values, f.GetFloats(t.Name).ToArray());
        }
        Assert.Equal("sample", doc.RootElement.GetProperty("metadata").GetProperty("purpose").GetString());
    }
}

static class WriterSample
{
    public static string SourceFixtures => Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "fixtures"));

    public static void Write(string path) => SafeTensorsWriter.Write(path, [
        new("weight", [2, 3], new float[] { 0.5f, -1.25f, 3f, 1e-3f, -7.75f, 42f }),
        new("half", [2, 2], new float[] { 1f, -0.5f, 0.333251953125f, 2048f }, DType.F16),
        new("brain", [3], new float[] { 1f, -2.5f, 0.15625f }, DType.BF16),
        new("empty", [0], Array.Empty<float>()),
    ], new Dictionary<string, string> { ["purpose"] = "sample", ["format"] = "pt" });
}
