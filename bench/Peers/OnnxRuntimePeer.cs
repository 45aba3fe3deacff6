using System.Runtime.InteropServices;

namespace VitSparse.Bench.Peers;

/// <summary>
/// ONNX Runtime through its C API (libonnxruntime.so.1 from the npm package onnxruntime-node; the NuGet
/// package is not available here), called through the OrtApi function table. Benchmark peer only.
/// </summary>
public sealed unsafe class OnnxRuntimePeer : IDisposable
{
    const uint ApiVersion = 20;
    // OrtApi slots (0-based, stable across versions).
    const int GetErrorMessageSlot = 2, CreateEnvSlot = 3, CreateSessionSlot = 7, RunSlot = 9, CreateSessionOptionsSlot = 10,
        SetGraphOptimizationLevelSlot = 23, SetIntraOpNumThreadsSlot = 24, CreateTensorWithDataSlot = 49, GetTensorMutableDataSlot = 51,
        CreateCpuMemoryInfoSlot = 69, ReleaseEnvSlot = 92, ReleaseStatusSlot = 93, ReleaseMemoryInfoSlot = 94, ReleaseSessionSlot = 95,
        ReleaseValueSlot = 96, ReleaseSessionOptionsSlot = 100;

    readonly nint _lib;
    readonly void** _api;
    nint _env, _options, _session, _memInfo;
    readonly int _outputCount;

    public string Version { get; }

    /// <summary>Where bench looks for the library: $VITSPARSE_ORT_LIB, then tools/peers/node_modules.</summary>
    public static string? Locate(string repoRoot)
    {
        var env = Environment.GetEnvironmentVariable("VITSPARSE_ORT_LIB");
        if (!string.IsNullOrEmpty(env)) return File.Exists(env) ? env : null;
        var path = Path.Combine(repoRoot, "tools", "peers", "node_modules", "onnxruntime-node", "bin", "napi-v6", "linux",
            RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? "arm64" : "x64", "libonnxruntime.so.1");
        return File.Exists(path) ? path : null;
    }

    public OnnxRuntimePeer(string libraryPath, string modelPath, int threads, int outputCount)
    {
        _lib = NativeLibrary.Load(libraryPath);
        var getApiBase = (delegate* unmanaged<nint*>)NativeLibrary.GetExport(_lib, "OrtGetApiBase");
        nint* apiBase = getApiBase();
        var getApi = (delegate* unmanaged<uint, void**>)apiBase[0];
        var getVersion = (delegate* unmanaged<byte*>)apiBase[1];
        Version = Marshal.PtrToStringUTF8((nint)getVersion()) ?? "?";
        _api = getApi(ApiVersion);
        if (_api == null) throw new InvalidOperationException($"ONNX Runtime {Version} does not offer API version {ApiVersion}");
        _outputCount = outputCount;

        fixed (nint* env = &_env) fixed (byte* id = "vitsparse-bench\0"u8)
            Check(((delegate* unmanaged<int, byte*, nint*, nint>)_api[CreateEnvSlot])(3 /* error */, id, env));
        fixed (nint* o = &_options) Check(((delegate* unmanaged<nint*, nint>)_api[CreateSessionOptionsSlot])(o));
        Check(((delegate* unmanaged<nint, int, nint>)_api[SetIntraOpNumThreadsSlot])(_options, threads));
        Check(((delegate* unmanaged<nint, int, nint>)_api[SetGraphOptimizationLevelSlot])(_options, 99 /* ORT_ENABLE_ALL */));
        var utf8 = System.Text.Encoding.UTF8.GetBytes(modelPath + "\0");
        fixed (byte* p = utf8) fixed (nint* s = &_session)
            Check(((delegate* unmanaged<nint, byte*, nint, nint*, nint>)_api[CreateSessionSlot])(_env, p, _options, s));
        fixed (nint* m = &_memInfo) Check(((delegate* unmanaged<int, int, nint*, nint>)_api[CreateCpuMemoryInfoSlot])(1 /* arena */, 0 /* default */, m));
    }

    void Check(nint status)
    {
        if (status == 0) return;
        string msg = Marshal.PtrToStringUTF8(((delegate* unmanaged<nint, nint>)_api[GetErrorMessageSlot])(status)) ?? "unknown error";
        ((delegate* unmanaged<nint, void>)_api[ReleaseStatusSlot])(status);
        throw new InvalidOperationException($"ONNX Runtime: {msg}");
    }

    /// <summary>One inference on [batch, C, H, W] images; logits copied to <paramref name="logits"/>.</summary>
    public void Run(float[] images, long[] shape, Span<float> logits)
    {
        nint input = 0, output = 0;
        fixed (float* data = images) fixed (long* sh = shape)
            Check(((delegate* unmanaged<nint, void*, nuint, long*, nuint, int, nint*, nint>)_api[CreateTensorWithDataSlot])(
                _memInfo, data, (nuint)(images.Length * sizeof(float)), sh, (nuint)shape.Length, 1 /* float */, &input));
        try
        {
            fixed (byte* inName = "images\0"u8) fixed (byte* outName = "logits\0"u8)
            {
                byte* inNames = inName, outNames = outName;
                Check(((delegate* unmanaged<nint, nint, byte**, nint*, nuint, byte**, nuint, nint*, nint>)_api[RunSlot])(
                    _session, 0, &inNames, &input, 1, &outNames, 1, &output));
            }
            float* result;
            Check(((delegate* unmanaged<nint, float**, nint>)_api[GetTensorMutableDataSlot])(output, &result));
            new ReadOnlySpan<float>(result, _outputCount).CopyTo(logits);
        }
        finally
        {
            if (output != 0) ((delegate* unmanaged<nint, void>)_api[ReleaseValueSlot])(output);
            ((delegate* unmanaged<nint, void>)_api[ReleaseValueSlot])(input);
        }
    }

    public void Dispose()
    {
        if (_session != 0) ((delegate* unmanaged<nint, void>)_api[ReleaseSessionSlot])(_session);
        if (_memInfo != 0) ((delegate* unmanaged<nint, void>)_api[ReleaseMemoryInfoSlot])(_memInfo);
        if (_options != 0) ((delegate* unmanaged<nint, void>)_api[ReleaseSessionOptionsSlot])(_options);
        if (_env != 0) ((delegate* unmanaged<nint, void>)_api[ReleaseEnvSlot])(_env);
        _session = _memInfo = _options = _env = 0;
    }
}
