using ILGPU;
using Half = ILGPU.Half;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Backends;

namespace VitSparse.Gpu;

/// <summary>
/// <see cref="IVitBackend"/> on an ILGPU accelerator (CUDA, OpenCL, or ILGPU's CPU accelerator for tests).
/// Weights are uploaded once when the session is created; activations live in device buffers the session reuses;
/// every op is a launch on the accelerator's default stream, and nothing waits until <see cref="Read"/>.
/// </summary>
public sealed class IlgpuBackend : IVitBackend
{
    readonly Context _context;
    readonly Accelerator _acc;
    readonly bool _half;
    readonly MemoryBuffer1D<Half, Stride1D.Dense> _noHalf;
    readonly MemoryBuffer1D<float, Stride1D.Dense> _noFloat;
    float[] _host = [];
    long _launches, _allocated;
    bool _disposed;

    readonly Action<KernelConfig, ArrayView<float>, int, int, ArrayView<float>, ArrayView<Half>, int, int, int, ArrayView<float>, ArrayView<float>, int, int, int> _dense;
    readonly Action<Index1D, ArrayView<float>, int, int, int, ArrayView<float>, ArrayView<float>, int, int> _reducePartials;
    /// <summary>Split-K partial sums, grown on demand and reused.</summary>
    MemoryBuffer1D<float, Stride1D.Dense>? _partials;
    readonly Action<KernelConfig, ArrayView<float>, int, ArrayView<float>, ArrayView<Half>, ArrayView<int>, ArrayView<int>, BsrShape, ArrayView<float>, ArrayView<float>, int> _bsr;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, ArrayView<float>> _layerNorm;
    readonly Action<KernelConfig, ArrayView<float>, int, ArrayView<float>, int, ArrayView<int>, AttentionShape> _attention;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int> _patches;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> _assemble;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int> _gather;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> _average;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, WindowShape> _window;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int> _merge;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int> _pool;

    /// <summary>Largest dynamic shared memory a kernel asks for, in floats (48 KiB: what every CUDA device gives without opting in).</summary>
    const int SharedFloats = 12 * 1024;

    internal IlgpuBackend(Context context, Accelerator accelerator, string device, bool halfWeights)
    {
        _context = context;
        _acc = accelerator;
        _half = halfWeights;
        Device = $"{device} ({accelerator.Name}{(halfWeights ? ", fp16 weights" : "")})";
        SplitKBelowTiles = 2 * accelerator.NumMultiprocessors;
        try
        {
            _noHalf = _acc.Allocate1D<Half>(1);
            _noFloat = _acc.Allocate1D<float>(1);
            _dense = _acc.LoadStreamKernel<ArrayView<float>, int, int, ArrayView<float>, ArrayView<Half>, int, int, int, ArrayView<float>, ArrayView<float>, int, int, int>(GemmKernels.Dense);
            _reducePartials = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, int, int, ArrayView<float>, ArrayView<float>, int, int>(GemmKernels.ReducePartials);
            _bsr = _acc.LoadStreamKernel<ArrayView<float>, int, ArrayView<float>, ArrayView<Half>, ArrayView<int>, ArrayView<int>, BsrShape, ArrayView<float>, ArrayView<float>, int>(GemmKernels.BsrPacked);
            _layerNorm = _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, ArrayView<float>>(VitKernels.LayerNorm);
            _attention = _acc.LoadStreamKernel<ArrayView<float>, int, ArrayView<float>, int, ArrayView<int>, AttentionShape>(VitKernels.Attention);
            _patches = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>(VitKernels.Patches);
            _assemble = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(VitKernels.AssembleTokens);
            _gather = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>(VitKernels.GatherRows);
            _average = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(VitKernels.Average);
            _window = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, WindowShape>(SwinKernels.WindowAttention);
            _merge = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>(SwinKernels.PatchMerge);
            _pool = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(SwinKernels.MeanPool);
        }
        catch (Exception e) when (e is not VitSparseException)
        {
            _acc.Dispose(); _context.Dispose();
            throw new DeviceException($"{device}: compiling the kernels failed: {e.Message}", e);
        }
    }

