namespace VitSparse.Runtime.Energy;

/// <summary>What went wrong with a sensor, so a probe can tell "absent" and "not allowed" apart from "broken".</summary>
public enum SensorFault
{
    /// <summary>The sensor or its file or library is absent.</summary>
    NotFound,
    /// <summary>It exists but this user may not read it.</summary>
    PermissionDenied,
    /// <summary>It gave a value that cannot be trusted (not a number, going backwards).</summary>
    Malformed,
    /// <summary>Reading it failed otherwise.</summary>
    Failed,
}

/// <summary>
/// A power or energy sensor that could not be read or gave a value we cannot trust: names the file, the
/// library call or the tegrastats line. Never replaced by a silent zero.
/// </summary>
public sealed class SensorException(string source, string problem, SensorFault fault, Exception? inner = null)
    : VitSparseException($"{source}: {problem}", inner)
{
    /// <summary>The file, library call or line that failed.</summary>
    public string Sensor { get; } = source;
    /// <summary>What kind of failure it was.</summary>
    public SensorFault Fault { get; } = fault;
}
