namespace VitSparse.Fuzz;

/// <summary>Shrinks a failing input by deleting ever smaller chunks while it still fails with the same signature.</summary>
public static class Minimizer
{
    public static byte[] Minimize(FuzzTarget target, byte[] input, string scratch, int maxTries = 5000)
    {
        string path = Path.Combine(scratch, "minimize" + target.Extension);
        string? Signature(byte[] data)
        {
            File.WriteAllBytes(path, data);
            return Campaign.Try(target, path, scratch).Signature;
        }
        string want = Signature(input) ?? throw new ArgumentException("the input does not fail");
        int tries = 0;
        for (int chunk = Math.Max(1, input.Length / 2); chunk >= 1 && tries < maxTries; chunk /= 2)
            for (int at = input.Length - chunk; at >= 0 && tries < maxTries; at -= chunk, tries++)
            {
                byte[] smaller = [.. input.AsSpan(0, at), .. input.AsSpan(at + chunk)];
                if (Signature(smaller) == want) input = smaller;
            }
        return input;
    }
}
