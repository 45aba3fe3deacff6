namespace VitSparse.Runtime;

/// <summary>Base of every error VitSparse reports about its inputs: files, tensors, arguments.</summary>
public class VitSparseException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A file that is not what it claims to be (safetensors, NPY): names the file.</summary>
public sealed class FileFormatException(string file, string problem, Exception? inner = null)
    : VitSparseException($"{file}: {problem}", inner)
{
    /// <summary>The file as the caller named it.</summary>
    public string File { get; } = file;
}

/// <summary>Weights that do not fit the architecture: names the tensor (and the file when known).</summary>
public sealed class ModelException(string problem, string? tensor = null) : VitSparseException(problem)
{
    /// <summary>The tensor at fault, when one is.</summary>
    public string? Tensor { get; } = tensor;
}

/// <summary>An input that does not fit the model or the call: names the argument.</summary>
public sealed class InputException(string argument, string problem) : VitSparseException($"{argument}: {problem}")
{
    /// <summary>The argument or option at fault (e.g. "--input").</summary>
    public string Argument { get; } = argument;
}

/// <summary>An output that cannot be written (missing or read-only directory, a directory in its place): names the user's path.</summary>
public sealed class OutputException(string file, string problem, Exception? inner = null)
    : VitSparseException($"{file}: {problem}", inner)
{
    /// <summary>The output path as the user gave it.</summary>
    public string File { get; } = file;
}
