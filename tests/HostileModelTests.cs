using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// The hostile model files of tests/fixtures/hostile (tools/hostile/make_model_fixtures.py): each is refused
/// with our exception naming the file and the field or header problem, in under a second, allocating
/// little. Before the config limits, several of these wrapped 32-bit sizes and wrote outside kernel buffers.
/// </summary>
public class HostileModelTests
{
    /// <summary>Far below what the attacks allocated (GBs) and above JSON parsing and type loading.</summary>
    const long AllocationBudget = 16 << 20;

    public static TheoryData<string, string> RefusedConfigs => new()
    {
        { "model_qk_int_max.safetensors", "config field 'blocks[0].qk': 2147483647 is outside [1, 4096]" },
        { "model_qkv_rows_wrap.safetensors", "config field 'blocks[0].qk': 1073741824 is outside [1, 4096]" },
        { "model_v_wrap.safetensors", "config field 'blocks[0].v'" },
        { "model_mlp_huge.safetensors", "config field 'blocks[0].mlp'" },
        { "model_heads_mismatch.safetensors", "config field 'blocks[0].v': has 3 heads, qk has 2" },
        { "model_embed_huge.safetensors", "config field 'embed_dim'" },
        { "model_classes_huge.safetensors", "config field 'num_classes'" },
        { "model_depth_zero.safetensors", "config field 'blocks': 0 is outside [1, 1024]" },
        { "model_tokens_overflow.safetensors", "config field 'image_size': 32768 is outside [1, 8192]" },
        { "model_patch_zero.safetensors", "config field 'patch_size'" },
        { "model_image_not_multiple.safetensors", "config field 'image_size': 9 is not a multiple of patch_size 4" },
        { "model_in_chans_huge.safetensors", "config field 'in_chans'" },
        { "model_crop_zero.safetensors", "config field 'crop_pct'" },
        { "model_crop_tiny.safetensors", "config field 'crop_pct'" },
        { "model_crop_huge.safetensors", "config field 'crop_pct'" },
        { "model_mean_inf.safetensors", "config field 'mean[0]'" },
        { "model_std_zero.safetensors", "config field 'std[1]'" },
        { "model_std_tiny.safetensors", "config field 'std[2]'" },
        { "model_ln_eps_zero.safetensors", "config field 'ln_eps'" },
        { "model_scale_negative.safetensors", "config field 'blocks[0].scale'" },
        { "model_scale_huge.safetensors", "config field 'blocks[0].scale'" },
        { "model_timm_dim_overflow.safetensors", "tensor 'patch_embed.proj.weight' has shape [1099511627776,3,4,0]" },
    };

    public static TheoryData<string, string> RefusedFiles => new()
    {
        { "st_invalid_utf8_key.safetensors", "header is not valid UTF-8" },
        { "st_invalid_utf8_dtype.safetensors", "header is not valid UTF-8" },
        { "st_trailing_bytes.safetensors", "trailing bytes" },
        { "st_overlap_around_empty.safetensors", "overlaps 'a'" },
        { "st_gap.safetensors", "leaving a gap of 4 bytes after 'a'" },
        { "st_header_len_huge.safetensors", "header length 9223372036854775808 is larger than" },
    };

    /// <summary>tools/hostile/make_sparse_fixtures.py: sparse index data breaking one rule each.</summary>
    public static TheoryData<string, string> RefusedSparse => new()
    {
        { "sparse_block_zero.safetensors", "block shape 0×4 must be positive" },
        { "sparse_block_negative.safetensors", "block shape 8×-4 must be positive" },
        { "sparse_col_past_row.safetensors", "tensor 'blocks.0.mlp.fc1.weight.bsr_col_indices': block column index 2 (block 1, block row 0) is outside [0, 2)" },
        { "sparse_cols_unsorted.safetensors", "tensor 'blocks.0.mlp.fc1.weight.bsr_col_indices': block columns of block row 0 are unsorted" },
        { "sparse_cols_duplicate.safetensors", "tensor 'blocks.0.mlp.fc1.weight.bsr_col_indices': block columns of block row 0 are duplicated" },
        { "sparse_rowptr_decreasing.safetensors", "tensor 'blocks.0.mlp.fc1.weight.bsr_row_ptr': row pointers decrease at block row 1" },
        { "sparse_rowptr_length.safetensors", "tensor 'blocks.0.mlp.fc1.weight.bsr_row_ptr': row pointers have 4 entries, expected 3" },
        { "sparse_rowptr_huge.safetensors", "tensor 'blocks.0.mlp.fc1.weight.bsr_row_ptr': row pointers decrease at block row 1" },
        { "sparse_values_count.safetensors", "tensor 'blocks.0.mlp.fc1.weight.bsr_values': values hold 64 floats, expected 3 blocks × 8×4 = 96" },
        { "sparse_csr_col_past_row.safetensors", "tensor 'blocks.0.attn.proj.weight.csr_col_indices': column index 8 (non-zero 15, row 7) is outside [0, 8)" },
        { "sparse_csr_values_count.safetensors", "tensor 'blocks.0.attn.proj.weight.csr_values': values hold 15 floats, expected one per column index (16)" },
        { "sparse_index_dtype.safetensors", "tensor 'blocks.0.mlp.fc1.weight.bsr_col_indices' is F32; sparse index data must be I32" },
        { "sparse_density_mismatch.safetensors", "gives 'blocks.0.mlp.fc1.weight' density 0.25, but its data keeps 0.75" },
        { "sparse_layer_not_in_arch.safetensors", "sparse tensors for 'blocks.3.mlp.fc1.weight', which is not a linear weight of the architecture" },
        { "sparse_not_a_linear.safetensors", "sparse tensors for 'blocks.0.norm1.weight', which is not a linear weight of the architecture" },
        { "sparse_dense_huge.safetensors", "shape [1048576,1024] is not a weight shape of at most 268435456 elements" },
        { "sparse_no_metadata.safetensors", "sparse tensor 'blocks.0.mlp.fc1.weight.bsr_values' has no entry for 'blocks.0.mlp.fc1.weight' in metadata 'vitsparse.sparse'" },
    };

