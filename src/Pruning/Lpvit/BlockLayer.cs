using VitSparse.Runtime;
using VitSparse.Runtime.Models;

namespace VitSparse.Pruning.Lpvit;

/// <summary>
/// A weight matrix [rows, cols] cut into blocks of <see cref="BlockHeight"/>×<see cref="BlockWidth"/>, as
/// LPViT pools it (AvgPool2d with ceil_mode) and as BSR stores it: the last block row and column are ragged
/// when a side is not a multiple of the block, and a ragged block holds only its in-bounds weights.
/// </summary>
/// <param name="Rows">Output features (rows of the weight).</param>
/// <param name="Cols">Input features (columns; a conv's C·kh·kw).</param>
/// <param name="BlockHeight">Rows per block.</param>
/// <param name="BlockWidth">Columns per block.</param>
public sealed record BlockGrid(int Rows, int Cols, int BlockHeight, int BlockWidth)
{
    /// <summary>Block rows, the last one ragged when Rows is not a multiple of the block height.</summary>
    public int BlockRows => (Rows + BlockHeight - 1) / BlockHeight;
    /// <summary>Block columns, the last one ragged when Cols is not a multiple of the block width.</summary>
    public int BlockCols => (Cols + BlockWidth - 1) / BlockWidth;
    /// <summary>Blocks in the grid.</summary>
    public int Count => BlockRows * BlockCols;

    /// <summary>First row, first column and in-bounds size of block <paramref name="b"/> (row-major block order).</summary>
    public (int Row, int Col, int Height, int Width) Bounds(int b)
    {
        int r0 = b / BlockCols * BlockHeight, c0 = b % BlockCols * BlockWidth;
        return (r0, c0, Math.Min(BlockHeight, Rows - r0), Math.Min(BlockWidth, Cols - c0));
    }

    /// <summary>In-bounds weights of block <paramref name="b"/>.</summary>
    public int Elements(int b)
    {
        var (_, _, h, w) = Bounds(b);
        return h * w;
    }

    /// <summary>Sets every weight of block <paramref name="b"/> to zero.</summary>
    public void Zero(Span<float> weight, int b)
    {
        var (r0, c0, h, w) = Bounds(b);
        for (int r = r0; r < r0 + h; r++) weight.Slice(r * Cols + c0, w).Clear();
    }
}

/// <summary>
/// One layer LPViT prunes: a linear weight or the patch-embedding conv viewed as [D, C·p·p] (methods.md §3.1),
/// with what its FLOPs and power term need.
/// </summary>
/// <param name="Name">Module name under timm's names (patch_embed.proj, blocks.3.mlp.fc1, head).</param>
/// <param name="Rows">Output features.</param>
/// <param name="Cols">Input features (the conv's C·p·p).</param>
/// <param name="RowsPerImage">Rows of X per image: patches for the conv, every token for a block linear, 1 for a head.</param>
/// <param name="PowerWidth">D_in of the power term: a linear's input width; for the conv, the reference takes the image side (224), a quirk kept.</param>
/// <param name="HasBias">Whether the layer adds a bias (a Swin patch merge's reduction has none, so no bias FLOPs).</param>
public sealed record PrunableLayer(string Name, int Rows, int Cols, long RowsPerImage, int PowerWidth, bool HasBias = true)
{
    /// <summary>The weight tensor's name.</summary>
    public string Weight => Name + ".weight";
    /// <summary>Weights in the layer.</summary>
    public long Numel => (long)Rows * Cols;
    /// <summary>FLOPs the reference counts for the bias (one per output element); never pruned.</summary>
    public long BiasFlops => HasBias ? RowsPerImage * Rows : 0;
    /// <summary>FLOPs the reference counts with <paramref name="keptWeights"/> non-zero weights: kept weights × rows of X, plus the bias.</summary>
    public long Flops(long keptWeights) => keptWeights * RowsPerImage + BiasFlops;
    /// <summary>Whether this is a classifier head (left dense by --skip-head).</summary>
    public bool IsHead => Name is "head" or "head_dist" or "head.fc";

