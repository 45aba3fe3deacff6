using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;

namespace VitSparse.Training;

/// <summary>
/// Forward pass that keeps what the backward pass needs, and the hand-written backward pass, for a Swin (timm's
/// SwinTransformer, <see cref="SwinConfig"/>) held in a <see cref="ParameterSet"/>: patch embedding and its norm,
/// stages of (shifted) window-attention blocks with a 2×2 patch merge (gather, LN(4C), bias-free linear) before each
/// stage after the first, final norm, mean pool, head. Activations are NHWC token maps ([images·H·W, C], raster order)
/// as in inference; shifts and padding are index maps inside <see cref="WindowAttentionGrad"/>. All buffers are sized
/// once for a batch capacity; steps at or under it allocate nothing. Gradients are of the loss whose dL/dlogits is
/// handed to <see cref="Backward"/>, and are written (not accumulated) into <see cref="Gradients"/>.
/// </summary>
public sealed unsafe class SwinBackprop : IBackprop
{
    /// <summary>What one block's forward pass keeps: its input, both norms, qkv, attention maps, attention output, the mid-block stream, MLP pre- and post-activation.</summary>
    sealed class BlockTape(long rows, int dim, int hidden, long probabilities)
    {
        public readonly float[] X = Buf(rows * dim), H1 = Buf(rows * dim), Mean1 = Buf(rows), Rstd1 = Buf(rows), Qkv = Buf(rows * 3 * dim),
            P = Buf(probabilities), A = Buf(rows * dim), Mid = Buf(rows * dim), H2 = Buf(rows * dim), Mean2 = Buf(rows), Rstd2 = Buf(rows),
            U = Buf(rows * hidden), G = Buf(rows * hidden);
    }

    /// <summary>What a patch merge keeps: the gathered 2×2 rows [rows, 4C] and their norm.</summary>
    sealed class MergeTape(long rows, int width)
    {
        public readonly float[] In = Buf(rows * width), Norm = Buf(rows * width), Mean = Buf(rows), Rstd = Buf(rows);
    }

    /// <summary>A block's tensor names, built once so a step does not format strings.</summary>
    sealed record BlockNames(string Norm1W, string Norm1B, string Table, string QkvW, string QkvB, string ProjW, string ProjB,
        string Norm2W, string Norm2B, string Fc1W, string Fc1B, string Fc2W, string Fc2B)
    {
        public static BlockNames Of(int s, int b)
        {
            string p = SwinLayout.Block(s, b);
            return new(p + "norm1.weight", p + "norm1.bias", p + "attn.relative_position_bias_table", p + "attn.qkv.weight", p + "attn.qkv.bias",
                p + "attn.proj.weight", p + "attn.proj.bias", p + "norm2.weight", p + "norm2.bias", p + "mlp.fc1.weight", p + "mlp.fc1.bias",
                p + "mlp.fc2.weight", p + "mlp.fc2.bias");
        }
    }

    readonly SwinConfig _c;
    readonly ThreadTeam _team;
    readonly BlockNames[][] _names;
    readonly string[] _mergeNormW, _mergeNormB, _reduction;
    readonly string _headW, _headB;
    readonly WindowAttentionGrad[][] _attention;
    readonly BlockTape[][] _tapes;
    readonly MergeTape?[] _merges;
    // _stageOut[s]: the output of stage s's last block (the next merge's input; the last one feeds the final norm).
    readonly float[][] _stageOut;
    readonly float[] _patches, _embed, _embedMean, _embedRstd, _final, _finalMean, _finalRstd, _pooled, _logits;
    // Scratch shared by all blocks: _wT holds the panel copies of one linear layer's product while it runs.
    readonly float[] _wT, _d, _dH, _dQkv, _dA, _dHidden, _dU, _dGather, _dPad, _dPadSum, _dHead, _dPooled, _noBias;
    int _batch;

    public ParameterSet Parameters { get; }
    public ParameterSet Gradients { get; }
    public int Capacity { get; }

