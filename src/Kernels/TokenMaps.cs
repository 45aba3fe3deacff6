namespace VitSparse.Kernels;

/// <summary>Reshapes of an NHWC token map that carry no arithmetic beyond a mean: Swin's patch merging and average pooling.</summary>
public static class TokenMaps
{
    /// <summary>
    /// Swin's PatchMerging gather: x [images, H, W, C] to [images, H/2, W/2, 4C] with each output row
    /// [x(2i, 2j) | x(2i+1, 2j) | x(2i, 2j+1) | x(2i+1, 2j+1)] (timm's x0, x1, x2, x3). H and W must be even.
    /// </summary>
    public static void Merge2x2(ReadOnlySpan<float> x, int images, int height, int width, int channels, Span<float> dst, ThreadTeam team)
    {
        if (height % 2 != 0 || width % 2 != 0) throw new ArgumentException($"a {height}×{width} map does not merge 2×2", nameof(height));
        long n = (long)images * height * width * channels;
        if (x.Length < n || dst.Length < n) throw new ArgumentException("merge buffers too small");
        unsafe
        {
            fixed (float* px = x) fixed (float* pd = dst)
                team.For(images * (height / 2), new MergeBody(px, pd, height, width, channels));
        }
    }

    unsafe readonly struct MergeBody(float* x, float* dst, int height, int width, int c) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            int oh = height / 2, ow = width / 2;
            for (int item = start; item < end; item++)
            {
                int image = item / oh, i = item % oh;
                for (int j = 0; j < ow; j++)
                {
                    float* o = dst + (((long)image * oh + i) * ow + j) * 4 * c;
                    for (int part = 0; part < 4; part++)
                    {
                        int y = 2 * i + (part & 1), xcol = 2 * j + (part >> 1);
                        new ReadOnlySpan<float>(x + (((long)image * height + y) * width + xcol) * c, c).CopyTo(new Span<float>(o + part * c, c));
                    }
                }
            }
        }
    }

    /// <summary>Mean over each image's tokens: x [images, tokens, C] to dst [images, C], summed in token order.</summary>
    public static void MeanPool(ReadOnlySpan<float> x, int images, int tokens, int channels, Span<float> dst)
    {
        if (x.Length < (long)images * tokens * channels || dst.Length < (long)images * channels) throw new ArgumentException("pool buffers too small");
        float inv = 1f / tokens;
        for (int b = 0; b < images; b++)
        {
            var o = dst.Slice(b * channels, channels);
            x.Slice(b * tokens * channels, channels).CopyTo(o);
            for (int t = 1; t < tokens; t++)
                System.Numerics.Tensors.TensorPrimitives.Add(o, x.Slice((b * tokens + t) * channels, channels), o);
            System.Numerics.Tensors.TensorPrimitives.Multiply(o, inv, o);
        }
    }
}
