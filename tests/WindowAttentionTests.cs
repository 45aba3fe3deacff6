using VitSparse.Kernels;
using Xunit;

namespace VitSparse.Tests;

/// <summary>The fused window attention against a scalar reference that rolls, pads and partitions the map explicitly (timm's way).</summary>
[Trait("Category", "Kernels")]
public class WindowAttentionTests
{
    /// <summary>timm's order of operations in doubles: roll by −shift, pad with the pad row, partition, attend with bias and mask, reverse.</summary>
    static float[] Reference(WindowGeometry g, float[] qkv, int images, int heads, int d, float scale, float[] pad, float[] table)
    {
        int c = heads * d, w = g.Window, n = w * w, hp = g.PaddedHeight, wp = g.PaddedWidth, s = g.Shift, side = 2 * w - 1;
        var output = new float[images * g.Height * g.Width * c];
        // Region ids on the padded map, as timm's get_attn_mask slices them.
        int Region(int i, int size) => s == 0 ? 0 : i < size - w ? 0 : i < size - s ? 1 : 2;
        for (int b = 0; b < images; b++)
            for (int wy = 0; wy < hp / w; wy++)
                for (int wx = 0; wx < wp / w; wx++)
                    for (int h = 0; h < heads; h++)
                    {
                        // Rolled, padded map entry (i, j): original ((i+s) mod H, (j+s) mod W), or padding.
                        float[] Row(int t, out int token)
                        {
                            int i = wy * w + t / w, j = wx * w + t % w;
                            if (i >= g.Height || j >= g.Width) { token = -1; return pad; }
                            token = (b * g.Height + (i + s) % g.Height) * g.Width + (j + s) % g.Width;
                            return qkv.AsSpan(token * 3 * c, 3 * c).ToArray();
                        }
                        var rows = new float[n][];
                        var tokens = new int[n];
                        for (int t = 0; t < n; t++) rows[t] = Row(t, out tokens[t]);
                        for (int qi = 0; qi < n; qi++)
                        {
                            var q = rows[qi];
                            int outToken = tokens[qi];
                            var logits = new double[n];
                            double max = double.NegativeInfinity;
                            for (int kj = 0; kj < n; kj++)
                            {
                                var k = rows[kj];
                                double dot = 0;
                                for (int e = 0; e < d; e++) dot += (double)q[h * d + e] * k[c + h * d + e];
                                int index = (qi / w - kj / w + w - 1) * side + (qi % w - kj % w + w - 1);
                                int ri = wy * w + qi / w, rj = wx * w + qi % w, ki = wy * w + kj / w, kjj = wx * w + kj % w;
                                bool cross = Region(ri, hp) != Region(ki, hp) || Region(rj, wp) != Region(kjj, wp);
                                logits[kj] = scale * dot + table[index * heads + h] + (cross ? -100 : 0);
                                max = Math.Max(max, logits[kj]);
                            }
                            double sum = 0;
                            for (int kj = 0; kj < n; kj++) sum += logits[kj] = Math.Exp(logits[kj] - max);
                            if (outToken < 0) continue;
                            for (int e = 0; e < d; e++)
                            {
                                double acc = 0;
                                for (int kj = 0; kj < n; kj++) acc += logits[kj] * rows[kj][2 * c + h * d + e];
                                output[outToken * c + h * d + e] = (float)(acc / sum);
                            }
                        }
                    }
        return output;
    }

    public static TheoryData<int, int, int, int, int> Geometries() => new()
    {
        // height, width, window, shift, head width
        { 8, 8, 4, 0, 32 },      // plain windows
        { 8, 8, 4, 2, 32 },      // shifted, with the mask
        { 10, 10, 4, 2, 6 },     // padded to 12 and shifted; a 6-wide head (vector tails)
        { 14, 14, 7, 3, 32 },    // Swin's 7×7 windows
        { 9, 9, 7, 3, 13 },      // padded to 14, shifted, odd head width
        { 6, 6, 6, 0, 8 },       // one window covering the map (a shrunk window)
    };

    [Theory, MemberData(nameof(Geometries))]
    public void Matches_the_rolled_padded_reference_at_every_width(int height, int width, int window, int shift, int d)
    {
        var g = new WindowGeometry(height, width, window, shift);
        int heads = 3, images = 2, c = heads * d, n = g.Tokens, side = 2 * window - 1;
        var qkv = Fixtures.Random(images * height * width * 3 * c, 11 + d, 1.5f);
        var pad = Fixtures.Random(3 * c, 12, 0.5f);
        var table = Fixtures.Random(side * side * heads, 13, 2f);
        float scale = 1f / MathF.Sqrt(d);
        var expected = Reference(g, qkv, images, heads, d, scale, pad, table);
        var bias = new float[heads * n * g.Stride];
        WindowAttention.ExpandBias(table, window, heads, bias);
        var masks = new float[4 * n * g.Stride];
        if (shift > 0) WindowAttention.ShiftMasks(g, masks);
        foreach (var simd in new[] { SimdWidth.V512, SimdWidth.V256, SimdWidth.V128 })
        {
            float[]? first = null;
            foreach (int threads in new[] { 1, 2, 3 })
            {
                using var team = new ThreadTeam(threads);
                var attention = new WindowAttention(window, d, threads, simd);
                var output = new float[expected.Length];
                attention.Forward(g, qkv, images, heads, d, scale, pad, bias, masks, output, team);
                Fixtures.AssertClose(expected, output, 2e-5, $"{simd} {threads} threads");
                if (first == null) first = output;
                else Assert.True(first.AsSpan().SequenceEqual(output), $"{simd}: {threads} threads differ from 1");
            }
        }
    }

    [Fact]
    public void Mask_is_minus_100_only_across_regions_of_edge_windows()
    {
        var g = new WindowGeometry(14, 14, 7, 3);
        var masks = new float[4 * 49 * g.Stride];
        WindowAttention.ShiftMasks(g, masks);
        Assert.All(masks.AsSpan(0, 49 * g.Stride).ToArray(), v => Assert.Equal(0f, v));
        // Last column (type 1): token (0,0) is in the left region, token (0,4) in the right one.
        Assert.Equal(-100f, masks[(1 * 49 + 0) * g.Stride + 4]);
        Assert.Equal(0f, masks[(1 * 49 + 0) * g.Stride + 7]);   // (1,0): same column region, no row split in type 1
        Assert.Equal(-100f, masks[(2 * 49 + 0) * g.Stride + 28]); // last row (type 2): (0,0) vs (4,0)
    }

    [Fact]
    public void Bias_index_is_row_offset_times_2w_minus_1_plus_column_offset()
    {
        int w = 3, heads = 2, side = 5;
        var table = new float[side * side * heads];
        for (int i = 0; i < table.Length; i++) table[i] = i;
        var g = new WindowGeometry(w, w, w, 0);
        var bias = new float[heads * 9 * g.Stride];
        WindowAttention.ExpandBias(table, w, heads, bias);
        // Token 0 = (0,0), token 5 = (1,2): Δ = (−1, −2) → index (−1+2)·5 + (−2+2) = 5.
        Assert.Equal(table[5 * heads + 1], bias[(1 * 9 + 0) * g.Stride + 5]);
        Assert.Equal(table[(3 * side + 4) * heads], bias[(0 * 9 + 5) * g.Stride + 0]);
    }
}