    public SwinBackprop(ParameterSet parameters, int capacity, ThreadTeam team)
    {
        if (parameters.Swin is not { } c) throw new InputException("--weights", $"{parameters.Description} is not a Swin");
        if (capacity < 1) throw new InputException("batch", $"must be at least 1, got {capacity}");
        _c = c;
        Parameters = parameters;
        Gradients = ParameterSet.Zeros(c);
        Capacity = capacity;
        _team = team;
        int stages = c.Stages.Count;
        // Widest per-image activation over the stages (a merge's gathered 4C rows included), attention maps apart.
        long perImage = (long)c.Resolution(0) * c.Resolution(0) * Math.Max(c.PatchDim, c.EmbedDim), perImageP = 0;
        var geometry = new WindowGeometry[stages][];
        for (int s = 0; s < stages; s++)
        {
            var st = c.Stages[s];
            long tokens = (long)c.Resolution(s) * c.Resolution(s);
            perImage = Math.Max(perImage, tokens * Math.Max(3L * st.Dim, st.MlpHidden));
            if (s > 0) perImage = Math.Max(perImage, tokens * 4L * c.Stages[s - 1].Dim);
            geometry[s] = Enumerable.Range(0, st.Depth).Select(b => new WindowGeometry(c.Resolution(s), c.Resolution(s), c.StageWindow(s), b % 2 == 1 ? c.StageShift(s) : 0)).ToArray();
            var g = geometry[s][0];
            perImageP = Math.Max(perImageP, (long)g.Windows * st.Heads * g.Tokens * g.Tokens);
        }
        // Each buffer is one .NET array; refuse a batch whose widest one would not fit, before allocating.
        long widest = Math.Max(perImage, perImageP);
        if (capacity > Array.MaxLength / widest)
            throw new InputException("batch", $"{capacity} images of model '{c.Name}' need more than {Array.MaxLength} floats in one activation; use at most {Array.MaxLength / widest}");

        _names = Enumerable.Range(0, stages).Select(s => Enumerable.Range(0, c.Stages[s].Depth).Select(b => BlockNames.Of(s, b)).ToArray()).ToArray();
        _mergeNormW = Enumerable.Range(0, stages).Select(s => s > 0 ? SwinLayout.Merge(c, s) + "norm.weight" : "").ToArray();
        _mergeNormB = Enumerable.Range(0, stages).Select(s => s > 0 ? SwinLayout.Merge(c, s) + "norm.bias" : "").ToArray();
        _reduction = Enumerable.Range(0, stages).Select(s => s > 0 ? SwinLayout.Merge(c, s) + "reduction.weight" : "").ToArray();
        _headW = SwinLayout.Head(c) + ".weight";
        _headB = SwinLayout.Head(c) + ".bias";
        _attention = Enumerable.Range(0, stages).Select(s => geometry[s].Select(g =>
            new WindowAttentionGrad(g, c.Stages[s].Heads, c.Stages[s].HeadDim, c.AttnScale(s), team.Threads)).ToArray()).ToArray();
        _tapes = new BlockTape[stages][];
        _merges = new MergeTape?[stages];
        _stageOut = new float[stages][];
        int maxDim = 0, padRows = 0;
        for (int s = 0; s < stages; s++)
        {
            var st = c.Stages[s];
            long rows = (long)capacity * c.Resolution(s) * c.Resolution(s);
            _tapes[s] = Enumerable.Range(0, st.Depth).Select(b => new BlockTape(rows, st.Dim, st.MlpHidden, _attention[s][b].ProbabilityFloats(capacity))).ToArray();
            if (s > 0) _merges[s] = new MergeTape(rows, 4 * c.Stages[s - 1].Dim);
            _stageOut[s] = Buf(rows * st.Dim);
            maxDim = Math.Max(maxDim, st.Dim);
            padRows = Math.Max(padRows, _attention[s][0].PadRows(capacity));
        }
        long rows0 = (long)capacity * c.Resolution(0) * c.Resolution(0), most = capacity * perImage;
        int e = c.EmbedDim, f = c.NumFeatures, k = c.NumClasses;
        _patches = Buf(rows0 * c.PatchDim);
        _embed = Buf(rows0 * e); _embedMean = Buf(rows0); _embedRstd = Buf(rows0);
        long lastRows = (long)capacity * c.Resolution(stages - 1) * c.Resolution(stages - 1);
        _final = Buf(lastRows * f); _finalMean = Buf(lastRows); _finalRstd = Buf(lastRows);
        _pooled = Buf((long)capacity * f); _logits = Buf((long)capacity * k);
        // Scratch for the linear products: a weight in panels (forward, dX) or a block of inputs in panels (dW).
        long scratch = Math.Max(Linear(e, c.PatchDim), Linear(k, f));
        for (int s = 0; s < stages; s++)
        {
            var st = c.Stages[s];
            scratch = Math.Max(scratch, Math.Max(Linear(3 * st.Dim, st.Dim), Math.Max(Linear(st.Dim, st.Dim), Math.Max(Linear(st.MlpHidden, st.Dim), Linear(st.Dim, st.MlpHidden)))));
            if (s > 0) scratch = Math.Max(scratch, Linear(st.Dim, 4 * c.Stages[s - 1].Dim));
        }
        _wT = Buf(scratch);
        _d = Buf(most); _dH = Buf(most); _dQkv = Buf(most); _dA = Buf(most); _dHidden = Buf(most); _dU = Buf(most); _dGather = Buf(most);
        _dPad = Buf((long)padRows * 3 * maxDim); _dPadSum = Buf(3L * maxDim);
        _dHead = Buf((long)capacity * k); _dPooled = Buf((long)capacity * f);
        _noBias = Buf(maxDim);
    }

