using VitSparse.Kernels;
using VitSparse.Runtime.Models;

namespace VitSparse.Runtime;

/// <summary>
/// Runs a <see cref="SwinModel"/> on batches of preprocessed NCHW images, with <see cref="InferenceSession"/>'s
/// public shape. Activations stay NHWC token maps ([images·H·W, C], rows in raster order) from the patch embedding
/// to the pool; the forward is a sequence of coarse ops (linear with epilogue, layer norm, window attention, patch
/// merge, pool, head). Buffers grow only when a larger batch arrives, so steady-state inference allocates nothing.
/// Not thread-safe; any number of sessions may share one model.
/// </summary>
public sealed class SwinSession : IDisposable
{
    readonly SwinModel _model;
    readonly ThreadTeam _team;
    readonly WindowAttention _attention;
    readonly int _maxBatch;
    int _capacity;
    float[] _patches = [], _x = [], _h = [], _qkv = [], _attn = [], _mlp = [], _pooled = [];
    bool _disposed;

    /// <summary>When set, each inference adds the time spent per operation kind.</summary>
    public OpTimings? Timings { get; set; }
    /// <summary>The model's architecture.</summary>
    public SwinConfig Config => _model.Config;
    /// <summary>Threads each inference uses.</summary>
    public int Threads => _team.Threads;

    /// <summary>A session on <paramref name="model"/> with <paramref name="threads"/> intra-op threads (0: one per core).</summary>
    public SwinSession(SwinModel model, int threads = 0)
    {
        _model = model;
        _team = threads <= 0 ? ThreadTeam.ForMachine() : new ThreadTeam(threads);
        var c = model.Config;
        _attention = new WindowAttention(Enumerable.Range(0, c.Stages.Count).Max(c.StageWindow), c.Stages.Max(s => s.HeadDim), _team.Threads, model.Simd);
        _maxBatch = (int)(Array.MaxLength / PerImage(c, Widest));
    }

    static long Widest(SwinConfig c, int s) => Math.Max(3L * c.Stages[s].Dim, c.Stages[s].MlpHidden);

    /// <summary>The largest per-image activation of <paramref name="width"/>(stage) over the stages, in floats.</summary>
    static long PerImage(SwinConfig c, Func<SwinConfig, int, long> width)
    {
        long most = (long)c.Resolution(0) * c.Resolution(0) * c.PatchDim;
        for (int s = 0; s < c.Stages.Count; s++)
        {
            long tokens = (long)c.Resolution(s) * c.Resolution(s);
            most = Math.Max(most, tokens * width(c, s));
            if (s > 0) most = Math.Max(most, tokens * 4L * c.Stages[s - 1].Dim);
        }
        return most;
    }

    void Ensure(int batch)
    {
        if (batch <= _capacity) return;
        var c = _model.Config;
        long r0 = (long)c.Resolution(0) * c.Resolution(0);
        _patches = new float[batch * r0 * c.PatchDim];
        // x, h and attn hold a stage's tokens × width, or a merge's gathered 4C rows.
        long residual = PerImage(c, (cc, s) => cc.Stages[s].Dim);
        _x = new float[batch * residual];
        _h = new float[batch * residual];
        _attn = new float[batch * residual];
        _qkv = new float[batch * PerImage(c, (cc, s) => 3L * cc.Stages[s].Dim)];
        _mlp = new float[batch * PerImage(c, (cc, s) => cc.Stages[s].MlpHidden)];
        _pooled = new float[(long)batch * c.NumFeatures];
        _capacity = batch;
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
        Ensure(batch);
        var tm = Timings;
        long t = tm?.Start() ?? 0;

        int res = c.Resolution(0), dim = c.EmbedDim, rows = batch * res * res;
        Patches.Extract(images, batch, c.InChannels, c.ImageSize, c.PatchSize, _patches);
        _model.PatchEmbed.Forward(_patches, rows, c.PatchDim, _x, dim, Epilogue.Bias, _team);
        tm?.Lap(Op.PatchEmbed, ref t);
        Norm(_x, rows, dim, _model.PatchNormW, _model.PatchNormB, _x);
        tm?.Lap(Op.Norm, ref t);

        for (int s = 0; s < _model.Stages.Length; s++)
        {
            var stage = _model.Stages[s];
            if (s > 0)
            {
                int prev = dim;
                MergePatches(stage, batch, res, prev, c.Stages[s].Dim, tm, ref t);
                res /= 2;
                dim = c.Stages[s].Dim;
                rows = batch * res * res;
            }
            foreach (var block in stage.Blocks)
                Block(block, stage, c.Stages[s], rows, batch, tm, ref t);
        }

        Norm(_x, rows, dim, _model.NormW, _model.NormB, _h);
        TokenMaps.MeanPool(_h, batch, res * res, dim, _pooled);
        _model.Head.Forward(_pooled, batch, dim, logits, c.NumClasses, Epilogue.Bias, _team);
        tm?.Lap(Op.Head, ref t);
        tm?.CountRun();
    }

    /// <summary>x += proj(window attention(norm1(x))); x += fc2(gelu(fc1(norm2(x)))).</summary>
    void Block(SwinBlock b, SwinStageWeights stage, SwinStage shape, int rows, int batch, OpTimings? tm, ref long t)
    {
        int d = shape.Dim;
        Norm(_x, rows, d, b.Norm1W, b.Norm1B, _h);
        tm?.Lap(Op.Norm, ref t);
        b.Qkv.Forward(_h, rows, d, _qkv, 3 * d, Epilogue.Bias, _team);
        tm?.Lap(Op.Qkv, ref t);
        _attention.Forward(b.Geometry, _qkv, batch, shape.Heads, shape.HeadDim, 1f / MathF.Sqrt(shape.HeadDim), b.QkvBias, b.Bias, stage.Masks, _attn, _team);
        tm?.Lap(Op.Attention, ref t);
        b.Proj.Forward(_attn, rows, d, _x, d, Epilogue.BiasAccumulate, _team);
        tm?.Lap(Op.Proj, ref t);
        Norm(_x, rows, d, b.Norm2W, b.Norm2B, _h);
        tm?.Lap(Op.Norm, ref t);
        b.Fc1.Forward(_h, rows, d, _mlp, shape.MlpHidden, Epilogue.BiasGelu, _team);
        tm?.Lap(Op.Fc1Gelu, ref t);
        b.Fc2.Forward(_mlp, rows, shape.MlpHidden, _x, d, Epilogue.BiasAccumulate, _team);
        tm?.Lap(Op.Fc2, ref t);
    }

    /// <summary>x [batch, res, res, prev] → gather 2×2 → LN(4·prev) → reduction (no bias) → x [batch, res/2, res/2, next].</summary>
    void MergePatches(SwinStageWeights stage, int batch, int res, int prev, int next, OpTimings? tm, ref long t)
    {
        int rows = batch * (res / 2) * (res / 2);
        TokenMaps.Merge2x2(_x, batch, res, res, prev, _h, _team);
        Norm(_h, rows, 4 * prev, stage.MergeNormW!, stage.MergeNormB!, _h);
        tm?.Lap(Op.Norm, ref t);
        stage.Reduction!.Forward(_h, rows, 4 * prev, _x, next, Epilogue.Bias, _team);
        tm?.Lap(Op.Proj, ref t);
    }

    void Norm(float[] x, int rows, int width, float[] gamma, float[] beta, float[] y) =>
        LayerNorm.Forward(x, rows, width, width, gamma, beta, _model.Config.LayerNormEps, y, width, _team, _model.Simd);

    /// <summary>Stops the session's threads.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _team.Dispose();
    }
}
