using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;

namespace VitSparse.Training;

/// <summary>
/// Forward pass that keeps what the backward pass needs, and the hand-written backward pass, for a DeiT
/// (dense or ragged, plain or distilled) held in a <see cref="ParameterSet"/>. All buffers are sized once
/// for a batch capacity; steps at or under it allocate nothing. Gradients are of the loss whose dL/dlogits
/// is handed to <see cref="Backward"/>, and are written (not accumulated) into <see cref="Gradients"/>.
/// </summary>
public sealed unsafe class DeitBackprop
{
    /// <summary>What one block's forward pass keeps (its input is the residual stream): both norms, qkv, attention maps, attention output, the mid-block stream, FFN pre- and post-activation.</summary>
    sealed class BlockTape(int bt, int e, int qkvRows, int vTotal, int hidden, long probabilities)
    {
        // Widths kept as plain ints: BlockConfig computes its sums on every read.
        public readonly int QkvRows = qkvRows, VTotal = vTotal, Hidden = hidden;
        public readonly float[] H1 = Buf(bt * e), Mean1 = Buf(bt), Rstd1 = Buf(bt), Qkv = Buf(bt * qkvRows), P = Buf(probabilities),
            A = Buf(bt * vTotal), Mid = Buf(bt * e), H2 = Buf(bt * e), Mean2 = Buf(bt), Rstd2 = Buf(bt), U = Buf(bt * hidden), G = Buf(bt * hidden);
    }

    /// <summary>A block's tensor names, built once so a step does not format strings.</summary>
    sealed record BlockNames(string Norm1W, string Norm1B, string QkvW, string QkvB, string ProjW, string ProjB,
        string Norm2W, string Norm2B, string Fc1W, string Fc1B, string Fc2W, string Fc2B)
    {
        public static BlockNames Of(int i)
        {
            string p = $"blocks.{i}.";
            return new(p + "norm1.weight", p + "norm1.bias", p + "attn.qkv.weight", p + "attn.qkv.bias", p + "attn.proj.weight", p + "attn.proj.bias",
                p + "norm2.weight", p + "norm2.bias", p + "mlp.fc1.weight", p + "mlp.fc1.bias", p + "mlp.fc2.weight", p + "mlp.fc2.bias");
        }
    }

    readonly VitConfig _c;
    readonly BlockNames[] _names;
    readonly ThreadTeam _team;
    readonly AttentionGrad[] _attention;
    readonly BlockTape[] _tapes;
    // Residual stream: _stream[i] is block i's input, _stream[depth] the last block's output.
    readonly float[][] _stream;
    readonly float[] _patches, _patchOut, _final, _finalMean, _finalRstd, _clsRows, _distRows, _logitsHead, _logitsDist;
    // Backward scratch, shared by all blocks.
    // _packed holds one weight in the products' panel layout while its layer runs.
    readonly float[] _packed;
    readonly float[] _d, _dH, _dQkv, _dA, _dHidden, _dU, _dRows, _dHead, _dPrefix;
    int _batch;

    /// <summary>Where the step's time goes, when set (`bench train --breakdown`); null times nothing.</summary>
    public StepProfile? Profile { get; set; }

    long Start() => Profile is null ? 0 : StepProfile.Now();
    long Mark(StepPhase phase, long start) => Profile is null ? 0 : Profile.Add(phase, start);

    public ParameterSet Parameters { get; }
    public ParameterSet Gradients { get; }
    public int Capacity { get; }

