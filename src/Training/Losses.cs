using VitSparse.Runtime;

namespace VitSparse.Training;

public enum LossKind
{
    /// <summary>Cross-entropy with label smoothing against class labels.</summary>
    CrossEntropy,
    /// <summary>Soft distillation: T²·KL(softmax(teacher/T) ‖ softmax(logits/T)), batch mean.</summary>
    Distillation,
    /// <summary>Mean over batch and classes of (logits − teacher)².</summary>
    TeacherMse,
    /// <summary>Mean over batch and classes of logits² (LPViT's label-free loss).</summary>
    SquaredLogits,
}

/// <summary>A loss on a [batch, classes] logits matrix, with its settings.</summary>
public sealed record LossSpec(LossKind Kind, double LabelSmoothing = 0, double Temperature = 1)
{
    public bool NeedsLabels => Kind == LossKind.CrossEntropy;
    public bool NeedsTeacher => Kind is LossKind.Distillation or LossKind.TeacherMse;

    /// <summary>ce, kl, mse or sq (the CLI's --loss names).</summary>
    public static LossKind Parse(string name, string argument) => name switch
    {
        "ce" => LossKind.CrossEntropy,
        "kl" => LossKind.Distillation,
        "mse" => LossKind.TeacherMse,
        "sq" => LossKind.SquaredLogits,
        _ => throw new InputException(argument, $"'{name}' is not one of ce, kl, mse, sq"),
    };

    /// <summary>
    /// The loss (batch mean) of logits, and dL/dlogits into <paramref name="dLogits"/>. Computed in double:
    /// it is a few thousand values and sets the scale of every gradient after it.
    /// </summary>
    public double Evaluate(ReadOnlySpan<float> logits, int batch, int classes, ReadOnlySpan<int> labels, ReadOnlySpan<float> teacher, Span<float> dLogits)
    {
        if (logits.Length != batch * classes || dLogits.Length != logits.Length) throw new InputException("logits", $"{logits.Length} values for {batch}×{classes}");
        if (NeedsLabels && labels.Length != batch) throw new InputException("labels", $"{labels.Length} labels for a batch of {batch}");
        if (NeedsTeacher && teacher.Length != logits.Length) throw new InputException("teacher", $"{teacher.Length} teacher logits for {batch}×{classes}");
        Span<double> p = classes <= 1024 ? stackalloc double[classes] : new double[classes];
        Span<double> q = classes <= 1024 ? stackalloc double[classes] : new double[classes];
        double total = 0;
        for (int b = 0; b < batch; b++)
        {
            var z = logits.Slice(b * classes, classes);
            var dz = dLogits.Slice(b * classes, classes);
            switch (Kind)
            {
                case LossKind.CrossEntropy:
                {
                    int y = labels[b];
                    if (y < 0 || y >= classes) throw new InputException("labels", $"label {y} of image {b} is outside [0, {classes})");
                    double logSum = LogSoftmax(z, 1, p);
                    for (int c = 0; c < classes; c++)
                    {
                        double target = (c == y ? 1 - LabelSmoothing : 0) + LabelSmoothing / classes;
                        total -= target * (z[c] - logSum);
                        dz[c] = (float)((p[c] - target) / batch);
                    }
                    break;
                }
                case LossKind.Distillation:
                {
                    double t = Temperature;
                    double logSumS = LogSoftmax(z, t, p), logSumT = LogSoftmax(teacher.Slice(b * classes, classes), t, q);
                    for (int c = 0; c < classes; c++)
                    {
                        double logQ = teacher[b * classes + c] / t - logSumT, logP = z[c] / t - logSumS;
                        total += t * t * q[c] * (logQ - logP);
                        dz[c] = (float)(t * (p[c] - q[c]) / batch);
                    }
                    break;
                }
                case LossKind.TeacherMse:
                    for (int c = 0; c < classes; c++)
                    {
                        double diff = z[c] - (double)teacher[b * classes + c];
                        total += diff * diff / classes;
                        dz[c] = (float)(2 * diff / ((double)batch * classes));
                    }
                    break;
                case LossKind.SquaredLogits:
                    for (int c = 0; c < classes; c++)
                    {
                        total += (double)z[c] * z[c] / classes;
                        dz[c] = (float)(2.0 * z[c] / ((double)batch * classes));
                    }
                    break;
            }
        }
        return total / batch;
    }

    /// <summary>softmax(z/t) into p; returns log Σ exp(z/t).</summary>
    static double LogSoftmax(ReadOnlySpan<float> z, double t, Span<double> p)
    {
        double max = double.NegativeInfinity;
        foreach (float v in z) max = Math.Max(max, v / t);
        double sum = 0;
        for (int c = 0; c < z.Length; c++) { p[c] = Math.Exp(z[c] / t - max); sum += p[c]; }
        for (int c = 0; c < z.Length; c++) p[c] /= sum;
        return max + Math.Log(sum);
    }
}
