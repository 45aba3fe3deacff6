using VitSparse.Runtime;
using VitSparse.Runtime.Formats;

namespace VitSparse.Cli;

/// <summary>
/// The output files of one command, checked before the work and written together: each is staged beside its
/// target, and only when every one is staged are they renamed into place. A failure leaves none of them.
/// </summary>
sealed class Outputs : IDisposable
{
    readonly Dictionary<string, string> _owners = new(StringComparer.Ordinal);   // full path → option
    readonly List<(string Path, string Full, string Temp)> _staged = [];

    /// <summary>Checks that <paramref name="path"/> can be written and is not another output of this command.</summary>
    public string Add(string option, string path)
    {
        Check.Output(option, path);
        string full = Path.GetFullPath(path);
        if (_owners.TryGetValue(full, out var other)) throw new InputException(option, $"{path} is also given to {other}; give each output its own file");
        _owners[full] = option;
        return path;
    }

    /// <summary>Writes one output to its staging file through <paramref name="write"/> (which gets the path to write).</summary>
    public void Stage(string path, Action<string> write)
    {
        string full = Path.GetFullPath(path);
        string temp = AtomicFile.TempBeside(full);
        _staged.Add((path, full, temp));
        try { write(temp); }
        catch (OutputException e) { throw new OutputException(path, e.Message[(e.File.Length + 2)..].Replace(temp, path), e); }
    }

    /// <summary>Renames every staged output into place.</summary>
    public void Commit()
    {
        foreach (var s in _staged)
        {
            try { File.Move(s.Temp, s.Full, overwrite: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new OutputException(s.Path, $"cannot write: {e.Message.Replace(s.Temp, s.Full)}", e); }
        }
        _staged.Clear();
    }

    /// <summary>Deletes staged files that were not committed.</summary>
    public void Dispose()
    {
        foreach (var s in _staged)
            try { File.Delete(s.Temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
