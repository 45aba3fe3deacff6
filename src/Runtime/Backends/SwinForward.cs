using VitSparse.Kernels;
using VitSparse.Runtime.Models;

namespace VitSparse.Runtime.Backends;

/// <summary>
/// Swin's forward (timm's SwinTransformer: patch embedding and its norm, stages of (shifted) window-attention blocks
/// with a 2×2 patch merge before each stage after the first, final norm, mean pool, head), written once against
/// <see cref="IVitBackend"/> so every backend runs the same model code. Activations are NHWC token maps
/// ([images·H·W, C], raster order). Holds the model's weights as the backend stores them (uploaded once) and the
/// activation buffers (grown only for a larger batch).
/// </summary>
internal sealed class SwinForward : IDisposable
{
    sealed class Block
    {
        public required DeviceVector Norm1W, Norm1B, Norm2W, Norm2B, QkvBias, Bias;
        public required DeviceLinear Qkv, Proj, Fc1, Fc2;
        public required WindowGeometry Geometry;
    }

    sealed class Stage
    {
        public DeviceVector? MergeNormW, MergeNormB;
        public DeviceLinear? Reduction;
        public required Block[] Blocks;
        public required DeviceVector Masks;
    }

    readonly SwinConfig _c;
    readonly IVitBackend _be;
    readonly DeviceLinear _patchEmbed, _head;
    readonly DeviceVector _patchNormW, _patchNormB, _normW, _normB;
    readonly Stage[] _stages;
    readonly List<IDisposable> _owned = [];
    int _capacity;
    DeviceBuffer? _images, _patches, _x, _h, _qkv, _attn, _mlp, _pooled, _logits;

    public SwinForward(SwinModel model, IVitBackend backend)
    {
        _c = model.Config;
        _be = backend;
        T Own<T>(T d) where T : IDisposable { _owned.Add(d); return d; }
        DeviceLinear Lin(ILinear l) => Own(backend.Linear(l));
        DeviceVector Vec(ReadOnlySpan<float> v) => Own(backend.Vector(v));
        try
        {
            _patchEmbed = Lin(model.PatchEmbed);
            _patchNormW = Vec(model.PatchNormW);
            _patchNormB = Vec(model.PatchNormB);
            _stages = model.Stages.Select(s => new Stage
            {
                MergeNormW = s.MergeNormW is { } mw ? Vec(mw) : null,
                MergeNormB = s.MergeNormB is { } mb ? Vec(mb) : null,
                Reduction = s.Reduction is { } r ? Lin(r) : null,
                Masks = Vec(s.Masks),
                Blocks = s.Blocks.Select(b => new Block
                {
                    Norm1W = Vec(b.Norm1W), Norm1B = Vec(b.Norm1B), Norm2W = Vec(b.Norm2W), Norm2B = Vec(b.Norm2B),
                    QkvBias = Vec(b.QkvBias), Bias = Vec(b.Bias),
                    Qkv = Lin(b.Qkv), Proj = Lin(b.Proj), Fc1 = Lin(b.Fc1), Fc2 = Lin(b.Fc2), Geometry = b.Geometry,
                }).ToArray(),
            }).ToArray();
            _normW = Vec(model.NormW);
            _normB = Vec(model.NormB);
            _head = Lin(model.Head);
        }
        catch (DeviceException e)
        {
            Dispose();
            throw new DeviceException($"{e.Message} (model '{_c.Name}': {SwinLayout.Params(_c) * 4 / (1024.0 * 1024):0.0} MiB of fp32 weights)", e);
        }
        catch { Dispose(); throw; }
    }

