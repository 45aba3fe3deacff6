namespace VitSparse.Runtime.Text;

/// <summary>"Did you mean …?" for a misspelt name: the closest candidate by edit distance, when it is close.</summary>
public static class DidYouMean
{
    /// <summary>
    /// The candidate nearest to <paramref name="given"/> (case-insensitive Levenshtein distance at most a third of its
    /// length, at least 1, or a candidate that starts with it), or null when none is close.
    /// </summary>
    public static string? Closest(string given, IEnumerable<string> candidates)
    {
        string g = given.ToLowerInvariant();
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (var c in candidates)
        {
            string l = c.ToLowerInvariant();
            int d = l.StartsWith(g, StringComparison.Ordinal) && g.Length >= 3 ? 1 : Distance(g, l);
            if (d < bestDistance) (best, bestDistance) = (c, d);
        }
        return best != null && bestDistance <= Math.Max(1, g.Length / 3) ? best : null;
    }

    /// <summary>" (did you mean X?)" or "".</summary>
    public static string Hint(string given, IEnumerable<string> candidates) =>
        Closest(given, candidates) is { } c ? $" (did you mean {c}?)" : "";

    static int Distance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