    public DeitBackprop(ParameterSet parameters, int capacity, ThreadTeam team)
    {
        if (capacity < 1) throw new InputException("batch", $"must be at least 1, got {capacity}");
        Parameters = parameters;
        _c = parameters.Config;
        Gradients = ParameterSet.Zeros(_c);
        Capacity = capacity;
        _team = team;
        int t = _c.Tokens, e = _c.EmbedDim, k = _c.NumClasses;
        int maxQkv = _c.Blocks.Max(b => b.QkvRows), maxV = _c.Blocks.Max(b => b.VTotal), maxHidden = _c.Blocks.Max(b => b.MlpHidden);
        // Each buffer is one .NET array; refuse a batch whose widest one would not fit, before allocating.
        long perImage = Math.Max((long)t * Math.Max(Math.Max(e, maxQkv), Math.Max(maxV, maxHidden)),
            Math.Max((long)_c.Blocks.Max(b => b.Heads) * t * t, (long)_c.PatchTokens * _c.PatchDim));
        if (capacity > Array.MaxLength / perImage)
            throw new InputException("batch", $"{capacity} images of model '{_c.Name}' need more than {Array.MaxLength} floats in one activation; use at most {Array.MaxLength / perImage}");
        int bt = capacity * t;
        _names = Enumerable.Range(0, _c.Depth).Select(BlockNames.Of).ToArray();
        _packed = Buf(_c.Blocks.Select(b => new[] { DenseLinear.ScratchFloats(b.QkvRows, e), DenseLinear.ScratchFloats(e, b.VTotal), DenseLinear.ScratchFloats(b.MlpHidden, e), DenseLinear.ScratchFloats(e, b.MlpHidden) }.Max())
            .Append(DenseLinear.ScratchFloats(e, _c.PatchDim)).Append(DenseLinear.ScratchFloats(k, e))
            .Append(DenseLinear.WeightScratchFloats(Math.Max(Math.Max(e, maxV), Math.Max(maxHidden, _c.PatchDim)))).Max());
        _attention = _c.Blocks.Select(b => new AttentionGrad(t, b.QkWidths, b.VWidths, b.AttnScale, team.Threads)).ToArray();
        _tapes = _c.Blocks.Select((b, i) => new BlockTape(bt, e, b.QkvRows, b.VTotal, b.MlpHidden, _attention[i].ProbabilityFloats(capacity))).ToArray();
        _stream = Enumerable.Range(0, _c.Depth + 1).Select(_ => Buf(bt * e)).ToArray();
        int patchRows = checked(capacity * _c.PatchTokens);
        _patches = Buf((long)patchRows * _c.PatchDim);
        _patchOut = Buf((long)patchRows * e);
        _final = Buf(bt * e); _finalMean = Buf(bt); _finalRstd = Buf(bt);
        _clsRows = Buf(capacity * e); _distRows = Buf(capacity * e);
        _logitsHead = Buf(capacity * k); _logitsDist = Buf(capacity * k);
        _d = Buf(bt * e); _dH = Buf(bt * e); _dQkv = Buf((long)bt * maxQkv); _dA = Buf((long)bt * maxV);
        _dHidden = Buf((long)bt * maxHidden); _dU = Buf((long)bt * maxHidden);
        _dRows = Buf((long)patchRows * e); _dHead = Buf(capacity * k); _dPrefix = Buf(capacity * e);
    }

    static float[] Buf(long n) => GC.AllocateArray<float>(checked((int)n), pinned: true);
    static float* P(float[] a) => ParameterSet.Pin(a);
    float* W(string name) => Parameters.Ptr(name);
    float* G(string name) => Gradients.Ptr(name);
    /// <summary>A pruned weight's kept-pattern, or null when all of it trains.</summary>
    byte* Keep(string name) => Parameters.MaskOf(name) is { } m ? (byte*)ParameterSet.PinBytes(m.Keep) : null;

