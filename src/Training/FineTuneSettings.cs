using VitSparse.Runtime;

namespace VitSparse.Training;

/// <summary>
/// How `finetune` trains: epochs and batch, AdamW's peak learning rate with a linear warm-up then a cosine
/// decay to <see cref="MinLr"/>, weight decay, global-norm clipping, label smoothing, soft distillation
/// (<see cref="DistillAlpha"/>·τ²·KL to the teacher + (1 − α)·cross-entropy, DeiT's soft variant), an
/// exponential moving average of the weights, random horizontal flips, and the seed of the shuffle and flips.
/// </summary>
public sealed record FineTuneSettings(int Epochs, int Batch = 128, double Lr = 5e-4, double MinLr = 1e-6, double WarmupEpochs = 0.1,
    double WeightDecay = 0.05, double ClipNorm = 1.0, double LabelSmoothing = 0.1, bool Distill = false, double DistillAlpha = 0.5,
    double Temperature = 1.0, double EmaDecay = 0, bool Flip = false, ulong Seed = 0)
{
    /// <summary>Refuses settings training cannot run with, naming the CLI option.</summary>
    public FineTuneSettings Validate()
    {
        if (Epochs < 1) throw new InputException("--epochs", $"must be at least 1, got {Epochs}");
        if (Batch < 1) throw new InputException("--batch", $"must be at least 1, got {Batch}");
        if (!(Lr > 0 && double.IsFinite(Lr))) throw new InputException("--lr", $"must be a positive number, got {Lr}");
        if (!(MinLr >= 0 && MinLr <= Lr)) throw new InputException("--min-lr", $"must be in [0, --lr], got {MinLr}");
        if (!(WarmupEpochs >= 0 && WarmupEpochs <= Epochs)) throw new InputException("--warmup", $"must be between 0 and --epochs ({Epochs}) epochs, got {WarmupEpochs}");
        if (!(LabelSmoothing >= 0 && LabelSmoothing < 1)) throw new InputException("--label-smoothing", $"must be in [0, 1), got {LabelSmoothing}");
        if (!(DistillAlpha >= 0 && DistillAlpha <= 1)) throw new InputException("--distill-alpha", $"must be in [0, 1], got {DistillAlpha}");
        if (!(Temperature > 0 && double.IsFinite(Temperature))) throw new InputException("--temperature", $"must be a positive number, got {Temperature}");
        if (!(EmaDecay >= 0 && EmaDecay < 1)) throw new InputException("--ema-decay", $"must be in [0, 1), got {EmaDecay}");
        new AdamWSettings(WeightDecay: WeightDecay, ClipNorm: ClipNorm).Validate();
        return this;
    }

    /// <summary>Optimizer steps in one epoch of <paramref name="images"/> (the last batch may be smaller).</summary>
    public int StepsPerEpoch(int images) => (images + Batch - 1) / Batch;

    /// <summary>
    /// The learning rate of step <paramref name="step"/> (0-based) of <paramref name="totalSteps"/>: linear from
    /// Lr/warm-up steps up to Lr over the warm-up, then cosine from Lr down to MinLr at the last step.
    /// </summary>
    public double LearningRate(long step, long totalSteps, int stepsPerEpoch)
    {
        long warmup = (long)Math.Round(WarmupEpochs * stepsPerEpoch);
        if (step < warmup) return Lr * (step + 1) / warmup;
        long decaySteps = Math.Max(1, totalSteps - warmup);
        double progress = Math.Min(1.0, (double)(step - warmup) / decaySteps);
        return MinLr + 0.5 * (Lr - MinLr) * (1 + Math.Cos(Math.PI * progress));
    }
}
