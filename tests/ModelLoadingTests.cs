using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>Weights that do not fit their architecture are refused with the tensor or field named.</summary>
public class ModelLoadingTests
{
    /// <summary>Copies the ragged fixture with a change: a tensor dropped, replaced, or the metadata edited.</summary>
    static string Variant(Func<string, bool>? keep = null, Func<string, float[], (long[] Shape, float[] Data)>? edit = null, Func<string, string>? meta = null)
    {
        string path = Path.Combine(Fixtures.TempDir(), "variant.safetensors");
        using var src = new SafeTensorsFile(Fixtures.Path_("ragged_tiny.safetensors"));
        var tensors = new List<TensorToWrite>();
        foreach (var t in src.Tensors.OrderBy(t => t.Begin))
        {
            if (keep != null && !keep(t.Name)) continue;
            var data = src.GetFloats(t.Name).ToArray();
            var (shape, values) = edit?.Invoke(t.Name, data) ?? (t.Shape, data);
            tensors.Add(new TensorToWrite(t.Name, shape, values));
        }
        var metadata = src.Metadata.ToDictionary();
        if (meta != null) metadata[VitConfig.MetadataKey] = meta(metadata[VitConfig.MetadataKey]);
        SafeTensorsWriter.Write(path, tensors, metadata);
        return path;
    }

    [Fact]
    public void Missing_tensor_is_named()
    {
        var e = Assert.Throws<ModelException>(() => VitModel.Load(Variant(keep: n => n != "blocks.1.mlp.fc2.bias")));
        Assert.Equal("blocks.1.mlp.fc2.bias", e.Tensor);
        Assert.Contains("missing tensor 'blocks.1.mlp.fc2.bias'", e.Message);
    }

    [Fact]
    public void Wrong_shape_is_named_with_both_shapes()
    {
        var e = Assert.Throws<ModelException>(() => VitModel.Load(Variant(edit: (n, d) => n == "head.weight" ? ([5, 96], d) : (n == "x" ? [] : ShapeOf(n), d))));
        Assert.Equal("head.weight", e.Tensor);
        Assert.Contains("[5,96]", e.Message);
        Assert.Contains("[10,48]", e.Message);
    }

    static long[] ShapeOf(string name)
    {
        using var src = new SafeTensorsFile(Fixtures.Path_("ragged_tiny.safetensors"));
        return src.Info(name).Shape;
    }

    [Fact]
    public void Metadata_widths_that_contradict_tensors_are_refused()
    {
        var e = Assert.Throws<ModelException>(() => VitModel.Load(Variant(meta: j => j.Replace("\"qk\": [5, 9, 13]", "\"qk\": [6, 9, 13]"))));
        Assert.Equal("blocks.0.attn.qkv.weight", e.Tensor);
    }

    [Theory]
    [InlineData("\"mlp\": 100", "\"mlp\": -3", "blocks[0].mlp")]
    [InlineData("\"qk\": [5, 9, 13]", "\"qk\": [5, 0, 13]", "blocks[0].qk")]
    [InlineData("\"v\": [7, 4, 11]", "\"v\": [7, 4]", "blocks[0]")]
    [InlineData("\"embed_dim\": 48", "\"embed_dim\": \"wide\"", "embed_dim")]
    [InlineData("{", "{{", "not valid JSON")]
    public void Invalid_metadata_names_the_field(string from, string to, string expected)
    {
        var e = Assert.Throws<ModelException>(() => VitModel.Load(Variant(meta: j => ReplaceFirst(j, from, to))));
        Assert.Contains(expected, e.Message);
        Assert.Contains("variant.safetensors", e.Message);
    }

    [Fact]
    public void Metadata_that_is_not_an_object_is_refused() =>
        Assert.Contains("must be a JSON object", Assert.Throws<ModelException>(() => VitModel.Load(Variant(meta: _ => "[1, 2]"))).Message);

    static string ReplaceFirst(string s, string from, string to)
    {
        int i = s.IndexOf(from, StringComparison.Ordinal);
        Assert.True(i >= 0, $"'{from}' not in metadata");
        return s[..i] + to + s[(i + from.Length)..];
    }

    [Fact]
    public void NaN_weights_are_refused_by_default_and_warned_about_on_request()
    {
        string path = Variant(edit: (n, d) =>
        {
            if (n == "blocks.2.attn.proj.weight") { d[7] = float.NaN; d[9] = float.PositiveInfinity; }
            return (ShapeOf(n), d);
        });
        var e = Assert.Throws<ModelException>(() => VitModel.Load(path));
        Assert.Equal("blocks.2.attn.proj.weight", e.Tensor);
        Assert.Contains("2 NaN/Inf", e.Message);
        var warnings = new List<string>();
        VitModel.Load(path, new LoadOptions { NonFinite = NonFinitePolicy.Warn, Warn = warnings.Add });
        Assert.Single(warnings);
        Assert.Contains("blocks.2.attn.proj.weight", warnings[0]);
    }

    [Fact]
    public void Input_of_the_wrong_size_is_refused()
    {
        var model = VitModel.Load(Fixtures.Path_("ragged_tiny.safetensors"));
        using var s = new InferenceSession(model, 1);
        var e = Assert.Throws<InputException>(() => s.Run(new float[3 * 28 * 28], 1, new float[10]));
        Assert.Equal("images", e.Argument);
        Assert.Contains("1×3×32×32", e.Message);
        Assert.Equal("logits", Assert.Throws<InputException>(() => s.Run(new float[3 * 32 * 32], 1, new float[9])).Argument);
        Assert.Equal("batch", Assert.Throws<InputException>(() => s.Run([], 0, new float[10])).Argument);
    }

    [Fact]
    public void Unknown_architecture_lists_the_known_ones()
    {
        var e = Assert.Throws<InputException>(() => Architectures.Get("deit_xl"));
        Assert.Contains("deit_s_snp", e.Message);
    }

    [Fact]
    public void Compact_format_round_trips_through_save()
    {
        var config = Architectures.Get("deit_t_snp") with { Blocks = Architectures.Get("deit_t_snp").Blocks.Take(2).ToArray() };
        string path = Path.Combine(Fixtures.TempDir(), "snp.safetensors");
        VitModel.Save(path, config, new SeededWeights(config));
        var loaded = VitModel.Load(path);
        Assert.Equal(config.ToJson(), loaded.Config.ToJson());
        var a = VitModel.FromSource(new SeededWeights(config), config);
        var x = new float[config.ImageElements];
        SeededWeights.FillInput(x);
        float[] la = new float[1000], lb = new float[1000];
        using (var s = new InferenceSession(a, 1)) s.Run(x, 1, la);
        using (var s = new InferenceSession(loaded, 1)) s.Run(x, 1, lb);
        Assert.Equal(la, lb);
    }
}
