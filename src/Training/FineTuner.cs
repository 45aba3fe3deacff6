using System.Diagnostics;
using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;

namespace VitSparse.Training;

/// <summary>What one epoch did: mean loss and training accuracy over its images, and its speed.</summary>
public sealed record EpochResult(int Epoch, long Steps, int Images, double Loss, double Accuracy, double ImagesPerSecond, double LastLr);

/// <summary>Progress inside an epoch, after each step.</summary>
public readonly record struct StepProgress(int Epoch, int Images, int TotalImages, double Loss, double Accuracy, double ImagesPerSecond);

/// <summary>
/// Fine-tuning of a (pruned) DeiT or Swin held in a <see cref="ParameterSet"/> (the family's <see cref="IBackprop"/>): each step runs the forward and backward
/// pass on a batch, the loss (cross-entropy with label smoothing, plus soft distillation to a teacher's logits
/// on the same images), and one AdamW step at the scheduled learning rate. Pruned structure is kept: the
/// ragged widths are the parameter shapes, and masked weights get zero gradients (<see cref="WeightMask"/>).
/// The order of images is a seeded shuffle per epoch, flips a seeded coin per image and epoch, so a run
/// resumed at an epoch boundary continues exactly as an uninterrupted one, for any thread count. Buffers are
/// sized once; steps allocate nothing.
/// </summary>
public sealed class FineTuner
{
    readonly ParameterSet _p;
    readonly FineTuneSettings _s;
    readonly LabelledArrays _train;
    readonly Teacher? _teacher;
    readonly IBackprop _bp;
    readonly LossSpec _ce, _kd;
    readonly float[] _images, _logits, _teacherLogits, _dLogits, _dDistill;
    readonly int[] _labels, _order;
    readonly int _k, _elements;

    /// <summary>The optimizer (its moments and step count go into checkpoints).</summary>
    public AdamW Optimizer { get; }
    /// <summary>The moving average of the weights when <see cref="FineTuneSettings.EmaDecay"/> &gt; 0, else null.</summary>
    public ParameterSet? Ema { get; }
    /// <summary>Epochs completed.</summary>
    public int EpochsDone { get; private set; }
    public int StepsPerEpoch { get; }
    public long TotalSteps => (long)StepsPerEpoch * _s.Epochs;

    /// <summary>The weights to evaluate and save: the moving average when there is one.</summary>
    public ParameterSet Result => Ema ?? _p;

    /// <summary>A model whose logits soft distillation follows: its config and how it runs a batch (either family).</summary>
    public sealed record Teacher(IImageModelConfig Config, TeacherRun Run);

    /// <summary>Runs [batch, C, H, W] images to [batch, classes] logits.</summary>
    public delegate void TeacherRun(ReadOnlySpan<float> images, int batch, Span<float> logits);

    public FineTuner(ParameterSet parameters, FineTuneSettings settings, LabelledArrays train, InferenceSession? teacher, ThreadTeam team)
        : this(parameters, settings, train, team, teacher == null ? null : new Teacher(teacher.Config, teacher.Run)) { }