    /// <summary>
    /// A dense GEMM with fewer 64×64 output tiles than this splits K into slices (each at least
    /// <see cref="MinSliceK"/> deep, at most 8), so that small-batch layers with a long K (DeiT's fc2 at batch 1:
    /// 24 tiles, K = 1536) fill the device instead of running 24 long groups. Default: twice the multiprocessors.
    /// </summary>
    public int SplitKBelowTiles { get; set; }

    /// <summary>The least K a split-K slice sums.</summary>
    public const int MinSliceK = 256;

    /// <summary>K slices for a GEMM of <paramref name="tiles"/> output tiles and depth <paramref name="k"/> (1: no split).</summary>
    public static int KSlices(int tiles, int k, int belowTiles)
    {
        if (tiles >= belowTiles || k < 2 * MinSliceK) return 1;
        return Math.Min(Math.Min(k / MinSliceK, (belowTiles + tiles - 1) / tiles), 8);
    }

    /// <inheritdoc/>
    public string Device { get; }
    /// <inheritdoc/>
    public long Launches => _launches;
    /// <inheritdoc/>
    public int Threads => 1;
    /// <inheritdoc/>
    public CancellationToken Cancellation { get; set; }
    /// <summary>Bytes of device memory this backend holds (weights and activations).</summary>
    public long AllocatedBytes => _allocated;

    sealed class GpuBuffer(MemoryBuffer1D<float, Stride1D.Dense> buffer, IlgpuBackend owner) : DeviceBuffer
    {
        public readonly MemoryBuffer1D<float, Stride1D.Dense> Buffer = buffer;
        public ArrayView<float> View => Buffer.View;
        public override long Length => Buffer.Length;
        public override void Dispose() { owner._allocated -= 4 * Buffer.Length; Buffer.Dispose(); }
    }

    sealed class GpuVector(GpuBuffer data) : DeviceVector
    {
        public readonly GpuBuffer Data = data;
        public override int Length => (int)Data.Length;
        public override void Dispose() => Data.Dispose();
    }

    sealed class GpuLinear : DeviceLinear
    {
        public required int n, k;
        public override int N => n;
        public override int K => k;
        public required MemoryBuffer1D<float, Stride1D.Dense>? Values32;
        public required MemoryBuffer1D<Half, Stride1D.Dense>? Values16;
        public required MemoryBuffer1D<float, Stride1D.Dense> Bias;
        public MemoryBuffer1D<int, Stride1D.Dense>? BlockCols, RowPtr;
        public int BlockHeight, BlockWidth, RowsPerGroup;
        public required Action<long> Release;
        public override void Dispose()
        {
            long bytes = (Values32?.LengthInBytes ?? 0) + (Values16?.LengthInBytes ?? 0) + Bias.LengthInBytes + (BlockCols?.LengthInBytes ?? 0) + (RowPtr?.LengthInBytes ?? 0);
            Values32?.Dispose(); Values16?.Dispose(); Bias.Dispose(); BlockCols?.Dispose(); RowPtr?.Dispose();
            Release(bytes);
        }
    }

    sealed class GpuHeads(HeadLayout layout, int tokens, MemoryBuffer1D<int, Stride1D.Dense> info, int rowBlock) : DeviceHeads
    {
        public override HeadLayout Layout { get; } = layout;
        public override int Tokens { get; } = tokens;
        public readonly MemoryBuffer1D<int, Stride1D.Dense> Info = info;
        public readonly int RowBlock = rowBlock;
        public override void Dispose() => Info.Dispose();
    }

    static ArrayView<float> V(DeviceBuffer b) => ((GpuBuffer)b).View;
    static ArrayView<float> V(DeviceVector v) => ((GpuVector)v).Data.View;

    /// <summary>Free device memory as the driver reports it (CUDA), else the device's memory less what this backend holds.</summary>
    public long FreeBytes => _acc is CudaAccelerator cuda ? cuda.GetFreeMemory() : _acc.MemorySize - _allocated;

    MemoryBuffer1D<T, Stride1D.Dense> Alloc<T>(long count, string what) where T : unmanaged
    {
        long bytes = count * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        long free = FreeBytes;
        if (bytes > free)
            throw OutOfMemory(what, bytes, free, null);
        try
        {
            var b = _acc.Allocate1D<T>(Math.Max(1, count));
            _allocated += b.LengthInBytes;
            return b;
        }
        catch (Exception e) when (e is OutOfMemoryException or AcceleratorException)
        {
            throw OutOfMemory(what, bytes, free, e);
        }
    }

