using System.CommandLine;
using System.Numerics;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;

namespace VitSparse.Cli;

/// <summary>Argument checks every command runs before it loads anything: one <see cref="VitSparseException"/> naming the option.</summary>
static class Check
{
    /// <summary>The option's value, refused when below <paramref name="min"/>.</summary>
    public static T AtLeast<T>(ParseResult pr, Option<T> option, T min) where T : INumber<T>
    {
        T v = pr.GetValue(option)!;
        if (v < min) throw new InputException(option.Name, $"must be at least {min}, got {v}");
        return v;
    }

    /// <summary>An existing file (not a directory) given by <paramref name="option"/>.</summary>
    public static string File(string option, string path)
    {
        if (Directory.Exists(path)) throw new InputException(option, $"{path} is a directory, not a file");
        if (!System.IO.File.Exists(path)) throw new InputException(option, $"{path}: file not found");
        return path;
    }

    /// <summary>An existing file or directory given by <paramref name="option"/>.</summary>
    public static string FileOrDirectory(string option, string path)
    {
        if (!System.IO.File.Exists(path) && !Directory.Exists(path)) throw new InputException(option, $"{path}: no such file or directory");
        return path;
    }

    /// <summary>An existing directory given by <paramref name="option"/>.</summary>
    public static string Folder(string option, string path)
    {
        if (System.IO.File.Exists(path)) throw new InputException(option, $"{path} is a file, not a directory");
        if (!Directory.Exists(path)) throw new InputException(option, $"{path}: directory not found");
        return path;
    }

    /// <summary>An output path that can be written now (its directory exists and is writable); names the option too.</summary>
    public static string Output(string option, string path)
    {
        try { AtomicFile.CheckWritable(path); }
        catch (OutputException e) { throw new InputException(option, e.Message); }
        return path;
    }

    /// <summary>Options that go together: <paramref name="option"/> only makes sense when <paramref name="with"/> is given.</summary>
    public static void OnlyWith(bool given, string option, bool withGiven, string with)
    {
        if (given && !withGiven) throw new InputException(option, $"only applies with {with}");
    }

    /// <summary>The calibration source of prune and fidelity: 'seeded', a .npy, an IDX file or a folder of images.</summary>
    public static string? Calibration(string? source) => source is null or "seeded" ? source : FileOrDirectory("--calib", source);
}
