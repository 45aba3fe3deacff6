using VitSparse.Runtime;
using Xunit;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;

namespace VitSparse.Tests;

public class SwinConfigTests
{
    static long Params(SwinConfig c) => SwinLayout.ExpectedShapes(c).Values.Sum(s => s.Aggregate(1L, (a, b) => a * b));

    [Theory]
    [InlineData("swin_t", 28_288_354L)]
    [InlineData("swin_s", 49_606_258L)]
    [InlineData("swin_b", 87_768_224L)]
    public void Named_architectures_have_timms_parameter_counts(string name, long expected)
    {
        var c = SwinArchitectures.Get(name).Validate();
        Assert.Equal(expected, Params(c));
        Assert.Equal(expected, Params(c with { Layout = SwinKeyLayout.Legacy }));
    }

    [Fact]
    public void Layouts_put_the_merges_and_the_head_where_timm_does()
    {
        var c = SwinArchitectures.Get("swin_t");
        var now = SwinLayout.ExpectedShapes(c);
        var old = SwinLayout.ExpectedShapes(c with { Layout = SwinKeyLayout.Legacy });
        Assert.Equal([192L, 384], now["layers.1.downsample.reduction.weight"]);
        Assert.False(now.ContainsKey("layers.0.downsample.reduction.weight"));
        Assert.Equal([192L, 384], old["layers.0.downsample.reduction.weight"]);
        Assert.False(old.ContainsKey("layers.3.downsample.reduction.weight"));
        Assert.Equal([1000L, 768], now["head.fc.weight"]);
        Assert.Equal([1000L, 768], old["head.weight"]);
        Assert.Equal([169L, 24], now["layers.3.blocks.1.attn.relative_position_bias_table"]);
        Assert.Equal(0, c.StageShift(3));
        Assert.Equal(3, c.StageShift(2));
    }

    [Fact]
    public void Json_round_trips_and_names_the_family()
    {
        var c = SwinConfig.Uniform("tiny", 24, [2, 2, 2], [2, 3, 4], window: 4, classes: 10, imageSize: 64, patchSize: 2, layout: SwinKeyLayout.Legacy);
        string json = c.ToJson();
        Assert.True(SwinConfig.IsSwinJson(json));
        var back = SwinConfig.FromJson(json);
        Assert.Equal(json, back.ToJson());
        var e = Assert.Throws<ModelException>(() => VitConfig.FromJson(json));
        Assert.Contains("'swin'", e.Message);
    }

    [Theory]
    [InlineData(100, "image_size")]   // 100/4 = 25 is odd: the first merge has nothing to pair
    [InlineData(200, "image_size")]   // 200 = 4·50: fine for two merges, not for three
    public void Image_size_must_divide_by_the_patch_and_merge_factors(int size, string field)
    {
        var c = SwinArchitectures.Get("swin_t") with { ImageSize = size };
        var e = Assert.Throws<ModelException>(() => c.Validate());
        Assert.Contains($"'{field}'", e.Message);
        Assert.Contains("patch and merge factors", e.Message);
    }

    [Fact]
    public void Heads_must_divide_the_width()
    {
        var c = SwinConfig.Uniform("bad", 20, [2], [3], imageSize: 28);
        Assert.Contains("stages[0].heads", Assert.Throws<ModelException>(() => c.Validate()).Message);
    }

    [Fact]
    public void Saved_swin_keeps_config_and_tensors_in_both_layouts()
    {
        foreach (var layout in new[] { SwinKeyLayout.Timm09, SwinKeyLayout.Legacy })
        {
            var c = SwinConfig.Uniform("tiny", 16, [2, 2], [2, 4], window: 4, classes: 5, imageSize: 32, patchSize: 2, layout: layout);
            string path = Path.Combine(Path.GetTempPath(), $"swin-roundtrip-{Environment.ProcessId}-{layout}.safetensors");
            try
            {
                var src = new SeededSwinWeights(c);
                SwinFile.Save(path, c, src);
                using var file = new SafeTensorsFile(path);
                Assert.True(SwinFile.IsSwin(file));
                Assert.Equal(c.ToJson(), SwinFile.ReadConfig(file, null).ToJson());
                var read = new SafeTensorsSource(file);
                foreach (var name in SwinLayout.ExpectedShapes(c).Keys)
                    Assert.True(src.Floats(name).SequenceEqual(read.Floats(name)), name);
                Assert.Equal(layout, SwinLayout.DetectLayout(read));
            }
            finally { File.Delete(path); }
        }
    }
}