    DeviceException OutOfMemory(string what, long bytes, long free, Exception? inner) => new(
        $"{Device}: out of device memory allocating {what} ({Mib(bytes)}); this session holds {Mib(_allocated)} (weights and activations so far), the device has {Mib(free)} free of {Mib(_acc.MemorySize)}", inner);

    static string Mib(long bytes) => $"{bytes / (1024.0 * 1024):0.0} MiB";

    DeviceException LaunchFailed(string kernel, Exception e) => new($"{Device}: kernel '{kernel}' failed: {e.Message}", e);

    /// <inheritdoc/>
    public DeviceBuffer Allocate(long floats) => new GpuBuffer(Alloc<float>(floats, $"an activation buffer of {floats} floats"), this);

    /// <inheritdoc/>
    public DeviceVector Vector(ReadOnlySpan<float> values)
    {
        var b = new GpuBuffer(Alloc<float>(values.Length, "a parameter vector"), this);
        Upload(values, b);
        return new GpuVector(b);
    }

    /// <inheritdoc/>
    public DeviceLinear Linear(ILinear layer)
    {
        int n = layer.N, k = layer.K;
        var dense = new float[(long)n * k];
        var bias = new float[n];
        switch (layer)
        {
            case PackedLinear p: p.CopyDense(dense, bias); break;
            case BsrLinear b: b.CopyDense(dense, bias); break;
            // Unstructured sparsity has no GPU kernel: the layer runs dense (its zeros multiplied).
            case CsrLinear c: c.CopyDense(dense, bias); break;
            default: throw new DeviceException($"{Device}: no GPU form for a linear layer of type {layer.GetType().Name}");
        }
        var biasBuf = Alloc<float>(n, "a bias");
        biasBuf.View.CopyFromCPU(_acc.DefaultStream, (ReadOnlySpan<float>)bias);
        if (layer is BsrLinear bsr && BsrRowsPerGroup(bsr.BlockHeight, bsr.BlockWidth) is int rows and > 0)
        {
            var (values, cols, rowPtr) = BsrLinear.ToBlocks(dense, n, k, bsr.BlockHeight, bsr.BlockWidth);
            var colBuf = Alloc<int>(cols.Length, "block columns");
            var ptrBuf = Alloc<int>(rowPtr.Length, "block row pointers");
            if (cols.Length > 0) colBuf.View.SubView(0, cols.Length).CopyFromCPU(_acc.DefaultStream, (ReadOnlySpan<int>)cols);
            ptrBuf.View.CopyFromCPU(_acc.DefaultStream, (ReadOnlySpan<int>)rowPtr);
            var (v32, v16) = StoreWeights(values);
            return new GpuLinear
            {
                n = n, k = k, Values32 = v32, Values16 = v16, Bias = biasBuf, BlockCols = colBuf, RowPtr = ptrBuf,
                BlockHeight = bsr.BlockHeight, BlockWidth = bsr.BlockWidth, RowsPerGroup = rows, Release = b => _allocated -= b,
            };
        }
        var (d32, d16) = StoreWeights(dense);
        return new GpuLinear { n = n, k = k, Values32 = d32, Values16 = d16, Bias = biasBuf, Release = b => _allocated -= b };
    }

    /// <summary>Rows of X per BSR group: a group's outputs fit 4 per thread and its shared block plus X tile fit 48 KiB; 0 when no shape fits (the layer then runs dense).</summary>
    internal static int BsrRowsPerGroup(int bh, int bw)
    {
        int byOutputs = GemmKernels.BsrOutputsPerThread * GemmKernels.Threads / bh;
        int byShared = (SharedFloats - GemmKernels.BsrSharedFloats(bh, bw, 0)) / bw;
        return Math.Max(0, Math.Min(Math.Min(byOutputs, byShared), 128));
    }

