using VitSparse.Runtime.Models;

namespace VitSparse.Runtime;

/// <summary>NaN/Inf in inputs, handled like NaN/Inf in weights (<see cref="LoadOptions.NonFinite"/>).</summary>
public static class NonFinite
{
    /// <summary>
    /// Counts the NaN/Inf values of <paramref name="data"/> (an input read from <paramref name="what"/>): with
    /// <see cref="NonFinitePolicy.Refuse"/> any is an <see cref="InputException"/> on <paramref name="argument"/>,
    /// with <see cref="NonFinitePolicy.Warn"/> it is reported through <paramref name="warn"/>, with Allow ignored.
    /// </summary>
    public static void Check(ReadOnlySpan<float> data, string argument, string what, NonFinitePolicy policy, Action<string>? warn = null)
    {
        if (policy == NonFinitePolicy.Allow) return;
        var (bad, first) = Count(data);
        if (bad == 0) return;
        string msg = $"{what} has {bad} NaN/Inf values (first at flat index {first})";
        if (policy == NonFinitePolicy.Refuse)
            throw new InputException(argument, msg + "; refusing to run on it (allow with --nonfinite warn or allow)");
        warn?.Invoke($"warning: {argument}: {msg}");
    }

    /// <summary>How many values are NaN or ±Inf, and the flat index of the first (−1 when none).</summary>
    internal static (long Bad, long First) Count(ReadOnlySpan<float> data)
    {
        long bad = 0, first = -1;
        for (int i = 0; i < data.Length; i++)
            if (!float.IsFinite(data[i])) { bad++; if (first < 0) first = i; }
        return (bad, first);
    }
}
