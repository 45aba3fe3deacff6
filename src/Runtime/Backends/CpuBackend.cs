using VitSparse.Kernels;

namespace VitSparse.Runtime.Backends;

/// <summary>
/// The SIMD CPU kernels behind <see cref="IVitBackend"/>: buffers are host arrays, layers are the loaded
/// <see cref="ILinear"/> objects themselves (nothing is copied or repacked), every op runs on the backend's
/// <see cref="ThreadTeam"/> and has finished when it returns.
/// </summary>
public sealed class CpuBackend : IVitBackend
{
    readonly ThreadTeam _team;
    readonly SimdWidth _simd;
    // Attention scratch per sequence length, each sized for the widest heads seen (sessions create heads once, up front).
    readonly Dictionary<int, RaggedAttention> _attention = [];
    int _attQk, _attV;
    // Swin's window attention scratch, sized for the largest window and head width seen so far.
    Kernels.WindowAttention? _window;
    int _windowSide, _windowHeadDim;
    bool _disposed;

    /// <summary>A backend with <paramref name="threads"/> intra-op threads (0: one per core), kernels at vector width <paramref name="simd"/> (0: the machine's best).</summary>
    public CpuBackend(int threads = 0, SimdWidth simd = 0)
    {
        _team = threads <= 0 ? ThreadTeam.ForMachine() : new ThreadTeam(threads);
        _simd = simd;
    }

    /// <inheritdoc/>
    public string Device => "cpu";
    /// <inheritdoc/>
    public long Launches => 0;
    /// <inheritdoc/>
    public int Threads => _team.Threads;
    /// <inheritdoc/>
    public CancellationToken Cancellation { get => _team.Cancellation; set => _team.Cancellation = value; }

    sealed class HostBuffer(float[] data) : DeviceBuffer
    {
        public readonly float[] Data = data;
        public override long Length => Data.Length;
    }

    sealed class HostLinear(ILinear layer) : DeviceLinear
    {
        public readonly ILinear Layer = layer;
        public override int N => Layer.N;
        public override int K => Layer.K;
    }

    sealed class HostVector(float[] data) : DeviceVector
    {
        public readonly float[] Data = data;
        public override int Length => Data.Length;
    }

    sealed class HostHeads(HeadLayout layout, int tokens) : DeviceHeads
    {
        public override HeadLayout Layout { get; } = layout;
        public override int Tokens { get; } = tokens;
    }

    static float[] A(DeviceBuffer b) => ((HostBuffer)b).Data;
    static float[] A(DeviceVector v) => ((HostVector)v).Data;

    /// <inheritdoc/>
    public DeviceBuffer Allocate(long floats) => new HostBuffer(new float[floats]);
    /// <inheritdoc/>
    public DeviceLinear Linear(ILinear layer) => new HostLinear(layer);
    /// <inheritdoc/>
    public DeviceVector Vector(ReadOnlySpan<float> values) => new HostVector(values.ToArray());

    /// <inheritdoc/>
    public DeviceHeads Heads(HeadLayout layout, int tokens)
    {
        if (layout.MaxQk > _attQk || layout.MaxV > _attV)
        {
            _attQk = Math.Max(_attQk, layout.MaxQk); _attV = Math.Max(_attV, layout.MaxV);
            foreach (int t in _attention.Keys.ToArray()) _attention[t] = new RaggedAttention(t, _attQk, _attV, _team.Threads, _simd);
        }
        if (!_attention.ContainsKey(tokens)) _attention[tokens] = new RaggedAttention(tokens, _attQk, _attV, _team.Threads, _simd);
        return new HostHeads(layout, tokens);
    }

    /// <inheritdoc/>
    public void Upload(ReadOnlySpan<float> host, DeviceBuffer dst) => host.CopyTo(A(dst));
    /// <inheritdoc/>
    public ReadOnlySpan<float> Read(DeviceBuffer src, long count) => A(src).AsSpan(0, checked((int)count));
    /// <inheritdoc/>
    public void Synchronize() { }

    /// <inheritdoc/>
    public void ExtractPatches(DeviceBuffer images, int batch, int channels, int size, int patch, DeviceBuffer rows) =>
        Patches.Extract(A(images), batch, channels, size, patch, A(rows));