    (MemoryBuffer1D<float, Stride1D.Dense>?, MemoryBuffer1D<Half, Stride1D.Dense>?) StoreWeights(float[] values)
    {
        if (_half)
        {
            var h = new Half[values.Length];
            for (int i = 0; i < h.Length; i++) h[i] = (Half)values[i];
            var b16 = Alloc<Half>(h.Length, "fp16 weights");
            if (h.Length > 0) b16.View.SubView(0, h.Length).CopyFromCPU(_acc.DefaultStream, (ReadOnlySpan<Half>)h);
            return (null, b16);
        }
        var b32 = Alloc<float>(values.Length, "weights");
        if (values.Length > 0) b32.View.SubView(0, values.Length).CopyFromCPU(_acc.DefaultStream, (ReadOnlySpan<float>)values);
        return (b32, null);
    }

    /// <inheritdoc/>
    public DeviceHeads Heads(HeadLayout layout, int tokens)
    {
        var info = new int[4 * layout.Heads];
        int q = 0, v = 0;
        for (int h = 0; h < layout.Heads; h++)
        {
            info[4 * h] = q; info[4 * h + 1] = layout.QkWidths[h]; info[4 * h + 2] = v; info[4 * h + 3] = layout.VWidths[h];
            q += layout.QkWidths[h]; v += layout.VWidths[h];
        }
        int rowBlock = Math.Min(VitKernels.MaxRowBlock, (SharedFloats - VitKernels.KeyTile * VitKernels.KeyStride(layout.MaxQk)) / (layout.MaxQk + tokens + 2));
        if (rowBlock < 1)
            throw new DeviceException($"{Device}: attention over {tokens} tokens with heads up to {layout.MaxQk} wide does not fit 48 KiB of shared memory");
        var buf = Alloc<int>(info.Length, "a head layout");
        buf.View.CopyFromCPU(_acc.DefaultStream, (ReadOnlySpan<int>)info);
        return new GpuHeads(layout, tokens, buf, rowBlock);
    }

    /// <inheritdoc/>
    public void Upload(ReadOnlySpan<float> host, DeviceBuffer dst)
    {
        if (host.Length == 0) return;
        ((GpuBuffer)dst).Buffer.View.SubView(0, host.Length).CopyFromCPU(_acc.DefaultStream, host);
    }

    /// <inheritdoc/>
    public ReadOnlySpan<float> Read(DeviceBuffer src, long count)
    {
        if (_host.Length < count) _host = new float[count];
        var span = _host.AsSpan(0, checked((int)count));
        try
        {
            _acc.DefaultStream.Synchronize();
            if (count > 0) ((GpuBuffer)src).Buffer.View.SubView(0, count).CopyToCPU(_acc.DefaultStream, span);
        }
        catch (Exception e) when (e is not VitSparseException) { throw LaunchFailed("(a queued kernel, reported at synchronisation)", e); }
        return span;
    }

    /// <inheritdoc/>
    public void Synchronize()
    {
        try { _acc.DefaultStream.Synchronize(); }
        catch (Exception e) when (e is not VitSparseException) { throw LaunchFailed("(a queued kernel, reported at synchronisation)", e); }
    }

    static int Groups(long count, int per) => checked((int)((count + per - 1) / per));

    /// <inheritdoc/>
    public void ExtractPatches(DeviceBuffer images, int batch, int channels, int size, int patch, DeviceBuffer rows)
    {
        int grid = size / patch;
        long count = (long)batch * grid * grid * channels * patch * patch;
        Cancellation.ThrowIfCancellationRequested();
        try { _patches(checked((int)count), V(images), V(rows), channels, size, patch); }
        catch (Exception e) when (e is not VitSparseException) { throw LaunchFailed("patches", e); }
        _launches++;
    }

