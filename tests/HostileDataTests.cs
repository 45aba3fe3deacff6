using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Data;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// Issue 19's hostile data files (tests/fixtures/hostile/, made by tools/hostile/make_data_fixtures.py):
/// each is refused with our FileFormatException naming the file and saying what is wrong, in under a
/// second, allocating under 16 MB, however much it declares.
/// </summary>
public class HostileDataTests
{
    const long AllocationBudget = 16L << 20;
    static readonly string[] OurPrefixes = ["npy_", "idx_", "classes_", "ratios_"];

    [Theory]
    [InlineData("npy_shape_wraps_to_zero.npy", "is too big")]
    [InlineData("npy_shape_overflows_int64.npy", "is too big")]
    [InlineData("npy_shape_too_big.npy", "is too big")]
    [InlineData("npy_shape_needs_more_data.npy", "needs 4000000 data bytes, file has 4")]
    [InlineData("npy_negative_dimension.npy", "bad shape entry '-1'")]
    [InlineData("npy_dimension_over_int32.npy", "bad shape entry '4294967297'")]
    [InlineData("npy_v2_header_length_2pow31.npy", "header of 2147483648 bytes exceeds")]
    [InlineData("npy_v3_header_length_max.npy", "header of 4294967295 bytes exceeds")]
    [InlineData("npy_header_over_limit.npy", "-byte limit")]
    [InlineData("npy_float64.npy", "dtype '<f8'")]
    [InlineData("npy_fortran_order.npy", "Fortran order")]
    [InlineData("npy_unknown_version.npy", "format version 9")]
    [InlineData("npy_truncated_header.npy", "truncated")]
    [InlineData("npy_bad_magic.npy", "bad magic")]
    [InlineData("idx_item_size_wraps.idx", "too large")]
    [InlineData("idx_declares_6gb.idx", "truncated: header declares 100 items of 67108864 bytes")]
    [InlineData("idx_empty_items.idx", "dimension 1 is 0")]
    [InlineData("idx_dimension_over_int32.idx", "too large")]
    [InlineData("idx_rank_5.idx", "rank 5")]
    [InlineData("idx_int32_data.idx", "wrong IDX magic")]
    [InlineData("idx_truncated_dimensions.idx", "truncated while reading the dimensions")]
    [InlineData("idx_truncated_data.idx", "truncated")]
    [InlineData("idx_gzip_declares_6gb.idx.gz", "more than a")]
    [InlineData("idx_gzip_inflates_past_declared.idx.gz", "trailing data after the 3 items")]
    [InlineData("idx_gzip_truncated_data.idx.gz", "truncated while reading the items 1..2")]
    [InlineData("idx_gzip_corrupt_stream.idx.gz", "gzip")]
    [InlineData("classes_invalid_utf8.txt", "not UTF-8")]
    [InlineData("classes_terminal_escape.txt", "line 4 holds a control character")]
    [InlineData("classes_nul_byte.txt", "line 10 holds a control character")]
    [InlineData("classes_wrong_count.txt", "has 9 class names, the model 10")]
    [InlineData("classes_empty_name.txt", "line 6 is empty")]
    [InlineData("classes_binary.txt", "not UTF-8")]
    [InlineData("ratios_number_too_large.json", "'default.qk' = Infinity is outside [0, 1)")]
    [InlineData("ratios_invalid_utf8.json", "not UTF-8")]
    [InlineData("ratios_deep_nesting.json", "not valid JSON")]
    [InlineData("ratios_negative.json", "outside [0, 1)")]
    [InlineData("ratios_removes_everything.json", "outside [0, 1)")]
    [InlineData("ratios_not_an_object.json", "must be a JSON object")]
    [InlineData("ratios_nan_literal.json", "not valid JSON")]
    [InlineData("ratios_wrong_block_count.json", "has 4 entries, the model has 3")]
    [InlineData("ratios_string_ratio.json", "must be a number")]
    [InlineData("ratios_truncated.json", "not valid JSON")]
    public void Hostile_file_is_refused_by_name_quickly_in_bounded_memory(string name, string problem)
    {
        string path = Fixtures.Path_(Path.Combine("hostile", name));
        var e = AssertRefusedCheaply(path, () => Load(path));
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void Every_hostile_data_fixture_has_a_test()
    {
        var tested = typeof(HostileDataTests).GetMethod(nameof(Hostile_file_is_refused_by_name_quickly_in_bounded_memory))!
            .GetCustomAttributes(typeof(InlineDataAttribute), false).Cast<InlineDataAttribute>()
            .Select(a => (string)a.GetData(null!).First()[0]).ToHashSet();
        var files = Directory.GetFiles(Fixtures.Path_("hostile")).Select(Path.GetFileName).OfType<string>()
            .Where(f => OurPrefixes.Any(p => f.StartsWith(p, StringComparison.Ordinal)));
        Assert.Equal([], files.Where(f => !tested.Contains(f)).ToArray());
    }

    [Fact]
    public void Oversized_text_files_are_refused_before_reading()
    {
        // Sparse files: 9 MB / 2 MB on disk in name only, so the test writes almost nothing.
        string dir = Fixtures.TempDir(), names = Path.Combine(dir, "names.txt"), ratios = Path.Combine(dir, "ratios.json");
        using (var f = File.Create(names)) f.SetLength(ClassNames.MaxFileBytes + 1);
        using (var f = File.Create(ratios)) f.SetLength(RatioSpec.MaxFileBytes + 1);
        Assert.Contains("exceeds the 8388608-byte limit", AssertRefusedCheaply(names, () => ClassNames.FromFile(names, 10)).Message);
        Assert.Contains("exceeds the 1048576-byte limit", AssertRefusedCheaply(ratios, () => RatioSpec.Read(ratios, 3)).Message);
    }

    [Fact]
    public void A_gzip_idx_within_its_declared_size_still_reads()
    {
        // The bound on gzip data must not refuse real files: 3 images of 4×4 plus labels read back.
        string dir = Fixtures.TempDir(), path = Path.Combine(dir, "images.idx.gz");
        File.Copy(Fixtures.Path_(Path.Combine("fuzz", "seeds", "idx_images.idx.gz")), path);
        using var file = new IdxFile(path);
        var pixels = new byte[3 * 16];
        file.Read(3, pixels);
        Assert.Equal(17, pixels[1]);
    }

    /// <summary>Runs what should refuse <paramref name="path"/>: our exception naming it, under 1 s and the allocation budget.</summary>
    static FileFormatException AssertRefusedCheaply(string path, Action load)
    {
        var e = Fixtures.AssertRefusedCheaply<FileFormatException>(path, load, AllocationBudget);
        Assert.Equal(path, e.File);
        return e;
    }

    /// <summary>Each kind of file read the way the CLI reads it (an IDX file to its last item).</summary>
    static void Load(string path)
    {
        string name = Path.GetFileName(path);
        if (name.StartsWith("npy_")) Npy.Read(path);
        else if (name.StartsWith("classes_")) ClassNames.FromFile(path, 10);
        else if (name.StartsWith("ratios_")) RatioSpec.Read(path, 3);
        else if (name.StartsWith("idx_"))
        {
            using var file = new IdxFile(path);
            var buffer = new byte[file.ItemSize];
            while (file.Remaining > 0) file.Read(1, buffer);
        }
        else throw new ArgumentException($"no loader for {name}");
    }
}
