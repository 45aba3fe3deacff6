using VitSparse.Kernels;

namespace VitSparse.Runtime.Backends;

/// <summary>
/// A flat float buffer on a backend's device (host memory for the CPU backend, device memory for ILGPU).
/// The host sees its contents only through <see cref="IVitBackend.Upload"/> and <see cref="IVitBackend.Read"/>.
/// </summary>
public abstract class DeviceBuffer : IDisposable
{
    /// <summary>Floats the buffer holds.</summary>
    public abstract long Length { get; }
    /// <summary>Releases the device memory (nothing for host buffers).</summary>
    public virtual void Dispose() { }
}

/// <summary>A linear layer's weight and bias as a backend stores them (packed panels, BSR blocks, device arrays).</summary>
public abstract class DeviceLinear : IDisposable
{
    /// <summary>Output width.</summary>
    public abstract int N { get; }
    /// <summary>Input width.</summary>
    public abstract int K { get; }
    /// <summary>Releases the device memory.</summary>
    public virtual void Dispose() { }
}

/// <summary>A parameter vector (LayerNorm γ or β, class tokens, position embedding) as a backend stores it.</summary>
public abstract class DeviceVector : IDisposable
{
    /// <summary>Floats the vector holds.</summary>
    public abstract int Length { get; }
    /// <summary>Releases the device memory.</summary>
    public virtual void Dispose() { }
}

/// <summary>A ragged head layout (per-head Q/K and V widths) for sequences of a fixed token count, as a backend stores it.</summary>
public abstract class DeviceHeads : IDisposable
{
    /// <summary>The layout.</summary>
    public abstract HeadLayout Layout { get; }
    /// <summary>Tokens per sequence.</summary>
    public abstract int Tokens { get; }
    /// <summary>Releases the device memory.</summary>
    public virtual void Dispose() { }
}

/// <summary>
/// The coarse operations a model's forward is written against, once, for every backend: the CPU SIMD kernels
/// (<see cref="CpuBackend"/>) and the ILGPU kernels (VitSparse.Gpu). Each op is a whole layer (a linear with its
/// fused epilogue, a LayerNorm over all rows, attention over all images and heads), so a backend is free to fuse
/// and launch as it likes and a forward never touches activations itself. Ops are queued in order; the host
/// sees results only through <see cref="Read"/>, which waits for them. Activations are row-major [rows, width]
/// with the row strides given. Swin's window attention (with relative-position bias and shift mask), patch
/// merging and mean pooling are ops of the same coarseness.
/// </summary>
public interface IVitBackend : IDisposable
{
    /// <summary>What runs the ops, as the user named it ("cpu", "gpu:0 (NVIDIA H100)", "ilgpu-cpu").</summary>
    string Device { get; }
    /// <summary>Kernel launches queued so far (0 for the CPU backend, which launches nothing).</summary>
    long Launches { get; }
    /// <summary>Host threads the backend uses for its kernels (1 for a device backend).</summary>
    int Threads { get; }
    /// <summary>When cancelled, ops throw <see cref="OperationCanceledException"/> (between operations, or between a CPU op's chunks).</summary>
    CancellationToken Cancellation { get; set; }

    /// <summary>A buffer of <paramref name="floats"/> floats (contents undefined).</summary>
    DeviceBuffer Allocate(long floats);
    /// <summary>Stores a loaded linear layer (any format) the backend's way; done once per session.</summary>
    DeviceLinear Linear(ILinear layer);
    /// <summary>Stores a parameter vector.</summary>
    DeviceVector Vector(ReadOnlySpan<float> values);
    /// <summary>Stores a head layout for sequences of <paramref name="tokens"/> tokens.</summary>
    DeviceHeads Heads(HeadLayout layout, int tokens);

    /// <summary>Copies host floats to the start of <paramref name="dst"/>.</summary>
    void Upload(ReadOnlySpan<float> host, DeviceBuffer dst);
    /// <summary>Waits for queued ops and returns the first <paramref name="count"/> floats of <paramref name="src"/> (valid until the next op).</summary>
    ReadOnlySpan<float> Read(DeviceBuffer src, long count);
    /// <summary>Waits until every queued op has finished (for timings).</summary>
    void Synchronize();