    [Theory, MemberData(nameof(RefusedSparse))]
    public void Hostile_sparse_index_data_is_refused_naming_the_tensor(string file, string expected)
    {
        foreach (var mode in new[] { SparseMode.Auto, SparseMode.Off })
            Refused<ModelException>(() => VitModel.Load(Hostile(file), new LoadOptions { Sparse = mode }), Hostile(file), expected);
    }

    [Fact]
    public void The_sparse_control_fixture_runs_in_every_format_and_equals_itself_densified()
    {
        var dense = VitModel.Load(Hostile("sparse_valid.safetensors"), new LoadOptions { Sparse = SparseMode.Off });
        Assert.All(dense.LinearLayers, l => Assert.Equal(WeightFormat.Dense, l.Format));
        var x = new float[dense.Config.ImageElements];
        SeededWeights.FillInput(x);
        var expected = new float[dense.Config.NumClasses];
        using (var s = new InferenceSession(dense, 2)) s.Run(x, 1, expected);
        foreach (var (mode, format) in new[] { (SparseMode.Auto, (WeightFormat?)null), (SparseMode.Bsr, WeightFormat.Bsr), (SparseMode.Unstructured, WeightFormat.Unstructured) })
        {
            var model = VitModel.Load(Hostile("sparse_valid.safetensors"), new LoadOptions { Sparse = mode });
            if (format != null) Assert.All(model.LinearLayers, l => Assert.Equal(format, l.Format));
            var logits = new float[expected.Length];
            using (var s = new InferenceSession(model, 2)) s.Run(x, 1, logits);
            Fixtures.AssertClose(expected, logits, 1e-5, $"--sparse {mode} vs off");
        }
    }

    static string Hostile(string name) => Fixtures.Path_(Path.Combine("hostile", name));

    /// <summary>Runs <paramref name="load"/> expecting our exception; checks its message, time and allocation.</summary>
    static T Refused<T>(Action load, string path, string expected) where T : VitSparseException
    {
        var e = Fixtures.AssertRefusedCheaply<T>(path, load, AllocationBudget);
        Assert.Contains(expected, e.Message);
        return e;
    }

    [Theory, MemberData(nameof(RefusedConfigs))]
    public void Hostile_config_is_refused_naming_the_field(string file, string expected) =>
        Refused<ModelException>(() => VitModel.Load(Hostile(file)), Hostile(file), expected);

    [Theory, MemberData(nameof(RefusedFiles))]
    public void Hostile_safetensors_header_is_refused(string file, string expected) =>
        Refused<FileFormatException>(() => new SafeTensorsFile(Hostile(file)).Dispose(), Hostile(file), expected);

    [Fact]
    public void The_control_fixture_loads_and_runs()
    {
        var model = VitModel.Load(Hostile("model_valid.safetensors"));
        using var session = new InferenceSession(model, 2);
        var x = new float[model.Config.ImageElements];
        SeededWeights.FillInput(x);
        var logits = new float[model.Config.NumClasses];
        session.Run(x, 1, logits);
        Assert.All(logits, v => Assert.True(float.IsFinite(v)));
    }

