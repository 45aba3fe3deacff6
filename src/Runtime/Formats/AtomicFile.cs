namespace VitSparse.Runtime.Formats;

/// <summary>Writes a file beside its target and renames it into place, so a failure never leaves a partial file.</summary>
public static class AtomicFile
{
    /// <summary>
    /// Writes <paramref name="path"/> through <paramref name="write"/>; on any failure the target is untouched and
    /// the error (an <see cref="OutputException"/>) names <paramref name="path"/>, never the temporary file.
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        string full = CheckWritable(path);
        string temp = TempBeside(full);
        try
        {
            try
            {
                using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
                    write(fs);
                File.Move(temp, full, overwrite: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new OutputException(path, $"cannot write: {e.Message.Replace(temp, full)}", e);
            }
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>A hidden temporary name in the target's own directory (so the final rename stays on one file system).</summary>
    public static string TempBeside(string fullPath) =>
        Path.Combine(Path.GetDirectoryName(fullPath)!, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");

    /// <summary>
    /// Checks, before any work, that <paramref name="path"/> can be written: not empty, not a directory, its
    /// directory exists and accepts a new file (probed by creating and deleting one). Returns the full path;
    /// throws an <see cref="OutputException"/> naming <paramref name="path"/> otherwise.
    /// </summary>
    public static string CheckWritable(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new OutputException("''", "an output path is empty");
        string full;
        try { full = Path.GetFullPath(path); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException) { throw new OutputException(path, $"not a valid path: {e.Message}"); }
        if (Directory.Exists(full)) throw new OutputException(path, "is a directory; give a file name");
        string dir = Path.GetDirectoryName(full)!;
        if (File.Exists(dir)) throw new OutputException(path, $"'{dir}' is a file, not a directory");
        if (!Directory.Exists(dir)) throw new OutputException(path, $"directory '{dir}' does not exist");
        string probe = TempBeside(full);
        try { new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose).Dispose(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OutputException(path, $"directory '{dir}' is not writable ({(e is UnauthorizedAccessException ? "permission denied" : "no new file can be created there")})");
        }
        return full;
    }
}