    /// <inheritdoc/>
    public void LinearForward(DeviceLinear layer, DeviceBuffer x, int m, int ldx, DeviceBuffer y, int ldy, Epilogue epilogue)
    {
        var w = (GpuLinear)layer;
        if (m <= 0) return;
        int ep = epilogue switch { Epilogue.BiasGelu => GemmKernels.EpGelu, Epilogue.BiasAccumulate => GemmKernels.EpAccumulate, _ => GemmKernels.EpBias };
        ArrayView<float> v32 = w.Values32 is { } f ? f.View : _noFloat.View;
        ArrayView<Half> v16 = w.Values16 is { } h ? h.View : _noHalf.View;
        int half = w.Values16 != null ? 1 : 0;
        Cancellation.ThrowIfCancellationRequested();
        if (w.BlockCols is { } cols)
        {
            var shape = new BsrShape { Ldx = ldx, K = w.K, N = w.N, BlockHeight = w.BlockHeight, BlockWidth = w.BlockWidth, RowsPerGroup = w.RowsPerGroup, Half = half, Epilogue = ep };
            int blockRows = (w.N + w.BlockHeight - 1) / w.BlockHeight;
            var config = new KernelConfig(new Index2D(Groups(m, w.RowsPerGroup), blockRows), new Index2D(GemmKernels.Threads, 1),
                SharedMemoryConfig.RequestDynamic<float>(GemmKernels.BsrSharedFloats(w.BlockHeight, w.BlockWidth, w.RowsPerGroup)));
            try { _bsr(config, V(x), m, v32, v16, cols.View, w.RowPtr!.View, shape, w.Bias.View, V(y), ldy); }
            catch (Exception e) when (e is not VitSparseException) { throw LaunchFailed("gemm_bsr", e); }
        }
        else
        {
            int gm = Groups(m, GemmKernels.TileM), gn = Groups(w.N, GemmKernels.TileN);
            int slices = KSlices(gm * gn, w.K, SplitKBelowTiles), kSlice = w.K;
            if (slices > 1)
            {
                kSlice = ((w.K + slices - 1) / slices + GemmKernels.TileK - 1) / GemmKernels.TileK * GemmKernels.TileK;
                slices = (w.K + kSlice - 1) / kSlice;
            }
            var config = new KernelConfig(new Index3D(gm, gn, slices), new Index3D(GemmKernels.Threads, 1, 1));
            try
            {
                if (slices == 1) _dense(config, V(x), ldx, m, v32, v16, half, w.K, w.N, w.Bias.View, V(y), ldy, ep, kSlice);
                else
                {
                    var partials = Partials((long)slices * m * w.N);
                    _dense(config, V(x), ldx, m, v32, v16, half, w.K, w.N, w.Bias.View, partials, w.N, GemmKernels.EpPartial, kSlice);
                    _reducePartials(m * w.N, partials, slices, m, w.N, w.Bias.View, V(y), ldy, ep);
                    _launches++;
                }
            }
            catch (Exception e) when (e is not VitSparseException) { throw LaunchFailed(slices == 1 ? "gemm_dense" : "gemm_dense (split-K)", e); }
        }
        _launches++;
    }

    ArrayView<float> Partials(long floats)
    {
        if (_partials == null || _partials.Length < floats)
        {
            if (_partials != null) { _allocated -= _partials.LengthInBytes; _partials.Dispose(); _partials = null; }
            _partials = Alloc<float>(floats, "split-K partial sums");
        }
        return _partials.View;
    }

    /// <inheritdoc/>
    public void LayerNorm(DeviceBuffer x, int rows, int width, DeviceVector gamma, DeviceVector beta, float eps, DeviceBuffer y)
    {
        if (rows <= 0) return;
        Cancellation.ThrowIfCancellationRequested();
        try { _layerNorm(new KernelConfig(rows, VitKernels.Threads), V(x), V(gamma), V(beta), width, eps, V(y)); }
        catch (Exception e) when (e is not VitSparseException) { throw LaunchFailed("layer_norm", e); }
        _launches++;
    }

    /// <inheritdoc/>
    public void Attention(DeviceHeads heads, DeviceBuffer qkv, int batch, int ldqkv, float scale, DeviceBuffer output, int ldo)
    {
        var hd = (GpuHeads)heads;
        var l = hd.Layout;
        int n = hd.Tokens, rb = hd.RowBlock, groups = checked(batch * l.Heads * ((n + rb - 1) / rb));
        var shape = new AttentionShape { Tokens = n, Heads = l.Heads, QkTotal = l.QkTotal, MaxQk = l.MaxQk, RowBlock = rb, Scale = scale };
        var config = new KernelConfig(new Index1D(groups), new Index1D(VitKernels.Threads),
            SharedMemoryConfig.RequestDynamic<float>(VitKernels.AttentionSharedFloats(rb, l.MaxQk, n)));
        Cancellation.ThrowIfCancellationRequested();
        try { _attention(config, V(qkv), ldqkv, V(output), ldo, hd.Info.View, shape); }
        catch (Exception e) when (e is not VitSparseException) { throw LaunchFailed("ragged_attention", e); }
        _launches++;
    }