    /// <summary>Scratch floats for a [n, k] linear layer's three products.</summary>
    static long Linear(int n, int k) => Math.Max(DenseLinear.ScratchFloats(n, k), DenseLinear.WeightScratchFloats(k));
    static float[] Buf(long n) => GC.AllocateArray<float>(checked((int)Math.Max(n, 1)), pinned: true);
    static float* P(float[] a) => ParameterSet.Pin(a);
    float* W(string name) => Parameters.Ptr(name);
    float* G(string name) => Gradients.Ptr(name);
    /// <summary>A pruned weight's kept-pattern, or null when all of it trains.</summary>
    byte* Keep(string name) => Parameters.MaskOf(name) is { } m ? (byte*)ParameterSet.PinBytes(m.Keep) : null;
    int Rows(int s, int batch) => batch * _c.Resolution(s) * _c.Resolution(s);

    /// <summary>When set, each pass adds its phases' wall time to it. Swin's weight products include the bias sums and its
    /// norm backward the γ/β sums (one call each), so BwdLinearBias and BwdNormParams stay zero.</summary>
    public StepProfile? Profile { get; set; }
    long Start() => Profile is null ? 0 : StepProfile.Now();
    long Mark(StepPhase phase, long start) => Profile is null ? 0 : Profile.Add(phase, start);
    /// <summary>Where block b of stage s writes its output: the next block's input, or the stage's output.</summary>
    float* BlockOutput(int s, int b) => b + 1 < _tapes[s].Length ? P(_tapes[s][b + 1].X) : P(_stageOut[s]);

