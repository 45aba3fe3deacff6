using System.Globalization;

namespace VitSparse.Runtime.Energy;

/// <summary>
/// The sysfs tree meters read, rooted at a directory (/ normally; a fixture tree in tests, a host's /sys
/// mounted into a container, or a copy from another device). Every failure is a <see cref="SensorException"/>
/// naming the file.
/// </summary>
public class Sysfs(string root)
{
    /// <summary>The directory that stands for / (absolute).</summary>
    public string Root { get; } = Path.GetFullPath(root);

    /// <summary>The file under the root for an absolute path such as "sys/class/powercap".</summary>
    public string PathOf(string relative) => Path.Combine(Root, relative.TrimStart('/'));

    /// <summary>Reads a whole file; overridable so tests can deny a read even when they run as root.</summary>
    protected virtual string ReadAllText(string path) => File.ReadAllText(path);

    /// <summary>A whole file, trimmed; missing, forbidden or unreadable files are <see cref="SensorException"/>s naming it.</summary>
    public string ReadText(string path)
    {
        try { return ReadAllText(path).Trim(); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        { throw new SensorException(path, "not found", SensorFault.NotFound, e); }
        catch (UnauthorizedAccessException e)
        { throw new SensorException(path, "permission denied", SensorFault.PermissionDenied, e); }
        catch (IOException e)
        { throw new SensorException(path, $"cannot be read: {e.Message}", SensorFault.Failed, e); }
    }

    /// <summary>A decimal integer file (µJ, mW, mV, mA): anything else is an error naming the file.</summary>
    public long ReadInteger(string path)
    {
        string text = ReadText(path);
        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v))
            throw new SensorException(path, $"'{Shorten(text)}' is not a number", SensorFault.Malformed);
        return v;
    }

    /// <summary>Whether the file exists.</summary>
    public bool Exists(string path) => File.Exists(path);

    /// <summary>
    /// Directories matching a relative pattern whose segments may hold * and ? (the hwmon index changes between
    /// boots, so it is always globbed), in ordinal order.
    /// </summary>
    public IReadOnlyList<string> Glob(string pattern)
    {
        var dirs = new List<string> { Root };
        foreach (var segment in pattern.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            var next = new List<string>();
            foreach (var d in dirs)
            {
                if (!Directory.Exists(d)) continue;
                if (segment.IndexOfAny(['*', '?']) < 0) { next.Add(Path.Combine(d, segment)); continue; }
                try { next.AddRange(Directory.EnumerateDirectories(d, segment).Order(StringComparer.Ordinal)); }
                catch (UnauthorizedAccessException) { }   // a directory we may not list holds no sensor for us
            }
            dirs = next;
        }
        return dirs.Where(Directory.Exists).ToList();
    }

    /// <summary>Files in a directory matching a pattern, in ordinal order.</summary>
    public IReadOnlyList<string> Files(string dir, string pattern)
    {
        try { return Directory.Exists(dir) ? Directory.EnumerateFiles(dir, pattern).Order(StringComparer.Ordinal).ToList() : []; }
        catch (UnauthorizedAccessException e) { throw new SensorException(dir, "permission denied (cannot list the directory)", SensorFault.PermissionDenied, e); }
    }

    static string Shorten(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
