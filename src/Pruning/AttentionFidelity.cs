using System.Numerics.Tensors;
using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;

namespace VitSparse.Pruning;

/// <summary>Mean cosine similarity between original and pruned attention maps, per Q/K pruning ratio.</summary>
public sealed record FidelityRow(Criterion Criterion, double[] Ratios, double[] MeanCosine);

/// <summary>
/// How well a criterion's Q/K pair choice preserves attention maps without fine-tuning (SNP paper, Fig. 3):
/// every block's Q/K pairs are pruned at a ratio (per head, kept = d − round(r·d)) and each head's map
/// softmax(scale·Q_keep·K_keepᵀ) is compared with the original map, flattened, by cosine similarity. Maps are
/// layer-local: each block sees the original model's inputs, so the numbers isolate the criterion's choice
/// from error carried in from earlier blocks. Averaged over blocks, heads and calibration images.
/// </summary>
public static class AttentionFidelity
{
    /// <summary>One row per criterion: mean cosine similarity of original and Q/K-pruned attention maps at each ratio, over <paramref name="count"/> images.</summary>
    public static List<FidelityRow> Measure(DenseTensors dense, ReadOnlySpan<float> images, int count, double[] ratios, Criterion[] criteria,
        int gamma = 0, int threads = 0, int seed = 0, Action<int, int>? progress = null)
    {
        foreach (double r in ratios)
            if (!(r >= 0 && r < 1)) throw new InputException("--ratios", $"{r} is outside [0, 1)");
        var c = dense.Config;
        float[][][]? snp = criteria.Any(x => x is Criterion.Snp or Criterion.ReverseSnp)
            ? Pruner.CalibrateSnp(dense, images, count, gamma, threads, progress == null ? null : (d, t) => progress(d, 2 * t)) : null;
        // keep[criterion][ratio][block][head] = kept pair indices
        var keep = criteria.Select(crit =>
        {
            var scores = Criteria.Score(dense, crit, snp, seed).Qk;
            return ratios.Select(r => scores.Select((b, i) => b.Select((h, hh) =>
                Allocation.TopK(h, Math.Max(1, c.Blocks[i].QkWidths[hh] - (int)Math.Round(r * c.Blocks[i].QkWidths[hh], MidpointRounding.ToEven)))).ToArray()).ToArray()).ToArray();
        }).ToArray();
        var observer = new Observer(c, keep);
        var model = VitModel.FromSource(dense, c);
        using (var session = new InferenceSession(model, threads) { Observer = observer })
        {
            var logits = new float[c.NumClasses];
            for (int i = 0; i < count; i++)
            {
                session.Run(images.Slice(i * c.ImageElements, c.ImageElements), 1, logits);
                progress?.Invoke(snp == null ? i + 1 : count + i + 1, snp == null ? count : 2 * count);
            }
        }
        return criteria.Select((crit, ci) => new FidelityRow(crit, ratios, ratios.Select((_, ri) => observer.Sum[ci, ri] / observer.Count[ci, ri]).ToArray())).ToList();
    }

    sealed class Observer(VitConfig c, int[][][][][] keep) : IActivationObserver
    {
        public readonly double[,] Sum = new double[keep.Length, keep[0].Length];
        public readonly long[,] Count = new long[keep.Length, keep[0].Length];

        public void OnQkv(int block, ReadOnlySpan<float> qkv, int images, int tokens, int rowWidth)
        {
            var b = c.Blocks[block];
            var data = qkv.ToArray();
            Parallel.For(0, b.Heads * images, item =>
            {
                int h = item % b.Heads, img = item / b.Heads;
                int d = b.QkWidths[h];
                var all = Enumerable.Range(0, d).ToArray();
                var original = Map(data, img * tokens, tokens, rowWidth, b.QkOffset(h), b.QkTotal + b.QkOffset(h), all, b.AttnScale);
                for (int ci = 0; ci < keep.Length; ci++)
                    for (int ri = 0; ri < keep[ci].Length; ri++)
                    {
                        var pruned = Map(data, img * tokens, tokens, rowWidth, b.QkOffset(h), b.QkTotal + b.QkOffset(h), keep[ci][ri][block][h], b.AttnScale);
                        double cos = TensorPrimitives.CosineSimilarity(original, pruned);
                        lock (Sum) { Sum[ci, ri] += cos; Count[ci, ri]++; }
                    }
            });
        }

        /// <summary>softmax(scale·Q_keep·K_keepᵀ) for one head of one image, N×N.</summary>
        static float[] Map(float[] qkv, int row0, int n, int ld, int qOff, int kOff, int[] pairs, float scale)
        {
            int k = pairs.Length;
            var q = new float[n * k];
            var kk = new float[n * k];
            for (int t = 0; t < n; t++)
                for (int j = 0; j < k; j++)
                {
                    q[t * k + j] = qkv[(row0 + t) * ld + qOff + pairs[j]] * scale;
                    kk[t * k + j] = qkv[(row0 + t) * ld + kOff + pairs[j]];
                }
            var s = new float[n * n];
            PackedLinear.Pack(kk, n, k, []).Forward(q, n, k, s, n, Epilogue.Bias, ThreadTeam.Single);
            for (int i = 0; i < n; i++)
            {
                var row = s.AsSpan(i * n, n);
                float max = TensorPrimitives.Max(row);
                TensorPrimitives.Subtract(row, max, row);
                TensorPrimitives.Exp(row, row);
                TensorPrimitives.Divide(row, TensorPrimitives.Sum(row), row);
            }
            return s;
        }
    }
}