    /// <summary>A run distilling from <paramref name="teacher"/> (a model of either family), or without one when null.</summary>
    public FineTuner(ParameterSet parameters, FineTuneSettings settings, LabelledArrays train, ThreadTeam team, Teacher? teacher)
    {
        _s = settings.Validate();
        _p = parameters;
        var c = parameters.Model;
        if (settings.Distill && teacher == null) throw new InputException("--teacher", "soft distillation needs a teacher model");
        if (teacher != null)
        {
            var tc = teacher.Config;
            if (tc.NumClasses != c.NumClasses) throw new InputException("--teacher", $"the teacher has {tc.NumClasses} classes, the model has {c.NumClasses}");
            if (tc.ImageSize != c.ImageSize || tc.InChannels != c.InChannels)
                throw new InputException("--teacher", $"the teacher takes {tc.InChannels}×{tc.ImageSize}×{tc.ImageSize} images, the model takes {c.InChannels}×{c.ImageSize}×{c.ImageSize}");
        }
        _train = train;
        _teacher = settings.Distill ? teacher : null;
        _k = c.NumClasses;
        _elements = c.ImageElements;
        int batch = Math.Min(settings.Batch, train.Count);
        _bp = IBackprop.For(parameters, batch, team);
        _ce = new LossSpec(LossKind.CrossEntropy, settings.LabelSmoothing);
        _kd = new LossSpec(LossKind.Distillation, 0, settings.Temperature);
        _images = new float[(long)batch * _elements];
        _labels = new int[batch];
        _logits = new float[batch * _k];
        _teacherLogits = new float[batch * _k];
        _dLogits = new float[batch * _k];
        _dDistill = new float[batch * _k];
        _order = new int[train.Count];
        StepsPerEpoch = settings.StepsPerEpoch(train.Count);
        Optimizer = new AdamW(parameters, new AdamWSettings(WeightDecay: settings.WeightDecay, ClipNorm: settings.ClipNorm));
        if (settings.EmaDecay > 0)
        {
            Ema = ParameterSet.ZerosLike(parameters);
            foreach (var name in parameters.Names) parameters[name].CopyTo(Ema[name], 0);
        }
    }

    /// <summary>Continues from a checkpoint's state (epochs done, optimizer moments and steps, moving average).</summary>
    public void Restore(int epochsDone)
    {
        if (epochsDone < 0 || epochsDone > _s.Epochs) throw new InputException("--resume", $"the checkpoint has {epochsDone} epochs done, this run has {_s.Epochs}");
        EpochsDone = epochsDone;
    }

    /// <summary>
    /// Runs the next epoch. Stops early, returning null, when <paramref name="cancelled"/> says so between steps
    /// (the parameters are then mid-epoch; the caller keeps its last checkpoint). A NaN/Inf loss or gradient
    /// throws a <see cref="TrainingDivergedException"/> naming the step and batch, before the parameters change.
    /// </summary>
    public EpochResult? RunEpoch(Func<bool>? cancelled = null, Action<StepProgress>? progress = null)
    {
        int epoch = EpochsDone;
        if (epoch >= _s.Epochs) throw new InvalidOperationException("all epochs are done");
        Shuffle(epoch);
        int n = _train.Count, batchCap = _labels.Length, done = 0, correct = 0;
        double lossSum = 0, lr = 0;
        long start = Stopwatch.GetTimestamp();
        for (int step = 0; step < StepsPerEpoch; step++)
        {
            if (cancelled?.Invoke() == true) return null;
            int b = Math.Min(batchCap, n - done);
            long globalStep = (long)epoch * StepsPerEpoch + step;
            FillBatch(epoch, done, b);
            var images = _images.AsSpan(0, b * _elements);
            var logits = _logits.AsSpan(0, b * _k);
            _bp.Forward(images, b, logits);
            double loss = Loss(b);
            if (!double.IsFinite(loss))
                throw new TrainingDivergedException(epoch + 1, step + 1, globalStep + 1, $"the loss is {loss}");
            _bp.Backward(_dLogits.AsSpan(0, b * _k));
            lr = _s.LearningRate(globalStep, TotalSteps, StepsPerEpoch);
            try { Optimizer.Step(_bp.Gradients, lr); }
            catch (InputException) { throw new TrainingDivergedException(epoch + 1, step + 1, globalStep + 1, "a gradient is NaN or infinite"); }
            if (Ema != null) UpdateEma();
            lossSum += loss * b;
            correct += Correct(b);
            done += b;
            if (progress != null)
            {
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                progress(new StepProgress(epoch + 1, done, n, lossSum / done, (double)correct / done, done / Math.Max(seconds, 1e-9)));
            }
        }
        EpochsDone = epoch + 1;
        double total = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return new EpochResult(epoch + 1, (long)EpochsDone * StepsPerEpoch, n, lossSum / n, (double)correct / n, n / Math.Max(total, 1e-9), lr);
    }