    /// <summary>Runs the model on [batch, C, H, W] images, keeping activations; writes [batch, classes] logits.</summary>
    public void Forward(ReadOnlySpan<float> images, int batch, Span<float> logits)
    {
        if (batch < 1 || batch > Capacity) throw new InputException("batch", $"must be between 1 and {Capacity}, got {batch}");
        if (images.Length != (long)batch * _c.ImageElements) throw new InputException("images", $"{images.Length} floats for {batch} images of {_c.ImageElements}");
        if (logits.Length != batch * _c.NumClasses) throw new InputException("logits", $"{logits.Length} floats for {batch}×{_c.NumClasses} logits");
        _batch = batch;
        var c = _c;
        int e = c.EmbedDim, rows0 = Rows(0, batch), last = c.Stages.Count - 1, f = c.NumFeatures, k = c.NumClasses;
        float eps = c.LayerNormEps;

        long t0 = Start();
        Patches.Extract(images, batch, c.InChannels, c.ImageSize, c.PatchSize, _patches);
        DenseLinear.Forward(P(_patches), rows0, c.PatchDim, W("patch_embed.proj.weight"), W("patch_embed.proj.bias"), e, P(_embed), P(_wT), _team);
        t0 = Mark(StepPhase.FwdEmbed, t0);
        NormGrad.Forward(P(_embed), rows0, e, W("patch_embed.norm.weight"), W("patch_embed.norm.bias"), eps, P(_tapes[0][0].X), P(_embedMean), P(_embedRstd), _team);
        Mark(StepPhase.FwdNorm, t0);

        for (int s = 0; s < c.Stages.Count; s++)
        {
            if (s > 0)
            {
                // x [batch, 2r, 2r, prev] → gather 2×2 (x0, x1, x2, x3) → LN(4·prev) → reduction (no bias) → stage input.
                var m = _merges[s]!;
                int prev = c.Stages[s - 1].Dim, rows = Rows(s, batch), side = c.Resolution(s - 1);
                t0 = Start();
                TokenMaps.Merge2x2(_stageOut[s - 1], batch, side, side, prev, m.In, _team);
                NormGrad.Forward(P(m.In), rows, 4 * prev, W(_mergeNormW[s]), W(_mergeNormB[s]), eps, P(m.Norm), P(m.Mean), P(m.Rstd), _team);
                t0 = Mark(StepPhase.FwdNorm, t0);
                DenseLinear.Forward(P(m.Norm), rows, 4 * prev, W(_reduction[s]), null, c.Stages[s].Dim, P(_tapes[s][0].X), P(_wT), _team);
                Mark(StepPhase.FwdLinear, t0);
            }
            for (int b = 0; b < c.Stages[s].Depth; b++) BlockForward(s, b, batch);
        }

        int lastRows = Rows(last, batch), tokens = lastRows / batch;
        t0 = Start();
        NormGrad.Forward(P(_stageOut[last]), lastRows, f, W("norm.weight"), W("norm.bias"), eps, P(_final), P(_finalMean), P(_finalRstd), _team);
        TokenMaps.MeanPool(_final, batch, tokens, f, _pooled);
        t0 = Mark(StepPhase.FwdNorm, t0);
        DenseLinear.Forward(P(_pooled), batch, f, W(_headW), W(_headB), k, P(_logits), P(_wT), _team);
        Mark(StepPhase.FwdLinear, t0);
        _logits.AsSpan(0, batch * k).CopyTo(logits);
    }

    void BlockForward(int s, int b, int batch)
    {
        var tape = _tapes[s][b];
        var n = _names[s][b];
        int d = _c.Stages[s].Dim, hidden = _c.Stages[s].MlpHidden, rows = Rows(s, batch);
        float eps = _c.LayerNormEps;
        float* x = P(tape.X), mid = P(tape.Mid), y = BlockOutput(s, b);
        // mid = x + proj(window attention(norm1(x))); y = mid + fc2(gelu(fc1(norm2(mid)))).
        long t0 = Start();
        NormGrad.Forward(x, rows, d, W(n.Norm1W), W(n.Norm1B), eps, P(tape.H1), P(tape.Mean1), P(tape.Rstd1), _team);
        t0 = Mark(StepPhase.FwdNorm, t0);
        DenseLinear.Forward(P(tape.H1), rows, d, W(n.QkvW), W(n.QkvB), 3 * d, P(tape.Qkv), P(_wT), _team);
        t0 = Mark(StepPhase.FwdLinear, t0);
        _attention[s][b].Forward(P(tape.Qkv), W(n.QkvB), W(n.Table), batch, P(tape.P), P(tape.A), _team);
        t0 = Mark(StepPhase.FwdAttention, t0);
        DenseLinear.Forward(P(tape.A), rows, d, W(n.ProjW), W(n.ProjB), d, mid, P(_wT), _team);
        t0 = Mark(StepPhase.FwdLinear, t0);
        AddInPlace(mid, x, (long)rows * d);
        t0 = Mark(StepPhase.FwdResidual, t0);
        NormGrad.Forward(mid, rows, d, W(n.Norm2W), W(n.Norm2B), eps, P(tape.H2), P(tape.Mean2), P(tape.Rstd2), _team);
        t0 = Mark(StepPhase.FwdNorm, t0);
        DenseLinear.Forward(P(tape.H2), rows, d, W(n.Fc1W), W(n.Fc1B), hidden, P(tape.U), P(_wT), _team);
        t0 = Mark(StepPhase.FwdLinear, t0);
        GeluGrad.Forward(P(tape.U), P(tape.G), rows, hidden, _team);
        t0 = Mark(StepPhase.FwdGelu, t0);
        DenseLinear.Forward(P(tape.G), rows, hidden, W(n.Fc2W), W(n.Fc2B), d, y, P(_wT), _team);
        t0 = Mark(StepPhase.FwdLinear, t0);
        AddInPlace(y, mid, (long)rows * d);
        Mark(StepPhase.FwdResidual, t0);
    }

