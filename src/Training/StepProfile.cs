using System.Diagnostics;

namespace VitSparse.Training;

/// <summary>The phases of a training step that <see cref="StepProfile"/> times separately.</summary>
public enum StepPhase
{
    /// <summary>Patch extraction, the patch-embedding GEMM and the token/position adds.</summary>
    FwdEmbed,
    /// <summary>LayerNorm forward (both block norms and the final norm).</summary>
    FwdNorm,
    /// <summary>Linear forward GEMMs (qkv, proj, fc1, fc2, heads), with their weight transposes.</summary>
    FwdLinear,
    /// <summary>Softmax attention forward.</summary>
    FwdAttention,
    /// <summary>GELU forward.</summary>
    FwdGelu,
    /// <summary>Residual adds.</summary>
    FwdResidual,
    /// <summary>The loss and dL/dlogits.</summary>
    Loss,
    /// <summary>Input gradients of linears, dX = dY·W.</summary>
    BwdLinearInput,
    /// <summary>Weight gradients of linears, dW = dYᵀ·X.</summary>
    BwdLinearWeight,
    /// <summary>Bias gradients of linears, db = Σ_rows dY.</summary>
    BwdLinearBias,
    /// <summary>Softmax attention backward.</summary>
    BwdAttention,
    /// <summary>GELU backward.</summary>
    BwdGelu,
    /// <summary>LayerNorm input gradient.</summary>
    BwdNormInput,
    /// <summary>LayerNorm γ and β gradients.</summary>
    BwdNormParams,
    /// <summary>Embedding gradients (pos embed, tokens, patch rows) and head plumbing.</summary>
    BwdEmbed,
    /// <summary>The global gradient norm and clipping.</summary>
    Clip,
    /// <summary>The AdamW update.</summary>
    AdamW,
}

/// <summary>
/// Accumulated wall time per <see cref="StepPhase"/> over the steps it was handed to (`bench train
/// --breakdown`). Timing is per phase call on the calling thread, so a phase's time includes the team's
/// work and its waits. Null profiles cost nothing: callers check before reading the clock.
/// </summary>
public sealed class StepProfile
{
    readonly long[] _ticks = new long[Enum.GetValues<StepPhase>().Length];

    /// <summary>Steps recorded (the caller counts them with <see cref="EndStep"/>).</summary>
    public int Steps { get; private set; }

    /// <summary>A timestamp to hand to <see cref="Add"/>.</summary>
    public static long Now() => Stopwatch.GetTimestamp();

    /// <summary>Adds the time since <paramref name="start"/> to <paramref name="phase"/>; returns now, for the next phase.</summary>
    public long Add(StepPhase phase, long start)
    {
        long now = Stopwatch.GetTimestamp();
        _ticks[(int)phase] += now - start;
        return now;
    }

    /// <summary>Counts one finished step.</summary>
    public void EndStep() => Steps++;

    /// <summary>Mean milliseconds per step of a phase.</summary>
    public double MeanMs(StepPhase phase) => Steps == 0 ? 0 : _ticks[(int)phase] * 1000.0 / Stopwatch.Frequency / Steps;

    /// <summary>Forgets everything recorded (after warm-up).</summary>
    public void Reset()
    {
        Array.Clear(_ticks);
        Steps = 0;
    }
}
