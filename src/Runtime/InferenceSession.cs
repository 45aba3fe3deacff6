using VitSparse.Kernels;
using VitSparse.Runtime.Backends;
using VitSparse.Runtime.Models;

namespace VitSparse.Runtime;

/// <summary>
/// Runs a <see cref="VitModel"/> on batches of preprocessed NCHW images. A session owns its activation
/// buffers (grown only when a larger batch arrives, then reused), so steady-state inference does not
/// allocate them again; it is not thread-safe, but any number of sessions may share one model.
/// </summary>
public sealed class InferenceSession : IDisposable
{
    readonly VitModel _model;
    readonly IVitBackend _backend;
    readonly DeitForward _forward;
    readonly int _maxBatch;
    bool _disposed;

    /// <summary>When set, sees each block's fused QKV activations (calibration for pruning criteria).</summary>
    public IActivationObserver? Observer { get; set; }

    /// <summary>When set, each inference adds the time spent per operation kind (for `bench`'s breakdown).</summary>
    public OpTimings? Timings { get; set; }

    /// <summary>The model's architecture.</summary>
    public VitConfig Config => _model.Config;
    /// <summary>Threads each inference uses.</summary>
    public int Threads => _backend.Threads;
    /// <summary>What runs the model ("cpu", or the GPU device the session was given).</summary>
    public IVitBackend Backend => _backend;

    /// <summary>A session on <paramref name="model"/> with <paramref name="threads"/> intra-op threads (0: one per core), on the CPU.</summary>
    public InferenceSession(VitModel model, int threads = 0) : this(model, new CpuBackend(threads, model.Simd)) { }

    /// <summary>
    /// A session on the `--device` named <paramref name="device"/> (see <see cref="Devices.Open"/>: cpu, gpu, gpu:N, ilgpu-cpu);
    /// <paramref name="threads"/> is the CPU backend's thread count, <paramref name="fp16Weights"/> stores a GPU's weights as fp16.
    /// </summary>
    public InferenceSession(VitModel model, string device, int threads = 0, bool fp16Weights = false)
        : this(model, Devices.Open(device, threads, model.Simd, fp16Weights)) { }

    /// <summary>
    /// A session on <paramref name="model"/> run by <paramref name="backend"/> (<see cref="CpuBackend"/>, or a GPU backend
    /// from <see cref="Devices.Open"/>); the model's weights are stored on it once, here. The session owns the backend and disposes it.
    /// </summary>
    public InferenceSession(VitModel model, IVitBackend backend)
    {
        _model = model;
        _backend = backend;
        var c = model.Config;
        // The config bounds one image's activations to int range; a batch must keep them there too.
        long widest = Math.Max(Math.Max(c.EmbedDim, c.PatchDim), c.Blocks.Max(b => Math.Max(b.QkvRows, b.MlpHidden)));
        _maxBatch = (int)(Array.MaxLength / ((long)c.Tokens * widest));
        try { _forward = new DeitForward(model, backend); }
        catch { backend.Dispose(); throw; }
    }

    /// <summary>
    /// images: [batch, C, H, W] preprocessed floats; logits: [batch, classes], caller-owned.
    /// </summary>
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
        _forward.Run(images, batch, logits, Timings, Observer);
    }

    /// <summary>
    /// <see cref="Run(ReadOnlySpan{float}, int, Span{float})"/> that stops between operations, with
    /// <see cref="OperationCanceledException"/>, once <paramref name="cancel"/> is cancelled; logits are then
    /// undefined and the session stays usable.
    /// </summary>
    public void Run(ReadOnlySpan<float> images, int batch, Span<float> logits, CancellationToken cancel)
    {
        _backend.Cancellation = cancel;
        try { Run(images, batch, logits); }
        finally { _backend.Cancellation = default; }
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
