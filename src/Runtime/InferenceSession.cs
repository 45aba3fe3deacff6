using VitSparse.Kernels;
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
    readonly ThreadTeam _team;
    readonly RaggedAttention _attention;
    readonly int _maxBatch;
    int _capacity;
    float[] _patches = [], _embedded = [], _x = [], _h = [], _qkv = [], _attn = [], _mlp = [], _cls = [], _logits2 = [];
    bool _disposed;

    /// <summary>When set, sees each block's fused QKV activations (calibration for pruning criteria).</summary>
    public IActivationObserver? Observer { get; set; }

    /// <summary>When set, each inference adds the time spent per operation kind (for `bench`'s breakdown).</summary>
    public OpTimings? Timings { get; set; }

    /// <summary>The model's architecture.</summary>
    public VitConfig Config => _model.Config;
    /// <summary>Threads each inference uses.</summary>
    public int Threads => _team.Threads;

    /// <summary>A session on <paramref name="model"/> with <paramref name="threads"/> intra-op threads (0: one per core).</summary>
    public InferenceSession(VitModel model, int threads = 0)
    {
        _model = model;
        _team = threads <= 0 ? ThreadTeam.ForMachine() : new ThreadTeam(threads);
        var c = model.Config;
        // The config bounds one image's activations to int range; a batch must keep them there too.
        long widest = Math.Max(Math.Max(c.EmbedDim, c.PatchDim), c.Blocks.Max(b => Math.Max(b.QkvRows, b.MlpHidden)));
        _maxBatch = (int)(Array.MaxLength / ((long)c.Tokens * widest));
        _attention = new RaggedAttention(c.Tokens, c.Blocks.Max(b => b.QkWidths.Max()), c.Blocks.Max(b => b.VWidths.Max()), _team.Threads, model.Simd);
    }

    void Ensure(int batch)
    {
        if (batch <= _capacity) return;
        var c = _model.Config;
        long rows = (long)batch * c.Tokens, patchRows = (long)batch * c.PatchTokens;
        _patches = new float[patchRows * c.PatchDim];
        _embedded = new float[patchRows * c.EmbedDim];
        _x = new float[rows * c.EmbedDim];
        _h = new float[rows * c.EmbedDim];
        _qkv = new float[rows * c.Blocks.Max(b => b.QkvRows)];
        _attn = new float[rows * c.Blocks.Max(b => b.VTotal)];
        _mlp = new float[rows * c.Blocks.Max(b => b.MlpHidden)];
        _cls = new float[(long)batch * c.PrefixTokens * c.EmbedDim];
        _logits2 = c.Distilled ? new float[(long)batch * c.NumClasses] : [];
        _capacity = batch;
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
        Ensure(batch);

        int e = c.EmbedDim, n = c.Tokens, rows = batch * n;
        var tm = Timings;
        long t = tm?.Start() ?? 0;
        Patches.Extract(images, batch, c.InChannels, c.ImageSize, c.PatchSize, _patches);
        _model.PatchEmbed.Forward(_patches, batch * c.PatchTokens, c.PatchDim, _embedded, e, Epilogue.Bias, _team);
        AssembleTokens(batch);
        tm?.Lap(Op.PatchEmbed, ref t);

        for (int bi = 0; bi < _model.Blocks.Length; bi++)
        {
            var b = _model.Blocks[bi];
            LayerNorm.Forward(_x, rows, e, e, b.Norm1W, b.Norm1B, c.LayerNormEps, _h, e, _team, _model.Simd);
            tm?.Lap(Op.Norm, ref t);
            b.Qkv.Forward(_h, rows, e, _qkv, b.Qkv.N, Epilogue.Bias, _team);
            tm?.Lap(Op.Qkv, ref t);
            Observer?.OnQkv(bi, _qkv.AsSpan(0, rows * b.Qkv.N), batch, n, b.Qkv.N);
            _attention.Forward(b.Heads, _qkv, batch, b.Qkv.N, b.Scale, _attn, b.Heads.VTotal, _team);
            tm?.Lap(Op.Attention, ref t);
            b.Proj.Forward(_attn, rows, b.Heads.VTotal, _x, e, Epilogue.BiasAccumulate, _team);
            tm?.Lap(Op.Proj, ref t);
            LayerNorm.Forward(_x, rows, e, e, b.Norm2W, b.Norm2B, c.LayerNormEps, _h, e, _team, _model.Simd);
            tm?.Lap(Op.Norm, ref t);
            b.Fc1.Forward(_h, rows, e, _mlp, b.Fc1.N, Epilogue.BiasGelu, _team);
            tm?.Lap(Op.Fc1Gelu, ref t);
            b.Fc2.Forward(_mlp, rows, b.Fc1.N, _x, e, Epilogue.BiasAccumulate, _team);
            tm?.Lap(Op.Fc2, ref t);
        }

        // Only the class (and distillation) tokens reach the heads, so only they are normalised.
        int k = c.NumClasses, prefix = c.PrefixTokens;
        if (prefix == 1)
        {
            // Token rows are n apart; gather the class rows contiguously first.
            for (int i = 0; i < batch; i++) _x.AsSpan(i * n * e, e).CopyTo(_cls.AsSpan(i * e, e));
            LayerNorm.Forward(_cls, batch, e, e, _model.NormW, _model.NormB, c.LayerNormEps, _cls, e, ThreadTeam.Single, _model.Simd);
            _model.Head.Forward(_cls, batch, e, logits, k, Epilogue.Bias, _team);
        }
        else
        {
            for (int i = 0; i < batch; i++) _x.AsSpan(i * n * e, 2 * e).CopyTo(_cls.AsSpan(i * 2 * e, 2 * e));
            LayerNorm.Forward(_cls, 2 * batch, e, e, _model.NormW, _model.NormB, c.LayerNormEps, _cls, e, ThreadTeam.Single, _model.Simd);
            _model.Head.Forward(_cls, batch, 2 * e, logits, k, Epilogue.Bias, _team);
            _model.HeadDist!.Forward(_cls.AsSpan(e), batch, 2 * e, _logits2, k, Epilogue.Bias, _team);
            for (int i = 0; i < batch * k; i++) logits[i] = 0.5f * (logits[i] + _logits2[i]);
        }
        tm?.Lap(Op.Head, ref t);
        tm?.CountRun();
    }

    /// <summary>
    /// <see cref="Run(ReadOnlySpan{float}, int, Span{float})"/> that stops between operations, with
    /// <see cref="OperationCanceledException"/>, once <paramref name="cancel"/> is cancelled; logits are then
    /// undefined and the session stays usable.
    /// </summary>
    public void Run(ReadOnlySpan<float> images, int batch, Span<float> logits, CancellationToken cancel)
    {
        _team.Cancellation = cancel;
        try { Run(images, batch, logits); }
        finally { _team.Cancellation = default; }
    }

    void AssembleTokens(int batch)
    {
        var c = _model.Config;
        int e = c.EmbedDim, n = c.Tokens, prefix = c.PrefixTokens;
        var pos = _model.PosEmbed;
        for (int b = 0; b < batch; b++)
        {
            var img = _x.AsSpan(b * n * e, n * e);
            for (int j = 0; j < e; j++) img[j] = _model.ClsToken[j] + pos[j];
            if (_model.DistToken is { } dist)
                for (int j = 0; j < e; j++) img[e + j] = dist[j] + pos[e + j];
            var patches = _embedded.AsSpan(b * c.PatchTokens * e, c.PatchTokens * e);
            var dst = img[(prefix * e)..];
            var p = pos.AsSpan(prefix * e);
            System.Numerics.Tensors.TensorPrimitives.Add(patches, p, dst);
        }
    }

    /// <summary>Stops the session's threads.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _team.Dispose();
    }
}
