namespace VitSparse.Runtime.Energy;

/// <summary>What went wrong with a sensor, so a probe can tell "absent" and "not allowed" apart from "broken".</summary>
public enum SensorFault { NotFound, PermissionDenied, Malformed, Failed }

/// <summary>
/// A power or energy sensor that could not be read or gave a value we cannot trust: names the file, the
/// library call or the tegrastats line. Never replaced by a silent zero.
/// </summary>
public sealed class SensorException(string source, string problem, SensorFault fault, Exception? inner = null)
    : VitSparseException($"{source}: {problem}", inner)
{
    public string Sensor { get; } = source;
    public SensorFault Fault { get; } = fault;
}
