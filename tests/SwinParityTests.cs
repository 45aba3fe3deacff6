using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>Swin logits against the plain-torch goldens of tools/swin/make_swin_fixtures.py (sharp random weights).</summary>
public class SwinParityTests
{
    /// <summary>The legacy fixture has no metadata: its config is inferred from the keys, with the image size (not in any weight) given.</summary>
    static SwinModel Load(string name, LoadOptions? o = null)
    {
        string path = Fixtures.Path_(name + ".safetensors");
        if (!name.EndsWith("legacy", StringComparison.Ordinal)) return SwinModel.Load(path, o);
        using var file = new SafeTensorsFile(path);
        var config = SwinFile.ReadConfig(file, null) with { ImageSize = 32 };
        return SwinModel.FromSource(new SafeTensorsSource(file), config, o);
    }

    public static TheoryData<string, SimdWidth> Cases()
    {
        var d = new TheoryData<string, SimdWidth>();
        foreach (var name in new[] { "swin_tiny_t09", "swin_tiny_legacy", "swin_pad_t09" })
            foreach (var w in new[] { SimdWidth.V512, SimdWidth.V256, SimdWidth.V128 })
                d.Add(name, w);
        return d;
    }

    [Theory, MemberData(nameof(Cases))]
    public void Logits_match_pytorch_and_do_not_depend_on_threads(string name, SimdWidth width)
    {
        var model = Load(name, new LoadOptions { Simd = width });
        var input = Fixtures.Npy_(name + ".input.npy");
        var golden = Fixtures.Npy_(name + ".logits.npy");
        int batch = input.Shape[0];
        Assert.Equal(2, batch);
        float[]? first = null;
        foreach (int threads in new[] { 1, 2, 3 })
        {
            var logits = new float[batch * model.Config.NumClasses];
            using var session = new SwinSession(model, threads);
            session.Run(input.Data, batch, logits);
            Fixtures.AssertClose(golden.Data, logits, 1e-4, $"{name} {threads} threads");
            if (first == null) first = logits;
            else Assert.True(first.AsSpan().SequenceEqual(logits), $"{threads} threads differ from 1");
        }
    }

    [Fact]
    public void Full_size_swin_t_with_seeded_weights_matches_pytorch()
    {
        var config = SwinArchitectures.Get("swin_t");
        var model = SwinModel.FromSource(new SeededSwinWeights(config), config);
        var input = new float[config.ImageElements];
        SeededWeights.FillInput(input);
        var logits = new float[config.NumClasses];
        using var session = new SwinSession(model, 2);
        session.Run(input, 1, logits);
        Fixtures.AssertClose(Fixtures.Npy_("swin_tiny_seeded.logits.npy").Data, logits, 1e-4, "swin_t seeded");
    }

    [Fact]
    public void Legacy_keys_give_the_same_config_as_timm09_keys()
    {
        var now = SwinModel.Load(Fixtures.Path_("swin_tiny_t09.safetensors")).Config;
        var old = Load("swin_tiny_legacy").Config;
        Assert.Equal(SwinKeyLayout.Legacy, old.Layout);
        Assert.Equal(now.ToJson(), (old with { Name = now.Name, Layout = SwinKeyLayout.Timm09 }).ToJson());
    }

    [Fact]
    public void Steady_state_inference_does_not_allocate()
    {
        var model = Load("swin_pad_t09");
        var input = Fixtures.Npy_("swin_pad_t09.input.npy");
        var logits = new float[2 * model.Config.NumClasses];
        using var session = new SwinSession(model, 2);
        session.Run(input.Data, 2, logits);
        session.Run(input.Data, 2, logits);
        Assert.Equal(0, Fixtures.ThreadAllocations(() => session.Run(input.Data, 2, logits)));
    }

    [Fact]
    public void Pruned_swin_round_trips_with_its_sparse_formats()
    {
        using var file = new SafeTensorsFile(Fixtures.Path_("swin_tiny_t09.safetensors"));
        var config = SwinFile.ReadConfig(file, null);
        var src = new MaskedSource(new SafeTensorsSource(file), name => name.EndsWith("mlp.fc1.weight") || name.EndsWith("attn.qkv.weight"));
        var pruned = SwinModel.FromSource(src, config, new LoadOptions { Sparse = SparseMode.Unstructured });
        Assert.Contains(pruned.LinearLayers, l => l.Format == WeightFormat.Unstructured && l.Layer.EndsWith("mlp.fc1"));
        string path = Path.Combine(Path.GetTempPath(), $"swin-pruned-{Environment.ProcessId}.safetensors");
        try
        {
            SwinFile.Save(path, config, src, sparse: pruned.SparseLayouts());
            using (var saved = new SafeTensorsFile(path))
                Assert.Equal(pruned.SparseLayouts().Keys.Order(), new SafeTensorsSource(saved).Stored.Keys.Order());
            var back = SwinModel.Load(path, new LoadOptions { Sparse = SparseMode.Unstructured });
            Assert.Equal(config.ToJson(), back.Config.ToJson());
            Assert.Equal(pruned.SparseLayouts().Keys.Order(), back.SparseLayouts().Keys.Order());
            var input = Fixtures.Npy_("swin_tiny_t09.input.npy");
            var a = new float[20];
            var b = new float[20];
            using (var s = new SwinSession(pruned, 1)) s.Run(input.Data, 2, a);
            using (var s = new SwinSession(back, 1)) s.Run(input.Data, 2, b);
            Assert.Equal(a, b);
        }
        finally { File.Delete(path); }
    }