    /// <summary>
    /// Every linear and the patch conv of a DeiT in execution order, heads included as the reference does
    /// (<paramref name="skipHead"/> leaves them out).
    /// </summary>
    public static List<PrunableLayer> Of(VitConfig c, bool skipHead = false)
    {
        var list = new List<PrunableLayer> { new("patch_embed.proj", c.EmbedDim, c.PatchDim, c.PatchTokens, c.ImageSize) };
        for (int i = 0; i < c.Depth; i++)
        {
            var b = c.Blocks[i];
            string p = $"blocks.{i}.";
            list.Add(new(p + "attn.qkv", b.QkvRows, c.EmbedDim, c.Tokens, c.EmbedDim));
            list.Add(new(p + "attn.proj", c.EmbedDim, b.VTotal, c.Tokens, b.VTotal));
            list.Add(new(p + "mlp.fc1", b.MlpHidden, c.EmbedDim, c.Tokens, c.EmbedDim));
            list.Add(new(p + "mlp.fc2", c.EmbedDim, b.MlpHidden, c.Tokens, b.MlpHidden));
        }
        if (!skipHead)
        {
            list.Add(new("head", c.NumClasses, c.EmbedDim, 1, c.EmbedDim));
            if (c.Distilled) list.Add(new("head_dist", c.NumClasses, c.EmbedDim, 1, c.EmbedDim));
        }
        return list;
    }

    /// <summary>Linear+conv FLOPs per image of the dense model, as the reference counts them (attention matmuls excluded), heads included.</summary>
    public static long DenseFlops(VitConfig c) => Of(c).Sum(l => l.Flops(l.Numel));

    /// <summary>
    /// Every linear and the patch conv of a Swin in execution order (patch embedding; per stage its patch merge's
    /// reduction, then each block's qkv, proj, fc1, fc2; the head), under the config's key layout. Rows of X per
    /// image: patches for the conv, the stage's tokens (unpadded, as the paper counts) for a block linear and for the
    /// merge that starts the stage, 1 for the head. <paramref name="skipHead"/> leaves the head out.
    /// </summary>
    public static List<PrunableLayer> Of(SwinConfig c, bool skipHead = false)
    {
        long Tokens(int s) => (long)c.Resolution(s) * c.Resolution(s);
        var list = new List<PrunableLayer> { new("patch_embed.proj", c.EmbedDim, c.PatchDim, Tokens(0), c.ImageSize) };
        for (int s = 0; s < c.Stages.Count; s++)
        {
            var st = c.Stages[s];
            if (s > 0)
            {
                int merged = 4 * c.Stages[s - 1].Dim;
                list.Add(new(SwinLayout.Merge(c, s) + "reduction", st.Dim, merged, Tokens(s), merged, HasBias: false));
            }
            for (int b = 0; b < st.Depth; b++)
            {
                string p = SwinLayout.Block(s, b);
                list.Add(new(p + "attn.qkv", 3 * st.Dim, st.Dim, Tokens(s), st.Dim));
                list.Add(new(p + "attn.proj", st.Dim, st.Dim, Tokens(s), st.Dim));
                list.Add(new(p + "mlp.fc1", st.MlpHidden, st.Dim, Tokens(s), st.Dim));
                list.Add(new(p + "mlp.fc2", st.Dim, st.MlpHidden, Tokens(s), st.MlpHidden));
            }
        }
        if (!skipHead) list.Add(new(SwinLayout.Head(c), c.NumClasses, c.NumFeatures, 1, c.NumFeatures));
        return list;
    }

    /// <summary>Linear+conv FLOPs per image of a dense Swin, as the paper counts them (window attention excluded), head included.</summary>
    public static long DenseFlops(SwinConfig c) => Of(c).Sum(l => l.Flops(l.Numel));

    /// <summary>All MACs per image of a dense Swin: every linear and the conv in full, plus window attention (padded windows).</summary>
    public static long DenseMacs(SwinConfig c) => Of(c).Sum(l => l.Numel * l.RowsPerImage) + SwinModel.AttentionMacs(c);

    /// <summary>
    /// The layer's block grid; refuses a block larger than the layer on both sides (the whole layer would be one
    /// block). A block larger on one side only gives ragged edge blocks, as the reference's ceil-mode pooling does.
    /// </summary>
    public BlockGrid Grid(int blockHeight, int blockWidth)
    {
        if (blockHeight >= Rows && blockWidth >= Cols && (blockHeight > Rows || blockWidth > Cols))
            throw new InputException("--block", $"{blockHeight}x{blockWidth} is larger than layer {Name} ({Rows}×{Cols}): the whole layer would be one block; use a smaller block (or --skip-head for a small head)");
        return new BlockGrid(Rows, Cols, blockHeight, blockWidth);
    }
}
