using VitSparse.Kernels;
using VitSparse.Runtime.Models;

namespace VitSparse.Runtime.Backends;

/// <summary>
/// DeiT's forward (timm's VisionTransformer.forward: patch embedding, prefix tokens + position embedding,
/// pre-norm blocks, final norm of the prefix tokens, head, the distilled model's two heads averaged), written
/// once against <see cref="IVitBackend"/> so every backend runs the same model code. Holds the model's
/// weights as the backend stores them (uploaded once) and the activation buffers (grown only for a larger batch).
/// </summary>
internal sealed class DeitForward : IDisposable
{
    sealed class Block
    {
        public required DeviceVector Norm1W, Norm1B, Norm2W, Norm2B;
        public required DeviceLinear Qkv, Proj, Fc1, Fc2;
        public required DeviceHeads Heads;
        public required float Scale;
    }

    readonly VitConfig _c;
    readonly IVitBackend _be;
    readonly DeviceLinear _patchEmbed, _head;
    readonly DeviceLinear? _headDist;
    readonly DeviceVector _prefix, _pos, _normW, _normB;
    readonly Block[] _blocks;
    readonly List<IDisposable> _owned = [];
    int _capacity;
    DeviceBuffer? _images, _patches, _embedded, _x, _h, _qkv, _attn, _mlp, _cls, _dist, _logits, _logits2;

    public DeitForward(VitModel model, IVitBackend backend)
    {
        _c = model.Config;
        _be = backend;
        T Own<T>(T d) where T : IDisposable { _owned.Add(d); return d; }
        DeviceLinear Lin(ILinear l) => Own(backend.Linear(l));
        DeviceVector Vec(ReadOnlySpan<float> v) => Own(backend.Vector(v));
        try
        {
            _patchEmbed = Lin(model.PatchEmbed);
            _prefix = Vec(model.DistToken is { } d ? [.. model.ClsToken, .. d] : model.ClsToken);
            _pos = Vec(model.PosEmbed);
            _blocks = model.Blocks.Select(b => new Block
            {
                Norm1W = Vec(b.Norm1W), Norm1B = Vec(b.Norm1B), Norm2W = Vec(b.Norm2W), Norm2B = Vec(b.Norm2B),
                Qkv = Lin(b.Qkv), Proj = Lin(b.Proj), Fc1 = Lin(b.Fc1), Fc2 = Lin(b.Fc2),
                Heads = Own(backend.Heads(b.Heads, _c.Tokens)), Scale = b.Scale,
            }).ToArray();
            _normW = Vec(model.NormW);
            _normB = Vec(model.NormB);
            _head = Lin(model.Head);
            _headDist = model.HeadDist is { } hd ? Lin(hd) : null;
        }
        catch (DeviceException e)
        {
            Dispose();
            throw new DeviceException($"{e.Message} (model '{_c.Name}': {ModelStats.Params(_c) * 4 / (1024.0 * 1024):0.0} MiB of fp32 weights)", e);
        }
        catch { Dispose(); throw; }
    }

    void Ensure(int batch)
    {
        if (batch <= _capacity) return;
        FreeActivations();
        var c = _c;
        long rows = (long)batch * c.Tokens, patchRows = (long)batch * c.PatchTokens;
        _images = _be.Allocate((long)batch * c.ImageElements);
        _patches = _be.Allocate(patchRows * c.PatchDim);
        _embedded = _be.Allocate(patchRows * c.EmbedDim);
        _x = _be.Allocate(rows * c.EmbedDim);
        _h = _be.Allocate(rows * c.EmbedDim);
        _qkv = _be.Allocate(rows * c.Blocks.Max(b => b.QkvRows));
        _attn = _be.Allocate(rows * c.Blocks.Max(b => b.VTotal));
        _mlp = _be.Allocate(rows * c.Blocks.Max(b => b.MlpHidden));
        _cls = _be.Allocate((long)batch * c.EmbedDim);
        _dist = c.Distilled ? _be.Allocate((long)batch * c.EmbedDim) : null;
        _logits = _be.Allocate((long)batch * c.NumClasses);
        _logits2 = c.Distilled ? _be.Allocate((long)batch * c.NumClasses) : null;
        _capacity = batch;
    }

