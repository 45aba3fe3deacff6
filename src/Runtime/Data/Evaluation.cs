using System.Diagnostics;

namespace VitSparse.Runtime.Data;

/// <summary>Accuracy of a model on labelled images.</summary>
public sealed record EvalResult(int Images, double Top1, double Top5, double ImagesPerSecond, int[,] Confusion, int[] Predictions);

/// <summary>Runs a model over a labelled set: top-1/top-5 accuracy, throughput and the confusion matrix.</summary>
public static class Evaluation
{
    /// <summary>One inference of a model of any family: images [batch, C, H, W] to logits [batch, classes].</summary>
    public delegate void RunBatch(ReadOnlySpan<float> images, int batch, Span<float> logits);

    /// <summary>Runs every image through the session in batches; progress(done, total) after each batch.</summary>
    public static EvalResult Run(InferenceSession session, ILabelledImages data, int batch, Action<int, int>? progress = null) =>
        Run(session.Config, session.Run, data, batch, progress);

    /// <summary>Runs every image through a Swin session in batches; progress(done, total) after each batch.</summary>
    public static EvalResult Run(SwinSession session, ILabelledImages data, int batch, Action<int, int>? progress = null) =>
        Run(session.Config, session.Run, data, batch, progress);

    /// <summary>Runs every image through <paramref name="run"/> (a model with config <paramref name="c"/>) in batches.</summary>
    public static EvalResult Run(Models.IImageModelConfig c, RunBatch run, ILabelledImages data, int batch, Action<int, int>? progress = null)
    {
        if (batch < 1) throw new InputException("--batch", $"must be at least 1, got {batch}");
        int k = c.NumClasses;
        var images = new float[(long)batch * c.ImageElements];
        var labels = new int[batch];
        var logits = new float[batch * k];
        var confusion = new int[k, k];
        var predictions = new int[data.Count];
        int done = 0, top1 = 0, top5 = 0;
        long start = Stopwatch.GetTimestamp();
        int n;
        while ((n = data.Next(batch, images, labels)) > 0)
        {
            run(images.AsSpan(0, n * c.ImageElements), n, logits.AsSpan(0, n * k));
            for (int i = 0; i < n; i++)
            {
                var row = logits.AsSpan(i * k, k);
                int best = 0, rank = 0;
                for (int j = 1; j < k; j++) if (row[j] > row[best]) best = j;
                float truth = row[labels[i]];
                for (int j = 0; j < k; j++) if (row[j] > truth || (row[j] == truth && j < labels[i])) rank++;
                top1 += best == labels[i] ? 1 : 0;
                top5 += rank < 5 ? 1 : 0;
                confusion[labels[i], best]++;
                predictions[done + i] = best;
            }
            done += n;
            progress?.Invoke(done, data.Count);
        }
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return new EvalResult(done, done == 0 ? 0 : (double)top1 / done, done == 0 ? 0 : (double)top5 / done, done / Math.Max(seconds, 1e-9), confusion, predictions);
    }
}