    /// <summary>Runs the model on [batch, C, H, W] images, keeping activations; writes [batch, classes] logits.</summary>
    public void Forward(ReadOnlySpan<float> images, int batch, Span<float> logits)
    {
        if (batch < 1 || batch > Capacity) throw new InputException("batch", $"must be between 1 and {Capacity}, got {batch}");
        if (images.Length != (long)batch * _c.ImageElements) throw new InputException("images", $"{images.Length} floats for {batch} images of {_c.ImageElements}");
        if (logits.Length != batch * _c.NumClasses) throw new InputException("logits", $"{logits.Length} floats for {batch}×{_c.NumClasses} logits");
        _batch = batch;
        int t = _c.Tokens, e = _c.EmbedDim, bt = batch * t, k = _c.NumClasses, pre = _c.PrefixTokens;

        long t0 = Start();
        Patches.Extract(images, batch, _c.InChannels, _c.ImageSize, _c.PatchSize, _patches);
        DenseLinear.Forward(P(_patches), batch * _c.PatchTokens, _c.PatchDim, W("patch_embed.proj.weight"), W("patch_embed.proj.bias"), e, P(_patchOut), P(_packed), _team);
        var x0 = _stream[0].AsSpan();
        var pos = Parameters["pos_embed"].AsSpan();
        for (int b = 0; b < batch; b++)
            for (int tok = 0; tok < t; tok++)
            {
                var src = tok == 0 ? Parameters["cls_token"] : tok == 1 && _c.Distilled ? Parameters["dist_token"] : null;
                var row = x0.Slice((b * t + tok) * e, e);
                var from = src != null ? src.AsSpan() : _patchOut.AsSpan((b * _c.PatchTokens + tok - pre) * e, e);
                for (int i = 0; i < e; i++) row[i] = from[i] + pos[tok * e + i];
            }
        Mark(StepPhase.FwdEmbed, t0);

        for (int i = 0; i < _c.Depth; i++) BlockForward(i, batch);

        t0 = Start();
        NormGrad.Forward(P(_stream[_c.Depth]), bt, e, W("norm.weight"), W("norm.bias"), _c.LayerNormEps, P(_final), P(_finalMean), P(_finalRstd), _team);
        GatherPrefix(0, _clsRows, batch);
        t0 = Mark(StepPhase.FwdNorm, t0);
        DenseLinear.Forward(P(_clsRows), batch, e, W("head.weight"), W("head.bias"), k, P(_logitsHead), P(_packed), _team);
        t0 = Mark(StepPhase.FwdLinear, t0);
        if (!_c.Distilled) { _logitsHead.AsSpan(0, batch * k).CopyTo(logits); return; }
        GatherPrefix(1, _distRows, batch);
        DenseLinear.Forward(P(_distRows), batch, e, W("head_dist.weight"), W("head_dist.bias"), k, P(_logitsDist), P(_packed), _team);
        Mark(StepPhase.FwdLinear, t0);
        // A distilled DeiT's output at inference is the mean of its two heads.
        for (int i = 0; i < batch * k; i++) logits[i] = (_logitsHead[i] + _logitsDist[i]) / 2;
    }

    void GatherPrefix(int token, float[] rows, int batch)
    {
        int t = _c.Tokens, e = _c.EmbedDim;
        for (int b = 0; b < batch; b++) _final.AsSpan((b * t + token) * e, e).CopyTo(rows.AsSpan(b * e, e));
    }

    void BlockForward(int i, int batch)
    {
        var tape = _tapes[i];
        var n = _names[i];
        int e = _c.EmbedDim, bt = batch * _c.Tokens;
        float* x = P(_stream[i]), mid = P(tape.Mid), y = P(_stream[i + 1]);
        long t0 = Start();
        NormGrad.Forward(x, bt, e, W(n.Norm1W), W(n.Norm1B), _c.LayerNormEps, P(tape.H1), P(tape.Mean1), P(tape.Rstd1), _team);
        t0 = Mark(StepPhase.FwdNorm, t0);
        DenseLinear.Forward(P(tape.H1), bt, e, W(n.QkvW), W(n.QkvB), tape.QkvRows, P(tape.Qkv), P(_packed), _team);
        t0 = Mark(StepPhase.FwdLinear, t0);
        _attention[i].Forward(P(tape.Qkv), batch, P(tape.P), P(tape.A), _team);
        t0 = Mark(StepPhase.FwdAttention, t0);
        DenseLinear.Forward(P(tape.A), bt, tape.VTotal, W(n.ProjW), W(n.ProjB), e, mid, P(_packed), _team);
        t0 = Mark(StepPhase.FwdLinear, t0);
        AddInPlace(mid, x, (long)bt * e);
        t0 = Mark(StepPhase.FwdResidual, t0);
        NormGrad.Forward(mid, bt, e, W(n.Norm2W), W(n.Norm2B), _c.LayerNormEps, P(tape.H2), P(tape.Mean2), P(tape.Rstd2), _team);
        t0 = Mark(StepPhase.FwdNorm, t0);
        DenseLinear.Forward(P(tape.H2), bt, e, W(n.Fc1W), W(n.Fc1B), tape.Hidden, P(tape.U), P(_packed), _team);
        t0 = Mark(StepPhase.FwdLinear, t0);
        GeluGrad.Forward(P(tape.U), P(tape.G), bt, tape.Hidden, _team);
        t0 = Mark(StepPhase.FwdGelu, t0);
        DenseLinear.Forward(P(tape.G), bt, tape.Hidden, W(n.Fc2W), W(n.Fc2B), e, y, P(_packed), _team);
        t0 = Mark(StepPhase.FwdLinear, t0);
        AddInPlace(y, mid, (long)bt * e);
        Mark(StepPhase.FwdResidual, t0);
    }

