using VitSparse.Kernels;
using VitSparse.Runtime.Backends;
using VitSparse.Runtime.Models;

namespace VitSparse.Runtime;

/// <summary>
/// Runs a <see cref="SwinModel"/> on batches of preprocessed NCHW images, with <see cref="InferenceSession"/>'s
/// public shape. Activations stay NHWC token maps ([images·H·W, C], rows in raster order) from the patch embedding
/// to the pool; the forward is a sequence of coarse ops (linear with epilogue, layer norm, window attention, patch
/// merge, pool, head: <see cref="SwinForward"/>), run by an <see cref="IVitBackend"/>. Buffers grow only when a larger batch arrives, so steady-state inference allocates nothing.
/// Not thread-safe; any number of sessions may share one model.
/// </summary>
public sealed class SwinSession : IDisposable
{
    readonly SwinModel _model;
    readonly IVitBackend _backend;
    readonly SwinForward _forward;
    readonly int _maxBatch;
    bool _disposed;

    /// <summary>When set, each inference adds the time spent per operation kind.</summary>
    public OpTimings? Timings { get; set; }
    /// <summary>The model's architecture.</summary>
    public SwinConfig Config => _model.Config;
    /// <summary>Threads each inference uses (1 on a device backend).</summary>
    public int Threads => _backend.Threads;
    /// <summary>The backend running the ops.</summary>
    public IVitBackend Backend => _backend;

    /// <summary>A session on <paramref name="model"/> with <paramref name="threads"/> intra-op threads (0: one per core).</summary>
    public SwinSession(SwinModel model, int threads = 0) : this(model, new CpuBackend(threads, model.Simd)) { }

    /// <summary>
    /// A session on the `--device` named <paramref name="device"/> (see <see cref="Devices.Open"/>: cpu, gpu, gpu:N, ilgpu-cpu);
    /// <paramref name="fp16Weights"/> stores GPU weights as fp16.
    /// </summary>
    public SwinSession(SwinModel model, string device, int threads = 0, bool fp16Weights = false)
        : this(model, Devices.Open(device, threads, model.Simd, fp16Weights)) { }

    /// <summary>
    /// A session on <paramref name="model"/> run by <paramref name="backend"/>; the model's weights are stored on it
    /// once, here. The session owns the backend and disposes it.
    /// </summary>
    public SwinSession(SwinModel model, IVitBackend backend)
    {
        _model = model;
        _backend = backend;
        var c = model.Config;
        _maxBatch = (int)(Array.MaxLength / SwinForward.PerImage(c, (cc, s) => Math.Max(3L * cc.Stages[s].Dim, cc.Stages[s].MlpHidden)));
        try { _forward = new SwinForward(model, backend); }
        catch { backend.Dispose(); throw; }
    }

    /// <summary>images: [batch, C, H, W] preprocessed floats; logits: [batch, classes], caller-owned.</summary>
    public void Run(ReadOnlySpan<float> images, int batch, Span<float> logits)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var c = _model.Config;
        if (batch < 1) throw new InputException("batch", $"must be at least 1, got {batch}");
        if (batch > _maxBatch)
            throw new InputException("batch", $"{batch} images of model '{c.Name}' need more than 2^31 floats per activation; run at most {_maxBatch} at a time");
        if (images.Length != (long)batch * c.ImageElements)
            throw new InputException("images", $"expected {batch}×{c.InChannels}×{c.ImageSize}×{c.ImageSize} = {(long)batch * c.ImageElements} floats for model '{c.Name}', got {images.Length}");
        if (logits.Length < (long)batch * c.NumClasses)
            throw new InputException("logits", $"needs room for {batch}×{c.NumClasses} floats, has {logits.Length}");
        _forward.Run(images, batch, logits, Timings);
    }

    /// <summary>Releases the weights and buffers the backend holds for this session, and the backend (its threads or device).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _forward.Dispose();
        _backend.Dispose();
    }
}