    /// <inheritdoc/>
    public void LinearForward(DeviceLinear layer, DeviceBuffer x, int m, int ldx, DeviceBuffer y, int ldy, Epilogue epilogue) =>
        ((HostLinear)layer).Layer.Forward(A(x), m, ldx, A(y), ldy, epilogue, _team);

    /// <inheritdoc/>
    public void LayerNorm(DeviceBuffer x, int rows, int width, DeviceVector gamma, DeviceVector beta, float eps, DeviceBuffer y) =>
        // A few rows (the class tokens before the head) are not worth waking the team for.
        Kernels.LayerNorm.Forward(A(x), rows, width, width, A(gamma), A(beta), eps, A(y), width, rows < 2 * _team.Threads * 8 ? ThreadTeam.Single : _team, _simd);

    /// <inheritdoc/>
    public void Attention(DeviceHeads heads, DeviceBuffer qkv, int batch, int ldqkv, float scale, DeviceBuffer output, int ldo)
        => _attention[heads.Tokens].Forward(heads.Layout, A(qkv), batch, ldqkv, scale, A(output), ldo, _team);

    /// <inheritdoc/>
    public void AssembleTokens(DeviceBuffer patchEmbeddings, int batch, int patchTokens, int width, DeviceVector prefix, DeviceVector positions, DeviceBuffer tokens)
    {
        float[] cls = A(prefix), pos = A(positions), emb = A(patchEmbeddings), x = A(tokens);
        int e = width, pre = cls.Length / e, n = pre + patchTokens;
        for (int b = 0; b < batch; b++)
        {
            var img = x.AsSpan(b * n * e, n * e);
            System.Numerics.Tensors.TensorPrimitives.Add(cls, pos.AsSpan(0, pre * e), img[..(pre * e)]);
            System.Numerics.Tensors.TensorPrimitives.Add(emb.AsSpan(b * patchTokens * e, patchTokens * e), pos.AsSpan(pre * e, patchTokens * e), img[(pre * e)..]);
        }
    }

    /// <inheritdoc/>
    public void GatherRows(DeviceBuffer x, int batch, int rowsPerImage, int row, int width, DeviceBuffer dst)
    {
        float[] src = A(x), d = A(dst);
        for (int i = 0; i < batch; i++) src.AsSpan((i * rowsPerImage + row) * width, width).CopyTo(d.AsSpan(i * width, width));
    }

    /// <inheritdoc/>
    public void Average(DeviceBuffer a, DeviceBuffer b, int count, DeviceBuffer dst)
    {
        float[] x = A(a), y = A(b), z = A(dst);
        for (int i = 0; i < count; i++) z[i] = 0.5f * (x[i] + y[i]);
    }

    /// <inheritdoc/>
    public void WindowAttention(WindowGeometry geometry, DeviceBuffer qkv, int batch, int heads, int headDim, float scale,
        DeviceVector padQkv, DeviceVector bias, DeviceVector masks, DeviceBuffer output)
    {
        if (_window == null || geometry.Window > _windowSide || headDim > _windowHeadDim)
        {
            _windowSide = Math.Max(_windowSide, geometry.Window); _windowHeadDim = Math.Max(_windowHeadDim, headDim);
            _window = new Kernels.WindowAttention(_windowSide, _windowHeadDim, _team.Threads, _simd);
        }
        _window.Forward(geometry, A(qkv), batch, heads, headDim, scale, A(padQkv), A(bias), A(masks), A(output), _team);
    }

    /// <inheritdoc/>
    public void PatchMerge(DeviceBuffer x, int batch, int height, int width, int channels, DeviceBuffer dst) =>
        TokenMaps.Merge2x2(A(x), batch, height, width, channels, A(dst), _team);

    /// <inheritdoc/>
    public void MeanPool(DeviceBuffer x, int batch, int tokens, int channels, DeviceBuffer dst) =>
        TokenMaps.MeanPool(A(x), batch, tokens, channels, A(dst));

    /// <summary>Stops the backend's threads.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _team.Dispose();
    }
}
