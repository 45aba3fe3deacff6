using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

public class ModelStatsTests
{
    [Theory]
    [InlineData("deit_tiny_patch16_224", 1.254, 5_717_416L)]
    [InlineData("deit_small_patch16_224", 4.599, 22_050_664L)]
    [InlineData("deit_base_patch16_224", 17.564, 86_567_656L)]
    [InlineData("deit_tiny_distilled_patch16_224", 1.261, 5_910_800L)]
    [InlineData("deit_small_distilled_patch16_224", 4.624, 22_436_432L)]
    // methods.md lists 17.656 here, which leaves out head_dist's 0.768 MMAC; both heads run at inference.
    [InlineData("deit_base_distilled_patch16_224", 17.657, 87_338_192L)]
    public void Dense_deit_matches_timm(string name, double gmac, long parameters)
    {
        var c = Architectures.Get(name);
        Assert.Equal(gmac, Math.Round(ModelStats.Macs(c) / 1e9, 3));
        Assert.Equal(parameters, ModelStats.Params(c));
    }

    [Theory]
    [InlineData("deit_t_0.6g", 0.638)]
    [InlineData("deit_s_2.0g", 2.037)]
    [InlineData("deit_s_1.3g", 1.265)]
    [InlineData("deit_b_6.4g", 6.322)]
    public void Released_snp_structures_reproduce_the_paper_macs(string name, double gmac) =>
        Assert.Equal(gmac, Math.Round(ModelStats.Macs(Architectures.Get(name)) / 1e9, 3));

    [Fact]
    public void Per_layer_rows_add_up_and_show_ragged_widths()
    {
        var c = Architectures.Get("deit_s_snp");
        var layers = ModelStats.Layers(c);
        Assert.Equal(ModelStats.Macs(c), layers.Sum(l => l.Macs));
        var qk = layers.Single(l => l.Name == "blocks.7.attn.qk");
        Assert.Equal(197L * 197 * 78, qk.Macs);
        Assert.Contains("6×13", qk.Shape);
        Assert.Equal(197L * 307 * 1228, layers.Single(l => l.Name == "blocks.0.mlp.fc1").Macs);
    }
}
