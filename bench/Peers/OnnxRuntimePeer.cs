using Microsoft.ML.OnnxRuntime;

namespace VitSparse.Bench.Peers;

/// <summary>
/// ONNX Runtime through its official C# API (NuGet Microsoft.ML.OnnxRuntime, native libonnxruntime for
/// linux-x64 and linux-arm64 inside). Input and output are bound once to bench's own arrays, so a timed run is
/// one <c>Run</c> call with no copies. Benchmark peer only.
/// </summary>
public sealed class OnnxRuntimePeer : IDisposable
{
    readonly InferenceSession _session;
    readonly RunOptions _run = new();
    readonly OrtValue _input, _output;
    readonly OrtValue[] _inputs, _outputs;
    static readonly string[] InputNames = ["images"], OutputNames = ["logits"];

    /// <summary>The ONNX Runtime version of the native library loaded, e.g. "1.31.1".</summary>
    public static string Version => OrtEnv.Instance().GetVersionString();

    /// <summary>
    /// A session on <paramref name="modelPath"/> with <paramref name="threads"/> intra-op threads and every graph
    /// optimisation, reading <paramref name="images"/> ([batch, C, H, W]) and writing <paramref name="logits"/> ([batch, classes]).
    /// </summary>
    public OnnxRuntimePeer(string modelPath, int threads, float[] images, long[] imageShape, float[] logits, long[] logitShape)
    {
        using var options = new SessionOptions { IntraOpNumThreads = threads, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        _session = new InferenceSession(modelPath, options);
        _input = OrtValue.CreateTensorValueFromMemory(images, imageShape);
        _output = OrtValue.CreateTensorValueFromMemory(logits, logitShape);
        (_inputs, _outputs) = ([_input], [_output]);
    }

    /// <summary>One inference: the logits array given to the constructor receives the result.</summary>
    public void Run() => _session.Run(_run, InputNames, _inputs, OutputNames, _outputs);

    public void Dispose()
    {
        _output.Dispose();
        _input.Dispose();
        _run.Dispose();
        _session.Dispose();
    }
}