    static void AddInPlace(float* y, float* x, long n)
    {
        for (long i = 0; i < n; i++) y[i] += x[i];
    }

    /// <summary>
    /// Back-propagates dL/dlogits [batch, classes] of the last <see cref="Forward"/> into <see cref="Gradients"/>.
    /// </summary>
    public void Backward(ReadOnlySpan<float> dLogits)
    {
        int batch = _batch;
        if (batch == 0) throw new InvalidOperationException("Backward before Forward");
        int t = _c.Tokens, e = _c.EmbedDim, bt = batch * t, k = _c.NumClasses, pre = _c.PrefixTokens;
        if (dLogits.Length != batch * k) throw new InputException("dLogits", $"{dLogits.Length} floats for {batch}×{k}");

        long t0 = Start();
        // Heads: each sees its prefix token's final-norm row; the distilled output averages the two heads.
        float headShare = _c.Distilled ? 0.5f : 1f;
        for (int i = 0; i < batch * k; i++) _dHead[i] = dLogits[i] * headShare;
        var dFinal = _dH; // gradient at the final norm's output, zero except prefix rows
        dFinal.AsSpan(0, bt * e).Clear();
        HeadBackward(_clsRows, 0, batch);
        if (_c.Distilled) HeadBackward(_distRows, 1, batch);

        _d.AsSpan(0, bt * e).Clear();
        t0 = Mark(StepPhase.BwdEmbed, t0);
        NormBackward(P(dFinal), P(_stream[_c.Depth]), bt, W("norm.weight"), P(_finalMean), P(_finalRstd), P(_d), G("norm.weight"), G("norm.bias"));

        for (int i = _c.Depth - 1; i >= 0; i--) BlockBackward(i, batch);
        t0 = Start();

        // Embeddings: pos_embed and the prefix tokens sum over the batch in image order; patch rows feed the conv.
        var d = _d.AsSpan();
        var dPos = Gradients["pos_embed"].AsSpan();
        var dCls = Gradients["cls_token"].AsSpan();
        dPos.Clear(); dCls.Clear();
        var dDist = _c.Distilled ? Gradients["dist_token"].AsSpan() : default;
        dDist.Clear();
        for (int b = 0; b < batch; b++)
            for (int tok = 0; tok < t; tok++)
            {
                var row = d.Slice((b * t + tok) * e, e);
                for (int i = 0; i < e; i++) dPos[tok * e + i] += row[i];
                if (tok == 0) for (int i = 0; i < e; i++) dCls[i] += row[i];
                else if (tok == 1 && _c.Distilled) for (int i = 0; i < e; i++) dDist[i] += row[i];
                else row.CopyTo(_dRows.AsSpan((b * _c.PatchTokens + tok - pre) * e, e));
            }
        Mark(StepPhase.BwdEmbed, t0);
        WeightGrad(P(_dRows), batch * _c.PatchTokens, e, P(_patches), _c.PatchDim, "patch_embed.proj.weight", "patch_embed.proj.bias");
    }

