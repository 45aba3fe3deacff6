using System.Globalization;
using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;

namespace VitSparse.Bench;

/// <summary>
/// `bench --sparsify bsr32x32:0.5 | unstructured:0.7`: zeroes that fraction of every block linear's weight
/// (qkv, proj, fc1, fc2) by magnitude, per layer: the blocks of least Frobenius norm, or the weights of
/// least |w|. A structure for measuring kernels, not a pruning method: nothing is calibrated or retrained.
/// </summary>
public sealed record SparsifySpec(WeightFormat Format, int BlockHeight, int BlockWidth, double Zeroed)
{
    public string Label => Format == WeightFormat.Bsr
        ? $"bsr{BlockHeight}x{BlockWidth} {Zeroed.ToString("0%", CultureInfo.InvariantCulture)} zero"
        : $"unstructured {Zeroed.ToString("0%", CultureInfo.InvariantCulture)} zero";

    public static SparsifySpec Parse(string text)
    {
        var bad = new InputException("--sparsify", $"'{text}' is not bsrHxW:FRACTION or unstructured:FRACTION (FRACTION of weights zeroed, in [0, 1))");
        var parts = text.Split(':');
        if (parts.Length != 2 || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double z) || !(z >= 0 && z < 1)) throw bad;
        if (parts[0] == "unstructured") return new(WeightFormat.Unstructured, 1, 1, z);
        if (!parts[0].StartsWith("bsr", StringComparison.Ordinal)) throw bad;
        var hw = parts[0][3..].Split('x');
        if (hw.Length != 2 || !int.TryParse(hw[0], CultureInfo.InvariantCulture, out int h) || !int.TryParse(hw[1], CultureInfo.InvariantCulture, out int w)
            || h < 1 || w < 1 || h > SparseStorage.MaxBlockSide || w > SparseStorage.MaxBlockSide) throw bad;
        return new(WeightFormat.Bsr, h, w, z);
    }

    /// <summary>A copy of the weights with the zeros applied to every block linear.</summary>
    public DenseTensors Apply(ITensorSource weights, VitConfig config)
    {
        var t = DenseTensors.From(weights, config);
        for (int i = 0; i < config.Depth; i++)
            foreach (var layer in new[] { "attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2" })
            {
                var w = t[$"blocks.{i}.{layer}.weight"];
                if (Format == WeightFormat.Bsr) ZeroBlocks(w.Data, w.Rows, w.RowLength);
                else ZeroSmallest(w.Data);
            }
        return t;
    }

    void ZeroSmallest(float[] w)
    {
        int zero = (int)Math.Round(Zeroed * w.Length);
        var order = Enumerable.Range(0, w.Length).OrderBy(i => Math.Abs(w[i])).ThenBy(i => i).Take(zero);
        foreach (int i in order) w[i] = 0f;
    }

    void ZeroBlocks(float[] w, int n, int k)
    {
        int h = BlockHeight, bw = BlockWidth, rows = (n + h - 1) / h, cols = (k + bw - 1) / bw;
        var norms = new double[rows * cols];
        for (int r = 0; r < n; r++)
            for (int c = 0; c < k; c++) norms[r / h * cols + c / bw] += (double)w[r * k + c] * w[r * k + c];
        int zero = (int)Math.Round(Zeroed * norms.Length);
        foreach (int b in Enumerable.Range(0, norms.Length).OrderBy(b => norms[b]).ThenBy(b => b).Take(zero))
        {
            int r0 = b / cols * h, c0 = b % cols * bw;
            for (int r = r0; r < Math.Min(n, r0 + h); r++) Array.Clear(w, r * k + c0, Math.Min(bw, k - c0));
        }
    }
}