    /// <inheritdoc/>
    public void AssembleTokens(DeviceBuffer patchEmbeddings, int batch, int patchTokens, int width, DeviceVector prefix, DeviceVector positions, DeviceBuffer tokens)
    {
        int pre = prefix.Length / width;
        long count = (long)batch * (pre + patchTokens) * width;
        Cancellation.ThrowIfCancellationRequested();
        try { _assemble(checked((int)count), V(patchEmbeddings), V(prefix), V(positions), V(tokens), pre, patchTokens, width); }
        catch (Exception e) when (e is not VitSparseException) { throw LaunchFailed("assemble_tokens", e); }
        _launches++;
    }

    /// <inheritdoc/>
    public void GatherRows(DeviceBuffer x, int batch, int rowsPerImage, int row, int width, DeviceBuffer dst)
    {
        Cancellation.ThrowIfCancellationRequested();
        try { _gather(batch * width, V(x), V(dst), rowsPerImage, row, width); }
        catch (Exception e) when (e is not VitSparseException) { throw LaunchFailed("gather_rows", e); }
        _launches++;
    }

    /// <inheritdoc/>
    public void Average(DeviceBuffer a, DeviceBuffer b, int count, DeviceBuffer dst)
    {
        Cancellation.ThrowIfCancellationRequested();
        try { _average(count, V(a), V(b), V(dst)); }
        catch (Exception e) when (e is not VitSparseException) { throw LaunchFailed("average", e); }
        _launches++;
    }

    /// <inheritdoc/>
    public void WindowAttention(WindowGeometry geometry, DeviceBuffer qkv, int batch, int heads, int headDim, float scale,
        DeviceVector padQkv, DeviceVector bias, DeviceVector masks, DeviceBuffer output)
    {
        var g = geometry;
        if (g.Window < 1 || g.Height < 1 || g.Width < 1 || g.Shift < 0 || g.Shift >= g.Window)
            throw new ArgumentException($"window geometry {g} is not a map of positive size with 0 ≤ shift < window", nameof(geometry));
        // The shift mask is derived in the kernel from each window's place, so masks is not read here.
        var shape = new WindowShape { Height = g.Height, Width = g.Width, Window = g.Window, Shift = g.Shift, Heads = heads, HeadDim = headDim, Stride = g.Stride, Scale = scale };
        long count = (long)batch * g.Height * g.Width * heads * headDim;
        Cancellation.ThrowIfCancellationRequested();
        try { _window(checked((int)count), V(qkv), V(padQkv), V(bias), V(output), shape); }
        catch (Exception e) when (e is not VitSparseException) { throw LaunchFailed("window_attention", e); }
        _launches++;
    }

    /// <inheritdoc/>
    public void PatchMerge(DeviceBuffer x, int batch, int height, int width, int channels, DeviceBuffer dst)
    {
        if (height % 2 != 0 || width % 2 != 0) throw new ArgumentException($"a {height}×{width} map does not merge 2×2", nameof(height));
        long count = (long)batch * height * width * channels;
        Cancellation.ThrowIfCancellationRequested();
        try { _merge(checked((int)count), V(x), V(dst), height, width, channels); }
        catch (Exception e) when (e is not VitSparseException) { throw LaunchFailed("patch_merge", e); }
        _launches++;
    }

    /// <inheritdoc/>
    public void MeanPool(DeviceBuffer x, int batch, int tokens, int channels, DeviceBuffer dst)
    {
        Cancellation.ThrowIfCancellationRequested();
        try { _pool(batch * channels, V(x), V(dst), tokens, channels); }
        catch (Exception e) when (e is not VitSparseException) { throw LaunchFailed("mean_pool", e); }
        _launches++;
    }

    /// <summary>Waits for the device, then releases the accelerator and the ILGPU context.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try { _acc.DefaultStream.Synchronize(); } catch (Exception e) when (e is not OutOfMemoryException) { }
        _noHalf.Dispose(); _noFloat.Dispose(); _partials?.Dispose();
        _acc.Dispose();
        _context.Dispose();
    }
}
