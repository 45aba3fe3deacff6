namespace VitSparse.Kernels;

/// <summary>
/// Non-overlapping patch extraction (im2col for a stride = kernel convolution): NCHW images to rows of
/// [C·p·p] in (c, ky, kx) order, the order of a flattened Conv2d weight, so the patch embedding is a GEMM.
/// </summary>
public static class Patches
{
    public static void Extract(ReadOnlySpan<float> images, int batch, int channels, int size, int patch, Span<float> rows)
    {
        int grid = size / patch, rowLen = channels * patch * patch;
        if (images.Length < (long)batch * channels * size * size) throw new ArgumentException("image buffer too small", nameof(images));
        if (rows.Length < (long)batch * grid * grid * rowLen) throw new ArgumentException("patch buffer too small", nameof(rows));
        for (int b = 0; b < batch; b++)
            for (int gy = 0; gy < grid; gy++)
                for (int gx = 0; gx < grid; gx++)
                {
                    var dst = rows.Slice(((b * grid + gy) * grid + gx) * rowLen, rowLen);
                    int o = 0;
                    for (int c = 0; c < channels; c++)
                        for (int ky = 0; ky < patch; ky++)
                        {
                            int src = ((b * channels + c) * size + gy * patch + ky) * size + gx * patch;
                            images.Slice(src, patch).CopyTo(dst.Slice(o, patch));
                            o += patch;
                        }
                }
    }
}