    /// <summary>The largest per-image activation of <paramref name="width"/>(stage) over the stages, in floats (a merge's 4C rows included).</summary>
    internal static long PerImage(SwinConfig c, Func<SwinConfig, int, long> width)
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
        FreeActivations();
        var c = _c;
        long r0 = (long)c.Resolution(0) * c.Resolution(0);
        _images = _be.Allocate((long)batch * c.ImageElements);
        _patches = _be.Allocate(batch * r0 * c.PatchDim);
        // x, h and attn hold a stage's tokens × width, or a merge's gathered 4C rows.
        long residual = PerImage(c, (cc, s) => cc.Stages[s].Dim);
        _x = _be.Allocate(batch * residual);
        _h = _be.Allocate(batch * residual);
        _attn = _be.Allocate(batch * residual);
        _qkv = _be.Allocate(batch * PerImage(c, (cc, s) => 3L * cc.Stages[s].Dim));
        _mlp = _be.Allocate(batch * PerImage(c, (cc, s) => cc.Stages[s].MlpHidden));
        _pooled = _be.Allocate((long)batch * c.NumFeatures);
        _logits = _be.Allocate((long)batch * c.NumClasses);
        _capacity = batch;
    }

    /// <summary>images [batch, C, H, W] (checked by the session) to logits [batch, classes].</summary>
    public void Run(ReadOnlySpan<float> images, int batch, Span<float> logits, OpTimings? tm)
    {
        Ensure(batch);
        var c = _c;
        var be = _be;
        float eps = c.LayerNormEps;
        long t = tm?.Start() ?? 0;
        void Lap(Op op) { if (tm != null) { be.Synchronize(); tm.Lap(op, ref t); } }

        int res = c.Resolution(0), dim = c.EmbedDim, rows = batch * res * res;
        be.Upload(images, _images!);
        be.ExtractPatches(_images!, batch, c.InChannels, c.ImageSize, c.PatchSize, _patches!);
        be.LinearForward(_patchEmbed, _patches!, rows, c.PatchDim, _x!, dim, Epilogue.Bias);
        Lap(Op.PatchEmbed);
        be.LayerNorm(_x!, rows, dim, _patchNormW, _patchNormB, eps, _x!);
        Lap(Op.Norm);

        for (int s = 0; s < _stages.Length; s++)
        {
            var stage = _stages[s];
            var shape = c.Stages[s];
            if (s > 0)
            {
                // x [batch, res, res, prev] → gather 2×2 → LN(4·prev) → reduction (no bias) → x [batch, res/2, res/2, next].
                int prev = dim, merged = batch * (res / 2) * (res / 2);
                be.PatchMerge(_x!, batch, res, res, prev, _h!);
                be.LayerNorm(_h!, merged, 4 * prev, stage.MergeNormW!, stage.MergeNormB!, eps, _h!);
                Lap(Op.Norm);
                be.LinearForward(stage.Reduction!, _h!, merged, 4 * prev, _x!, shape.Dim, Epilogue.Bias);
                Lap(Op.Proj);
                res /= 2;
                dim = shape.Dim;
                rows = merged;
            }
            int d = dim, hidden = shape.MlpHidden;
            float scale = 1f / MathF.Sqrt(shape.HeadDim);
            foreach (var b in stage.Blocks)
            {
                // x += proj(window attention(norm1(x))); x += fc2(gelu(fc1(norm2(x)))).
                be.LayerNorm(_x!, rows, d, b.Norm1W, b.Norm1B, eps, _h!);
                Lap(Op.Norm);
                be.LinearForward(b.Qkv, _h!, rows, d, _qkv!, 3 * d, Epilogue.Bias);
                Lap(Op.Qkv);
                be.WindowAttention(b.Geometry, _qkv!, batch, shape.Heads, shape.HeadDim, scale, b.QkvBias, b.Bias, stage.Masks, _attn!);
                Lap(Op.Attention);
                be.LinearForward(b.Proj, _attn!, rows, d, _x!, d, Epilogue.BiasAccumulate);
                Lap(Op.Proj);
                be.LayerNorm(_x!, rows, d, b.Norm2W, b.Norm2B, eps, _h!);
                Lap(Op.Norm);
                be.LinearForward(b.Fc1, _h!, rows, d, _mlp!, hidden, Epilogue.BiasGelu);
                Lap(Op.Fc1Gelu);
                be.LinearForward(b.Fc2, _mlp!, rows, hidden, _x!, d, Epilogue.BiasAccumulate);
                Lap(Op.Fc2);
            }
        }

        be.LayerNorm(_x!, rows, dim, _normW, _normB, eps, _h!);
        be.MeanPool(_h!, batch, res * res, dim, _pooled!);
        be.LinearForward(_head, _pooled!, batch, dim, _logits!, c.NumClasses, Epilogue.Bias);
        be.Read(_logits!, (long)batch * c.NumClasses).CopyTo(logits);
        Lap(Op.Head);
        tm?.CountRun();
    }

    void FreeActivations()
    {
        foreach (var b in new[] { _images, _patches, _x, _h, _qkv, _attn, _mlp, _pooled, _logits }) b?.Dispose();
        _capacity = 0;
    }

    public void Dispose()
    {
        FreeActivations();
        foreach (var d in _owned) d.Dispose();
        _owned.Clear();
    }
}
