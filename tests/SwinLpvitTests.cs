using VitSparse.Pruning;
using VitSparse.Pruning.Lpvit;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>LPViT's Swin layers, their FLOPs and the Swin calibration gradients.</summary>
public class SwinLpvitTests
{
    static SwinConfig Mini(SwinKeyLayout layout) =>
        SwinConfig.Uniform("mini_swin", 16, [2, 2, 2], [1, 2, 2], window: 4, classes: 10, imageSize: 64, patchSize: 2, layout: layout);

    [Theory]
    [InlineData(SwinKeyLayout.Timm09)]
    [InlineData(SwinKeyLayout.Legacy)]
    public void Swin_layers_are_every_linear_and_the_conv_with_the_rows_the_runtime_runs(SwinKeyLayout layout)
    {
        var c = Mini(layout);
        var layers = PrunableLayer.Of(c);
        var linear = SwinLayout.ExpectedShapes(c).Keys.Where(SwinLayout.IsLinearWeight).Order(StringComparer.Ordinal);
        Assert.Equal(linear, layers.Select(l => l.Weight).Order(StringComparer.Ordinal));
        Assert.Equal(layers.Count - 1, PrunableLayer.Of(c, skipHead: true).Count);
        Assert.All(layers.Where(l => l.Name.Contains("downsample")), l => Assert.Equal(0, l.BiasFlops));
        // The same multiply-adds as the runtime counts for the dense model: each layer's rows per image agree.
        var model = SwinModel.FromSource(new SeededSwinWeights(c), c, new LoadOptions { Sparse = SparseMode.Off });
        Assert.Equal(model.DenseMacs(), PrunableLayer.DenseMacs(c));
        foreach (var l in model.LinearLayers) Assert.Equal(model.RowsPerImage(l), layers.Single(p => p.Name == l.Layer).RowsPerImage);
    }

    [Fact]
    public void Swin_gradients_averaged_in_batches_equal_the_mean_of_single_images()
    {
        var c = Mini(SwinKeyLayout.Timm09) with { ImageSize = 32 };
        var dense = SwinTensors.From(new SeededSwinWeights(c, 5), c);
        var layers = PrunableLayer.Of(c);
        int n = TaylorGradients.BatchSize + 1;
        var images = Fixtures.Random(n * c.ImageElements, 5);
        var all = TaylorGradients.Average(dense, images, n, layers, 1);
        var mean = layers.ToDictionary(l => l.Weight, l => new double[l.Numel]);
        for (int i = 0; i < n; i++)
        {
            var one = TaylorGradients.Average(dense, images.AsSpan(i * c.ImageElements, c.ImageElements), 1, layers, 1);
            foreach (var l in layers) for (int j = 0; j < l.Numel; j++) mean[l.Weight][j] += one[l.Weight][j] / n;
        }
        foreach (var l in layers)
        {
            Assert.Contains(all[l.Weight], v => v != 0);
            Fixtures.AssertClose(mean[l.Weight].Select(v => (float)v).ToArray(), all[l.Weight], 1e-4, l.Weight);
        }
        var ex = Assert.Throws<InputException>(() => TaylorGradients.Average(dense, images.AsSpan(0, 3 * 28 * 28), 1, layers, 1));
        Assert.Contains("expected 1×3×32×32", ex.Message);
    }
}
