using System.Diagnostics;

namespace VitSparse.Runtime;

/// <summary>The kinds of work an inference is made of, for a time breakdown.</summary>
public enum Op
{
    /// <summary>Patch embedding (a linear over patches).</summary>
    PatchEmbed,
    /// <summary>LayerNorms.</summary>
    Norm,
    /// <summary>The fused qkv linear.</summary>
    Qkv,
    /// <summary>Ragged attention: scores, softmax, weighted V.</summary>
    Attention,
    /// <summary>The attention output projection.</summary>
    Proj,
    /// <summary>fc1 with GELU.</summary>
    Fc1Gelu,
    /// <summary>fc2.</summary>
    Fc2,
    /// <summary>Final norm of the class token and the classifier.</summary>
    Head,
}

/// <summary>Accumulated wall time per <see cref="Op"/> over the inferences of a session that has it attached.</summary>
public sealed class OpTimings
{
    readonly long[] _ticks = new long[Enum.GetValues<Op>().Length];

    /// <summary>Inferences measured.</summary>
    public int Runs { get; private set; }

    internal long Start() => Stopwatch.GetTimestamp();

    internal void Lap(Op op, ref long since)
    {
        long now = Stopwatch.GetTimestamp();
        _ticks[(int)op] += now - since;
        since = now;
    }

    internal void CountRun() => Runs++;

    /// <summary>Mean milliseconds per inference spent in <paramref name="op"/>.</summary>
    public double MeanMs(Op op) => Runs == 0 ? 0 : _ticks[(int)op] * 1000.0 / Stopwatch.Frequency / Runs;
}