    /// <summary>NCHW images [batch, C, size, size] to patch rows [batch·(size/patch)², C·patch²] in (c, ky, kx) order.</summary>
    void ExtractPatches(DeviceBuffer images, int batch, int channels, int size, int patch, DeviceBuffer rows);
    /// <summary>y[m, N] (stride ldy) = epilogue(x[m, K] (stride ldx)·Wᵀ + b): bias, bias+GELU, or bias added onto y (residual).</summary>
    void LinearForward(DeviceLinear layer, DeviceBuffer x, int m, int ldx, DeviceBuffer y, int ldy, Epilogue epilogue);
    /// <summary>Row-wise LayerNorm of <paramref name="rows"/> contiguous rows of <paramref name="width"/>; y may be x.</summary>
    void LayerNorm(DeviceBuffer x, int rows, int width, DeviceVector gamma, DeviceVector beta, float eps, DeviceBuffer y);
    /// <summary>
    /// Ragged multi-head attention: for each image and head, softmax(Q·Kᵀ·scale)·V from the fused QKV rows
    /// ([batch·tokens, ldqkv], layout [q heads | k heads | v heads]) into output ([batch·tokens, ldo], heads' V widths side by side).
    /// </summary>
    void Attention(DeviceHeads heads, DeviceBuffer qkv, int batch, int ldqkv, float scale, DeviceBuffer output, int ldo);
    /// <summary>
    /// A ViT's token sequence: per image, the prefix tokens (class, distillation: <paramref name="prefix"/> holds them
    /// back to back) then the patch embeddings, each plus its position embedding, into tokens [batch·(prefix+patches), width].
    /// </summary>
    void AssembleTokens(DeviceBuffer patchEmbeddings, int batch, int patchTokens, int width, DeviceVector prefix, DeviceVector positions, DeviceBuffer tokens);
    /// <summary>Row <paramref name="row"/> of each image's <paramref name="rowsPerImage"/> rows of x, gathered into dst [batch, width].</summary>
    void GatherRows(DeviceBuffer x, int batch, int rowsPerImage, int row, int width, DeviceBuffer dst);
    /// <summary>dst[i] = (a[i] + b[i]) / 2 for the first <paramref name="count"/> floats (a distilled model's two heads).</summary>
    void Average(DeviceBuffer a, DeviceBuffer b, int count, DeviceBuffer dst);

    /// <summary>
    /// Swin's (shifted) window attention over NHWC token maps, softmax(scale·Q·Kᵀ + B + M)·V per image, window and head,
    /// read straight from the unshifted qkv rows [batch·H·W, 3·heads·headDim] ([q heads | k heads | v heads]) into
    /// output [batch·H·W, heads·headDim]: the cyclic shift and the padding to whole windows are index arithmetic.
    /// <paramref name="padQkv"/> is a padded token's qkv row (the qkv bias); <paramref name="bias"/> the expanded
    /// relative position bias [heads][N][stride] (<see cref="Kernels.WindowAttention.ExpandBias"/>); <paramref name="masks"/>
    /// the shift masks (<see cref="Kernels.WindowAttention.ShiftMasks"/>, ignored when the shift is 0; a backend may
    /// instead derive the −100 mask from the window's position).
    /// </summary>
    void WindowAttention(WindowGeometry geometry, DeviceBuffer qkv, int batch, int heads, int headDim, float scale,
        DeviceVector padQkv, DeviceVector bias, DeviceVector masks, DeviceBuffer output);
    /// <summary>Swin's 2×2 patch merge gather: x [batch, H, W, C] (H, W even) to [batch, H/2, W/2, 4C], rows [x(2i,2j) | x(2i+1,2j) | x(2i,2j+1) | x(2i+1,2j+1)].</summary>
    void PatchMerge(DeviceBuffer x, int batch, int height, int width, int channels, DeviceBuffer dst);
    /// <summary>Mean over each image's tokens: x [batch, tokens, C] to dst [batch, C].</summary>
    void MeanPool(DeviceBuffer x, int batch, int tokens, int channels, DeviceBuffer dst);
}