    void WeightGrad(float* dy, int m, int n, float* x, int k, string weight, string bias)
    {
        long t0 = Start();
        DenseLinear.BackwardWeights(dy, m, n, x, k, G(weight), P(_packed), _team, Keep(weight));
        t0 = Mark(StepPhase.BwdLinearWeight, t0);
        DenseLinear.BackwardBias(dy, m, n, G(bias), _team);
        Mark(StepPhase.BwdLinearBias, t0);
    }

    void InputGrad(float* dy, int m, int n, float* w, int k, float* dx)
    {
        long t0 = Start();
        DenseLinear.BackwardInput(dy, m, n, w, k, dx, P(_packed), _team);
        Mark(StepPhase.BwdLinearInput, t0);
    }

    void NormBackward(float* dy, float* x, int rows, float* gamma, float* mean, float* rstd, float* dx, float* dGamma, float* dBeta)
    {
        int e = _c.EmbedDim;
        long t0 = Start();
        NormGrad.BackwardInput(dy, x, rows, e, gamma, mean, rstd, dx, _team);
        t0 = Mark(StepPhase.BwdNormInput, t0);
        NormGrad.BackwardParams(dy, x, rows, e, mean, rstd, dGamma, dBeta, _team);
        Mark(StepPhase.BwdNormParams, t0);
    }

    void HeadBackward(float[] rows, int token, int batch)
    {
        int t = _c.Tokens, e = _c.EmbedDim, k = _c.NumClasses;
        string weight = token == 0 ? "head.weight" : "head_dist.weight", bias = token == 0 ? "head.bias" : "head_dist.bias";
        WeightGrad(P(_dHead), batch, k, P(rows), e, weight, bias);
        InputGrad(P(_dHead), batch, k, W(weight), e, P(_dPrefix));
        for (int b = 0; b < batch; b++) _dPrefix.AsSpan(b * e, e).CopyTo(_dH.AsSpan((b * t + token) * e, e));
    }

    void BlockBackward(int i, int batch)
    {
        var tape = _tapes[i];
        var n = _names[i];
        int e = _c.EmbedDim, bt = batch * _c.Tokens, hid = tape.Hidden;
        float* d = P(_d);
        // FFN branch: y = mid + fc2(gelu(fc1(norm2(mid)))).
        WeightGrad(d, bt, e, P(tape.G), hid, n.Fc2W, n.Fc2B);
        InputGrad(d, bt, e, W(n.Fc2W), hid, P(_dHidden));
        long t0 = Start();
        GeluGrad.Backward(P(tape.U), P(_dHidden), P(_dU), bt, hid, _team);
        Mark(StepPhase.BwdGelu, t0);
        WeightGrad(P(_dU), bt, hid, P(tape.H2), e, n.Fc1W, n.Fc1B);
        InputGrad(P(_dU), bt, hid, W(n.Fc1W), e, P(_dH));
        NormBackward(P(_dH), P(tape.Mid), bt, W(n.Norm2W), P(tape.Mean2), P(tape.Rstd2), d, G(n.Norm2W), G(n.Norm2B));
        // Attention branch: mid = x + proj(attn(qkv(norm1(x)))).
        WeightGrad(d, bt, e, P(tape.A), tape.VTotal, n.ProjW, n.ProjB);
        InputGrad(d, bt, e, W(n.ProjW), tape.VTotal, P(_dA));
        t0 = Start();
        _attention[i].Backward(P(tape.Qkv), P(tape.P), P(_dA), batch, P(_dQkv), _team);
        Mark(StepPhase.BwdAttention, t0);
        WeightGrad(P(_dQkv), bt, tape.QkvRows, P(tape.H1), e, n.QkvW, n.QkvB);
        InputGrad(P(_dQkv), bt, tape.QkvRows, W(n.QkvW), e, P(_dH));
        NormBackward(P(_dH), P(_stream[i]), bt, W(n.Norm1W), P(tape.Mean1), P(tape.Rstd1), d, G(n.Norm1W), G(n.Norm1B));
    }
}