    [Theory]
    [InlineData("inspect")]
    [InlineData("infer")]
    public void Cli_prints_one_line_naming_file_and_field_and_exits_2(string command)
    {
        string path = Hostile("model_qkv_rows_wrap.safetensors");
        string[] args = command == "inspect" ? ["inspect", path] : ["infer", "--weights", path, "--input", Hostile("model_input.npy"), "--output", Path.Combine(Fixtures.TempDir(), "y.npy")];
        var (code, _, err) = Fixtures.Cli(args);
        Assert.Equal(2, code);
        Assert.Equal($"error: {path}: config field 'blocks[0].qk': 1073741824 is outside [1, 4096]", err.Trim());
    }

    /// <summary>With this file the unchecked code of before ran the attention kernel with 2^30-wide heads: AccessViolation.</summary>
    [Fact]
    public void The_wrapping_model_that_used_to_crash_is_refused_before_the_forward()
    {
        var e = Assert.Throws<ModelException>(() => VitModel.Load(Hostile("model_qkv_rows_wrap.safetensors")));
        Assert.Contains("blocks[0].qk", e.Message);
        var valid = VitModel.Load(Hostile("model_valid.safetensors"));
        Assert.Equal(VitSparse.Runtime.Formats.Npy.Read(Hostile("model_input.npy")).Shape, new[] { 1, 3, 8, 8 });
        Assert.Equal(3, valid.Config.NumClasses);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void An_unexpected_exception_is_one_line_and_exit_code_3(bool verbose)
    {
        var root = new System.CommandLine.RootCommand();
        root.Options.Add(VitSparse.Cli.CliApp.VerboseOption);
        var pr = root.Parse(verbose ? ["--verbose"] : []);
        var err = new StringWriter();
        int code = VitSparse.Cli.CliApp.Guard(pr, err, () => throw new InvalidOperationException("a bug\non two lines"));
        Assert.Equal(VitSparse.Cli.CliApp.InternalError, code);
        var lines = err.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("internal error: InvalidOperationException: a bug on two lines, please report with the input file", lines[0]);
        Assert.Equal(verbose, lines.Length > 1 && err.ToString().Contains("at VitSparse.Tests"));
    }

    /// <summary>Configs built in code (NaN cannot be written in JSON) go through the same validation.</summary>
    [Fact]
    public void NaN_and_wrapping_configs_built_in_code_are_refused()
    {
        var good = VitConfig.Uniform("t", 8, 1, 2, classes: 3, imageSize: 8, patchSize: 4);
        Assert.Contains("'mean[1]'", Assert.Throws<ModelException>(() => (good with { Mean = [0.5f, float.NaN, 0.5f] }).Validate()).Message);
        Assert.Contains("'std[0]'", Assert.Throws<ModelException>(() => (good with { Std = [float.PositiveInfinity, 1, 1] }).Validate()).Message);
        var wrap = good with { Blocks = [new BlockConfig([1 << 30, (1 << 30) - 1], [25, 25], 16, 0.5f)] };
        Assert.Throws<ModelException>(() => wrap.Validate());
        // The sums themselves refuse to wrap, whoever calls them.
        Assert.Contains("does not fit a 32-bit size", Assert.Throws<ModelException>(() => wrap.Blocks[0].QkvRows).Message);
        Assert.Throws<ModelException>(() => new BlockConfig([int.MaxValue, int.MaxValue], [1, 1], 1, 1f).QkTotal);
    }

    /// <summary>A source whose tensors match a wrapped config, as a crafted file would: refused before any packing.</summary>
    [Fact]
    public void Wrapped_widths_never_reach_the_kernels_through_a_custom_source()
    {
        var wrap = VitConfig.Uniform("t", 8, 1, 2, classes: 3, imageSize: 8, patchSize: 4) with
        {
            Blocks = [new BlockConfig([1 << 30, (1 << 30) - 1], [25, 25], 16, 0.5f)],
        };
        var e = Assert.Throws<ModelException>(() => VitModel.FromSource(new SeededWeights(VitConfig.Uniform("t", 8, 1, 2, classes: 3, imageSize: 8, patchSize: 4)), wrap));
        Assert.StartsWith("seeded weights", e.Message);
        Assert.Contains("config field 'blocks[0].qk'", e.Message);
    }

    [Fact]
    public void A_batch_whose_activations_pass_2_to_the_31_floats_is_refused()
    {
        var c = VitConfig.Uniform("wide", 64, 1, 1, classes: 2, imageSize: 1016, patchSize: 8);   // 16,130 tokens × 256 FFN: 520 images fit
        var model = VitModel.FromSource(new SeededWeights(c), c);
        using var session = new InferenceSession(model, 1);
        var e = Assert.Throws<InputException>(() => session.Run(new float[1], 600, new float[1200]));
        Assert.Equal("batch", e.Argument);
    }
}