    /// <summary>The loss of the current batch and dL/dlogits in _dLogits: (1 − α)·CE + α·KD with a teacher, else CE.</summary>
    double Loss(int b)
    {
        var logits = _logits.AsSpan(0, b * _k);
        var dLogits = _dLogits.AsSpan(0, b * _k);
        var labels = _labels.AsSpan(0, b);
        double ce = _ce.Evaluate(logits, b, _k, labels, default, dLogits);
        if (_teacher == null) return ce;
        var teacher = _teacherLogits.AsSpan(0, b * _k);
        _teacher.Run(_images.AsSpan(0, b * _elements), b, teacher);
        var dKd = _dDistill.AsSpan(0, b * _k);
        double kd = _kd.Evaluate(logits, b, _k, default, teacher, dKd);
        float a = (float)_s.DistillAlpha;
        for (int i = 0; i < dLogits.Length; i++) dLogits[i] = (1 - a) * dLogits[i] + a * dKd[i];
        return (1 - _s.DistillAlpha) * ce + _s.DistillAlpha * kd;
    }

    int Correct(int b)
    {
        int correct = 0;
        for (int i = 0; i < b; i++)
        {
            var row = _logits.AsSpan(i * _k, _k);
            int best = 0;
            for (int j = 1; j < _k; j++) if (row[j] > row[best]) best = j;
            if (best == _labels[i]) correct++;
        }
        return correct;
    }

    void UpdateEma()
    {
        float d = (float)_s.EmaDecay;
        var names = _p.Names;
        for (int t = 0; t < names.Count; t++)   // indexed: a foreach over the interface would allocate each step
        {
            string name = names[t];
            float[] p = _p[name], e = Ema![name];
            for (int i = 0; i < p.Length; i++) e[i] = d * e[i] + (1 - d) * p[i];
        }
    }

    /// <summary>The epoch's order of images: Fisher–Yates with a seeded generator, the same for any thread count and after a resume.</summary>
    void Shuffle(int epoch)
    {
        for (int i = 0; i < _order.Length; i++) _order[i] = i;
        ulong state = Mix(_s.Seed ^ 0x5EED0000UL ^ (ulong)epoch * 0x9E3779B97F4A7C15UL);
        for (int i = _order.Length - 1; i > 0; i--)
        {
            state = Mix(state);
            int j = (int)(state % (ulong)(i + 1));
            (_order[i], _order[j]) = (_order[j], _order[i]);
        }
    }

    void FillBatch(int epoch, int first, int b)
    {
        var all = _train.Images;
        var labels = _train.Labels;
        var c = _p.Model;
        int side = c.ImageSize, planes = c.InChannels;
        for (int i = 0; i < b; i++)
        {
            int src = _order[first + i];
            var from = all.Slice(src * _elements, _elements);
            var to = _images.AsSpan(i * _elements, _elements);
            _labels[i] = labels[src];
            bool flip = _s.Flip && (Mix(_s.Seed ^ ((ulong)epoch << 40) ^ (ulong)src) & 1) == 1;
            if (!flip) { from.CopyTo(to); continue; }
            for (int p = 0; p < planes; p++)
                for (int y = 0; y < side; y++)
                {
                    int row = (p * side + y) * side;
                    for (int x = 0; x < side; x++) to[row + x] = from[row + side - 1 - x];
                }
        }
    }

    /// <summary>splitmix64's finaliser.</summary>
    static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

/// <summary>Training produced a NaN/Inf loss or gradient; names where, so the run can be retried with a lower learning rate.</summary>
public sealed class TrainingDivergedException(int epoch, int batch, long step, string what)
    : VitSparseException($"{what} at step {step} (epoch {epoch}, batch {batch}); stopped before changing the weights. Try a lower --lr or more --warmup")
{
    public int Epoch { get; } = epoch;
    public int Batch { get; } = batch;
    public long Step { get; } = step;
}