    static void AddInPlace(float* y, float* x, long n)
    {
        for (long i = 0; i < n; i++) y[i] += x[i];
    }

    /// <summary>Back-propagates dL/dlogits [batch, classes] of the last <see cref="Forward"/> into <see cref="Gradients"/>.</summary>
    public void Backward(ReadOnlySpan<float> dLogits)
    {
        int batch = _batch;
        if (batch == 0) throw new InvalidOperationException("Backward before Forward");
        var c = _c;
        int k = c.NumClasses, f = c.NumFeatures, last = c.Stages.Count - 1, lastRows = Rows(last, batch), tokens = lastRows / batch;
        if (dLogits.Length != batch * k) throw new InputException("dLogits", $"{dLogits.Length} floats for {batch}×{k}");

        // Head on the pooled features, then the mean pool spreads each image's gradient evenly over its tokens.
        dLogits.CopyTo(_dHead);
        WeightGrad(P(_dHead), batch, k, P(_pooled), f, _headW, G(_headB));
        InputGrad(P(_dHead), batch, k, W(_headW), f, P(_dPooled));
        long t0 = Start();
        float inv = 1f / tokens;
        for (int b = 0; b < batch; b++)
        {
            var src = _dPooled.AsSpan(b * f, f);
            for (int t = 0; t < tokens; t++)
            {
                var dst = _dH.AsSpan((b * tokens + t) * f, f);
                for (int i = 0; i < f; i++) dst[i] = src[i] * inv;
            }
        }
        _d.AsSpan(0, lastRows * f).Clear();
        Mark(StepPhase.BwdEmbed, t0);
        NormBackward(P(_dH), P(_stageOut[last]), lastRows, f, W("norm.weight"), P(_finalMean), P(_finalRstd), P(_d), G("norm.weight"), G("norm.bias"));

        for (int s = last; s >= 0; s--)
        {
            for (int b = c.Stages[s].Depth - 1; b >= 0; b--) BlockBackward(s, b, batch);
            if (s > 0) MergeBackward(s, batch);
        }

        // _d is now dL/d(patch norm output).
        int e = c.EmbedDim, rows0 = Rows(0, batch);
        _dH.AsSpan(0, rows0 * e).Clear();
        NormBackward(P(_d), P(_embed), rows0, e, W("patch_embed.norm.weight"), P(_embedMean), P(_embedRstd), P(_dH),
            G("patch_embed.norm.weight"), G("patch_embed.norm.bias"));
        WeightGrad(P(_dH), rows0, e, P(_patches), c.PatchDim, "patch_embed.proj.weight", G("patch_embed.proj.bias"));
    }

    void WeightGrad(float* dy, int m, int n, float* x, int k, string weight, float* dBias)
    {
        long t0 = Start();
        DenseLinear.BackwardWeights(dy, m, n, x, k, G(weight), dBias, P(_wT), _team, Keep(weight));
        Mark(StepPhase.BwdLinearWeight, t0);
    }

    void InputGrad(float* dy, int m, int n, float* w, int k, float* dx)
    {
        long t0 = Start();
        DenseLinear.BackwardInput(dy, m, n, w, k, dx, P(_wT), _team);
        Mark(StepPhase.BwdLinearInput, t0);
    }

    void NormBackward(float* dy, float* x, int rows, int width, float* gamma, float* mean, float* rstd, float* dx, float* dGamma, float* dBeta)
    {
        long t0 = Start();
        NormGrad.Backward(dy, x, rows, width, gamma, mean, rstd, dx, dGamma, dBeta, _team);
        Mark(StepPhase.BwdNormInput, t0);
    }