    /// <summary>Zeros every other weight of the chosen tensors (an unstructured mask).</summary>
    sealed class MaskedSource(ITensorSource inner, Func<string, bool> pruned) : ITensorSource
    {
        public string Description => inner.Description;
        public bool Contains(string name) => inner.Contains(name);
        public long[] Shape(string name) => inner.Shape(name);
        public ReadOnlySpan<float> Floats(string name)
        {
            var data = inner.Floats(name).ToArray();
            if (pruned(name)) for (int i = 0; i < data.Length; i += 2) data[i] = 0;
            return data;
        }
    }

    /// <summary>A source with tensors renamed, dropped or replaced.</summary>
    sealed class EditedSource(ITensorSource inner, Dictionary<string, float[]?> replaced, Dictionary<string, long[]> shapes, Dictionary<string, string> renamed) : ITensorSource
    {
        string Original(string name) => renamed.FirstOrDefault(r => r.Value == name).Key ?? (renamed.ContainsKey(name) ? "" : name);
        public string Description => "edited.safetensors";
        public bool Contains(string name) => replaced.TryGetValue(name, out var v) ? v != null : Original(name) is { Length: > 0 } o && inner.Contains(o);
        public long[] Shape(string name) => shapes.TryGetValue(name, out var s) ? s : inner.Shape(Original(name));
        public ReadOnlySpan<float> Floats(string name) => replaced.TryGetValue(name, out var v) && v != null ? v : inner.Floats(Original(name));
    }

    static ModelException LoadEdited(string fixture, Dictionary<string, float[]?> replaced, Dictionary<string, long[]> shapes, Dictionary<string, string> renamed, Func<SwinConfig, SwinConfig>? change = null)
    {
        using var file = new SafeTensorsFile(Fixtures.Path_(fixture + ".safetensors"));
        var config = SwinFile.ReadConfig(file, null);
        var src = new EditedSource(new SafeTensorsSource(file), replaced, shapes, renamed);
        return Assert.Throws<ModelException>(() =>
        {
            var c = change == null ? config : change(config);
            SwinModel.FromSource(src, c);
        });
    }

    [Fact]
    public void Bias_table_of_the_wrong_size_is_named()
    {
        const string table = "layers.0.blocks.1.attn.relative_position_bias_table";
        var e = LoadEdited("swin_tiny_t09", new() { [table] = new float[10 * 2] }, new() { [table] = [10, 2] }, new());
        Assert.Equal(table, e.Tensor);
        Assert.StartsWith("edited.safetensors: tensor 'layers.0.blocks.1.attn.relative_position_bias_table' has shape [10,2]", e.Message);
        Assert.Contains("(2·4 − 1)² = 49 rows", e.Message);
    }

    [Fact]
    public void Window_larger_than_the_map_explains_timms_shrinking()
    {
        // swin_pad_t09's stage 2 is a 6×6 map under a window of 7: timm's table there is 11², not 13².
        const string table = "layers.2.blocks.0.attn.relative_position_bias_table";
        var e = LoadEdited("swin_pad_t09", new() { [table] = new float[169 * 6] }, new() { [table] = [169, 6] }, new());
        Assert.Equal(table, e.Tensor);
        Assert.Contains("window 7 is larger than stage 2's 6×6 map", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Keys_of_neither_layout_are_refused_with_what_was_found()
    {
        using var file = new SafeTensorsFile(Fixtures.Path_("swin_tiny_t09.safetensors"));
        var src = new EditedSource(new SafeTensorsSource(file), new(), new(), new() { ["head.fc.weight"] = "head.linear.weight" });
        var e = Assert.Throws<ModelException>(() => SwinLayout.Infer(src, null));
        Assert.StartsWith("edited.safetensors: keys of neither Swin layout: found neither 'head.fc.weight' nor 'head.weight'", e.Message);
        // Our metadata says timm ≥ 0.9 keys but the file has the other layout's merge: the missing tensor is named.
        var e2 = LoadEdited("swin_tiny_t09", new(), new(), new() { ["layers.1.downsample.reduction.weight"] = "layers.0.downsample.reduction.weight" });
        Assert.Equal("layers.1.downsample.reduction.weight", e2.Tensor);
        Assert.Contains("key layout is timm ≥ 0.9", e2.Message);
    }

    [Fact]
    public void Image_of_the_wrong_size_is_refused()
    {
        var model = Load("swin_tiny_t09");
        using var session = new SwinSession(model, 1);
        var e = Assert.Throws<InputException>(() => session.Run(new float[3 * 28 * 28], 1, new float[10]));
        Assert.Equal("images", e.Argument);
        var bad = model.Config with { ImageSize = 36 };
        Assert.Contains("patch and merge factors", Assert.Throws<ModelException>(() => bad.Validate()).Message);
    }
}