    /// <summary>images [batch, C, H, W] (checked by the session) to logits [batch, classes].</summary>
    public void Run(ReadOnlySpan<float> images, int batch, Span<float> logits, OpTimings? tm, IActivationObserver? observer)
    {
        Ensure(batch);
        var c = _c;
        var be = _be;
        int e = c.EmbedDim, n = c.Tokens, rows = batch * n, k = c.NumClasses;
        long t = tm?.Start() ?? 0;
        void Lap(Op op) { if (tm != null) { be.Synchronize(); tm.Lap(op, ref t); } }

        be.Upload(images, _images!);
        be.ExtractPatches(_images!, batch, c.InChannels, c.ImageSize, c.PatchSize, _patches!);
        be.LinearForward(_patchEmbed, _patches!, batch * c.PatchTokens, c.PatchDim, _embedded!, e, Epilogue.Bias);
        be.AssembleTokens(_embedded!, batch, c.PatchTokens, e, _prefix, _pos, _x!);
        Lap(Op.PatchEmbed);

        for (int bi = 0; bi < _blocks.Length; bi++)
        {
            var b = _blocks[bi];
            int qkvWidth = b.Qkv.N, vTotal = b.Heads.Layout.VTotal, hidden = b.Fc1.N;
            // x = x + proj(attn(norm1(x)))
            be.LayerNorm(_x!, rows, e, b.Norm1W, b.Norm1B, c.LayerNormEps, _h!);
            Lap(Op.Norm);
            be.LinearForward(b.Qkv, _h!, rows, e, _qkv!, qkvWidth, Epilogue.Bias);
            Lap(Op.Qkv);
            observer?.OnQkv(bi, be.Read(_qkv!, (long)rows * qkvWidth), batch, n, qkvWidth);
            be.Attention(b.Heads, _qkv!, batch, qkvWidth, b.Scale, _attn!, vTotal);
            Lap(Op.Attention);
            be.LinearForward(b.Proj, _attn!, rows, vTotal, _x!, e, Epilogue.BiasAccumulate);
            Lap(Op.Proj);
            // x = x + fc2(gelu(fc1(norm2(x))))
            be.LayerNorm(_x!, rows, e, b.Norm2W, b.Norm2B, c.LayerNormEps, _h!);
            Lap(Op.Norm);
            be.LinearForward(b.Fc1, _h!, rows, e, _mlp!, hidden, Epilogue.BiasGelu);
            Lap(Op.Fc1Gelu);
            be.LinearForward(b.Fc2, _mlp!, rows, hidden, _x!, e, Epilogue.BiasAccumulate);
            Lap(Op.Fc2);
        }

        // Only the class (and distillation) tokens reach the heads, so only they are normalised.
        be.GatherRows(_x!, batch, n, 0, e, _cls!);
        be.LayerNorm(_cls!, batch, e, _normW, _normB, c.LayerNormEps, _cls!);
        be.LinearForward(_head, _cls!, batch, e, _logits!, k, Epilogue.Bias);
        if (_headDist != null)
        {
            be.GatherRows(_x!, batch, n, 1, e, _dist!);
            be.LayerNorm(_dist!, batch, e, _normW, _normB, c.LayerNormEps, _dist!);
            be.LinearForward(_headDist, _dist!, batch, e, _logits2!, k, Epilogue.Bias);
            be.Average(_logits!, _logits2!, batch * k, _logits!);
        }
        be.Read(_logits!, (long)batch * k).CopyTo(logits);
        Lap(Op.Head);
        tm?.CountRun();
    }

    void FreeActivations()
    {
        foreach (var b in new[] { _images, _patches, _embedded, _x, _h, _qkv, _attn, _mlp, _cls, _dist, _logits, _logits2 }) b?.Dispose();
        _capacity = 0;
    }

    public void Dispose()
    {
        FreeActivations();
        foreach (var d in _owned) d.Dispose();
        _owned.Clear();
    }
}