    /// <summary>_d: dL/d(stage s input) → dL/d(stage s−1 output), through reduction, LN(4C) and the 2×2 gather.</summary>
    void MergeBackward(int s, int batch)
    {
        var m = _merges[s]!;
        int prev = _c.Stages[s - 1].Dim, dim = _c.Stages[s].Dim, rows = Rows(s, batch), side = _c.Resolution(s - 1);
        WeightGrad(P(_d), rows, dim, P(m.Norm), 4 * prev, _reduction[s], P(_noBias));
        InputGrad(P(_d), rows, dim, W(_reduction[s]), 4 * prev, P(_dH));
        _dGather.AsSpan(0, rows * 4 * prev).Clear();
        NormBackward(P(_dH), P(m.In), rows, 4 * prev, W(_mergeNormW[s]), P(m.Mean), P(m.Rstd), P(_dGather), G(_mergeNormW[s]), G(_mergeNormB[s]));
        // The gather is a permutation of the previous map's rows: its backward scatters each part back.
        long t0 = Start();
        _team.For(batch * (side / 2), new SplitBody(P(_dGather), P(_d), side, prev));
        Mark(StepPhase.BwdEmbed, t0);
    }

    void BlockBackward(int s, int b, int batch)
    {
        var tape = _tapes[s][b];
        var n = _names[s][b];
        var attention = _attention[s][b];
        int dim = _c.Stages[s].Dim, hid = _c.Stages[s].MlpHidden, rows = Rows(s, batch);
        float* d = P(_d);
        // MLP branch: y = mid + fc2(gelu(fc1(norm2(mid)))).
        WeightGrad(d, rows, dim, P(tape.G), hid, n.Fc2W, G(n.Fc2B));
        InputGrad(d, rows, dim, W(n.Fc2W), hid, P(_dHidden));
        long t0 = Start();
        GeluGrad.Backward(P(tape.U), P(_dHidden), P(_dU), rows, hid, _team);
        Mark(StepPhase.BwdGelu, t0);
        WeightGrad(P(_dU), rows, hid, P(tape.H2), dim, n.Fc1W, G(n.Fc1B));
        InputGrad(P(_dU), rows, hid, W(n.Fc1W), dim, P(_dH));
        NormBackward(P(_dH), P(tape.Mid), rows, dim, W(n.Norm2W), P(tape.Mean2), P(tape.Rstd2), d, G(n.Norm2W), G(n.Norm2B));
        // Attention branch: mid = x + proj(window attention(qkv(norm1(x)))).
        WeightGrad(d, rows, dim, P(tape.A), dim, n.ProjW, G(n.ProjB));
        InputGrad(d, rows, dim, W(n.ProjW), dim, P(_dA));
        t0 = Start();
        attention.Backward(P(tape.Qkv), W(n.QkvB), P(tape.P), P(_dA), batch, P(_dQkv), G(n.Table), P(_dPad), P(_dPadSum), _team);
        Mark(StepPhase.BwdAttention, t0);
        WeightGrad(P(_dQkv), rows, 3 * dim, P(tape.H1), dim, n.QkvW, G(n.QkvB));
        if (attention.Pads)
        {
            // Padded tokens are the qkv bias itself (zeros after norm1): their q, k, v gradients are the bias's too.
            float* db = G(n.QkvB);
            for (int i = 0; i < 3 * dim; i++) db[i] += _dPadSum[i];
        }
        InputGrad(P(_dQkv), rows, 3 * dim, W(n.QkvW), dim, P(_dH));
        NormBackward(P(_dH), P(tape.X), rows, dim, W(n.Norm1W), P(tape.Mean1), P(tape.Rstd1), d, G(n.Norm1W), G(n.Norm1B));
    }

    /// <summary>Inverse of <see cref="TokenMaps.Merge2x2"/>: rows [images, H/2, W/2, 4C] back to [images, H, W, C]; one item per output row pair.</summary>
    readonly struct SplitBody(float* gathered, float* dst, int side, int c) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            int half = side / 2;
            for (int item = start; item < end; item++)
            {
                int image = item / half, i = item % half;
                for (int j = 0; j < half; j++)
                {
                    float* src = gathered + (((long)image * half + i) * half + j) * 4 * c;
                    for (int part = 0; part < 4; part++)
                    {
                        int y = 2 * i + (part & 1), x = 2 * j + (part >> 1);
                        new ReadOnlySpan<float>(src + part * c, c).CopyTo(new Span<float>(dst + (((long)image * side + y) * side + x) * c, c));
                    }
                }
            }
        }
    }
}
