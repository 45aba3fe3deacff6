using System.Globalization;
using System.Text.RegularExpressions;

namespace VitSparse.Runtime.Energy;

/// <summary>One rail of a tegrastats line: the instant power and tegrastats' running average since it started.</summary>
public sealed record TegrastatsRail(string Name, double InstantWatts, double AverageWatts);

/// <summary>
/// Parses the power rails of a `tegrastats` line, for Jetsons where only that tool can be run. Two forms exist:
/// JetPack 4 (Nano) `POM_5V_IN 2532/2698` (instant/average mW without a unit) and JetPack 5/6 (Orin)
/// `VDD_IN 5251mW/8535mW`. Use the instant value and integrate it; the average covers tegrastats' whole lifetime.
/// A line with a rail name whose value is in neither form, or with no rail at all, is an error naming the line.
/// </summary>
public static partial class TegrastatsLine
{
    [GeneratedRegex(@"\b((?:POM|VDD|VIN)_[A-Z0-9_]+)\b")]
    private static partial Regex RailName();

    [GeneratedRegex(@"\G ?(\d{1,9})(mW)?/(\d{1,9})(mW)?(?=\s|$)")]
    private static partial Regex RailValue();

    /// <summary>The rails of one tegrastats line, Nano (<c>POM_5V_IN 2123/2123</c>) or Orin (<c>VDD_IN 4376mW/4376mW</c>) form.</summary>
    /// <param name="line">one line of tegrastats output.</param>
    /// <param name="where">names the line in errors, e.g. "tegrastats.log:12" or "tegrastats output line 3".</param>
    public static IReadOnlyList<TegrastatsRail> Parse(string line, string where)
    {
        var rails = new List<TegrastatsRail>();
        foreach (Match name in RailName().Matches(line))
        {
            var v = RailValue().Match(line, name.Index + name.Length);
            if (!v.Success || v.Groups[2].Success != v.Groups[4].Success)
                throw new SensorException(where, $"rail {name.Value} is not followed by instant/average power in either form (2532/2698 or 2532mW/2698mW): '{Shorten(line)}'", SensorFault.Malformed);
            rails.Add(new TegrastatsRail(name.Value, Milliwatts(v.Groups[1].Value) * 1e-3, Milliwatts(v.Groups[3].Value) * 1e-3));
        }
        if (rails.Count == 0)
            throw new SensorException(where, $"not a tegrastats line with power rails (POM_*, VDD_* or VIN_* followed by mW/mW): '{Shorten(line)}'", SensorFault.Malformed);
        return rails;
    }

    static double Milliwatts(string digits) => long.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);

    static string Shorten(string s) => s.Length <= 120 ? s : s[..120] + "…";
}
