using VitSparse.Runtime;

namespace VitSparse.Training;

/// <summary>AdamW's settings (PyTorch's defaults except weight decay, which follows DeiT).</summary>
public sealed record AdamWSettings(double Beta1 = 0.9, double Beta2 = 0.999, double Eps = 1e-8, double WeightDecay = 0.05, double ClipNorm = 0)
{
    public AdamWSettings Validate()
    {
        if (!(Beta1 >= 0 && Beta1 < 1)) throw new InputException("beta1", $"must be in [0, 1), got {Beta1}");
        if (!(Beta2 >= 0 && Beta2 < 1)) throw new InputException("beta2", $"must be in [0, 1), got {Beta2}");
        if (!(Eps > 0)) throw new InputException("eps", $"must be positive, got {Eps}");
        if (!(WeightDecay >= 0 && double.IsFinite(WeightDecay))) throw new InputException("--wd", $"must be a non-negative number, got {WeightDecay}");
        if (!(ClipNorm >= 0 && double.IsFinite(ClipNorm))) throw new InputException("--clip", $"must be a non-negative number (0: no clipping), got {ClipNorm}");
        return this;
    }
}

/// <summary>
/// AdamW as torch.optim.AdamW computes it (decoupled weight decay, bias-corrected moments), with optional
/// clipping of the global gradient norm first (torch.nn.utils.clip_grad_norm_). Weight decay applies to
/// linear and patch-embedding weights only, not to norms, biases, tokens or the position embedding (the DeiT
/// recipe). Pruned structure is untouched: the optimizer works on whatever tensors the ragged model has.
/// </summary>
public sealed class AdamW
{
    readonly ParameterSet _parameters, _m, _v;
    readonly AdamWSettings _s;

    /// <summary>Where a step's time goes, when set (`bench train --breakdown`): clipping and the update.</summary>
    public StepProfile? Profile { get; set; }

    /// <summary>Steps taken so far.</summary>
    public int Steps { get; private set; }
    /// <summary>First moments (running mean of gradients), per parameter; checkpoints keep them.</summary>
    public ParameterSet FirstMoments => _m;
    /// <summary>Second moments (running mean of squared gradients), per parameter; checkpoints keep them.</summary>
    public ParameterSet SecondMoments => _v;

    /// <summary>Sets the step count after a checkpoint's moments were copied into <see cref="FirstMoments"/> and <see cref="SecondMoments"/>.</summary>
    public void Restore(int steps)
    {
        if (steps < 0) throw new InputException("--resume", $"a checkpoint cannot have {steps} optimizer steps");
        Steps = steps;
    }

    public AdamW(ParameterSet parameters, AdamWSettings settings)
    {
        _parameters = parameters;
        _s = settings.Validate();
        _m = ParameterSet.ZerosLike(parameters);
        _v = ParameterSet.ZerosLike(parameters);
    }

    /// <summary>Whether a tensor gets weight decay: linear and patch-embedding weights, not norms, biases, tokens or pos_embed.</summary>
    public static bool Decays(string name) => name.EndsWith(".weight", StringComparison.Ordinal) && !name.Contains("norm", StringComparison.Ordinal);

    /// <summary>
    /// One step with learning rate <paramref name="lr"/>; clips <paramref name="gradients"/> in place when
    /// ClipNorm &gt; 0. Returns the gradient norm before clipping. A NaN/Inf gradient throws before anything changes.
    /// </summary>
    public double Step(ParameterSet gradients, double lr)
    {
        if (!(lr > 0 && double.IsFinite(lr))) throw new InputException("--lr", $"must be a positive number, got {lr}");
        long t0 = Profile is null ? 0 : StepProfile.Now();
        double sumSquares = 0;
        var names = gradients.Names;
        for (int t = 0; t < names.Count; t++)   // indexed: a foreach over the interface would allocate each step
        {
            string name = names[t];
            double s = 0;
            foreach (float g in gradients[name]) s += (double)g * g;
            sumSquares += s;
        }
        double norm = Math.Sqrt(sumSquares);
        if (!double.IsFinite(norm)) throw new InputException("gradients", $"a gradient is NaN or infinite at step {Steps + 1}; parameters left unchanged");
        float clip = _s.ClipNorm > 0 && norm > _s.ClipNorm ? (float)(_s.ClipNorm / (norm + 1e-6)) : 1f;

        if (Profile != null) t0 = Profile.Add(StepPhase.Clip, t0);
        Steps++;
        float b1 = (float)_s.Beta1, b2 = (float)_s.Beta2, eps = (float)_s.Eps;
        float stepSize = (float)(lr / (1 - Math.Pow(_s.Beta1, Steps)));
        float correction2Sqrt = (float)Math.Sqrt(1 - Math.Pow(_s.Beta2, Steps));
        for (int t = 0; t < names.Count; t++)
        {
            string name = names[t];
            float[] p = _parameters[name], g = gradients[name], m = _m[name], v = _v[name];
            float decay = Decays(name) ? (float)(1 - lr * _s.WeightDecay) : 1f;
            for (int i = 0; i < p.Length; i++)
            {
                float gi = g[i] * clip;
                if (clip != 1f) g[i] = gi;
                m[i] += (1 - b1) * (gi - m[i]);
                v[i] = b2 * v[i] + (1 - b2) * gi * gi;
                p[i] = p[i] * decay - stepSize * m[i] / (MathF.Sqrt(v[i]) / correction2Sqrt + eps);
            }
        }
        Profile?.Add(StepPhase.AdamW, t0);
        return norm;
    }
}
