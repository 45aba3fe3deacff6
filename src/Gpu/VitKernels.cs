using ILGPU;
using ILGPU.Algorithms;

namespace VitSparse.Gpu;

/// <summary>The kernels of a ViT forward other than the linears: LayerNorm, ragged attention and the data movement around them.</summary>
static class VitKernels
{
    /// <summary>Threads per group of the LayerNorm and attention kernels.</summary>
    public const int Threads = 64;
    /// <summary>Threads that share one query row of the attention's softmax.</summary>
    const int RowLanes = 4;
    /// <summary>Keys staged in shared memory at a time.</summary>
    public const int KeyTile = 32;
    /// <summary>Query rows per attention group at most (Threads / RowLanes).</summary>
    public const int MaxRowBlock = Threads / RowLanes;

    /// <summary>One group per row: two-pass mean and variance with shared-memory tree sums, then y = (x−μ)·rstd·γ + β. y may be x.</summary>
    public static void LayerNorm(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, int width, float eps, ArrayView<float> y)
    {
        var red = SharedMemory.Allocate<float>(Threads);
        int t = Group.IdxX;
        long row = (long)Grid.IdxX * width;
        float s = 0f;
        for (int i = t; i < width; i += Threads) s += x[row + i];
        float mean = GroupSum(red, t, s) / width;
        float ss = 0f;
        for (int i = t; i < width; i += Threads) { float d = x[row + i] - mean; ss += d * d; }
        float rstd = 1f / XMath.Sqrt(GroupSum(red, t, ss) / width + eps);
        for (int i = t; i < width; i += Threads) y[row + i] = (x[row + i] - mean) * rstd * gamma[i] + beta[i];
    }

    static float GroupSum(ArrayView<float> red, int t, float v)
    {
        red[t] = v;
        Group.Barrier();
        for (int half = Threads / 2; half > 0; half /= 2)
        {
            if (t < half) red[t] += red[t + half];
            Group.Barrier();
        }
        float total = red[0];
        Group.Barrier();
        return total;
    }

    /// <summary>
    /// Ragged multi-head attention, fused per (image, head, block of query rows): the block's Q rows and tiles of
    /// 32 keys are staged in shared memory, the rb×tokens scores stay there (never in global memory), a stable
    /// softmax (max subtracted, 4 threads per row) turns them into probabilities, and ·V is summed into the output.
    /// heads holds per head [Q offset, Q/K width, V offset, V width] (a device buffer: one compiled kernel serves
    /// every pruned layout). Grid: images·heads·rowBlocks groups of 64; dynamic shared memory
    /// <see cref="AttentionSharedFloats"/>.
    /// </summary>
    public static void Attention(ArrayView<float> qkv, int ldq, ArrayView<float> output, int ldo, ArrayView<int> heads, AttentionShape s)
    {
        var shared = SharedMemory.GetDynamic<float>();
        int t = Group.IdxX, rb = s.RowBlock, n = s.Tokens, rowBlocks = (n + rb - 1) / rb;
        int g = Grid.IdxX, block = g % rowBlocks, h = g / rowBlocks % s.Heads, image = g / rowBlocks / s.Heads;
        int qOff = heads[4 * h], dqk = heads[4 * h + 1], vOff = heads[4 * h + 2], dv = heads[4 * h + 3];
        int kOff = s.QkTotal + qOff, vCol = 2 * s.QkTotal + vOff, r0 = block * rb;
        // K rows are staged at an odd stride: the 32 lanes of a warp read 32 different keys at the same d, which at an
        // even stride (64) would all fall into one shared-memory bank.
        int ks = KeyStride(dqk);
        int qsAt = 0, ksAt = rb * s.MaxQk, sAt = ksAt + KeyTile * KeyStride(s.MaxQk), statAt = sAt + rb * n;
        long imageRow = (long)image * n;

        for (int e = t; e < rb * dqk; e += Threads)
        {
            int r = e / dqk, d = e % dqk;
            shared[qsAt + r * dqk + d] = r0 + r < n ? qkv[(imageRow + r0 + r) * ldq + qOff + d] : 0f;
        }
        for (int j0 = 0; j0 < n; j0 += KeyTile)
        {
            Group.Barrier();
            for (int e = t; e < KeyTile * dqk; e += Threads)
            {
                int j = e / dqk, d = e % dqk;
                shared[ksAt + j * ks + d] = j0 + j < n ? qkv[(imageRow + j0 + j) * ldq + kOff + d] : 0f;
            }
            Group.Barrier();
            for (int e = t; e < rb * KeyTile; e += Threads)
            {
                int r = e / KeyTile, j = e % KeyTile;
                if (j0 + j >= n) continue;
                float acc = 0f;
                for (int d = 0; d < dqk; d++) acc += shared[qsAt + r * dqk + d] * shared[ksAt + j * ks + d];
                shared[sAt + r * n + j0 + j] = acc * s.Scale;
            }
        }
        Group.Barrier();

        // Stable softmax: RowLanes threads per row find its max, exponentiate, and sum.
        int row = t / RowLanes, lane = t % RowLanes;
        var red = SharedMemory.Allocate<float>(Threads);
        float mx = float.NegativeInfinity;
        if (row < rb) for (int j = lane; j < n; j += RowLanes) mx = XMath.Max(mx, shared[sAt + row * n + j]);
        red[t] = mx;
        Group.Barrier();
        if (row < rb && lane == 0)
        {
            float m = red[t];
            for (int l = 1; l < RowLanes; l++) m = XMath.Max(m, red[t + l]);
            shared[statAt + row] = m;
        }
        Group.Barrier();
        float sum = 0f;
        if (row < rb)
        {
            float m = shared[statAt + row];
            for (int j = lane; j < n; j += RowLanes)
            {
                float p = XMath.Exp(shared[sAt + row * n + j] - m);
                shared[sAt + row * n + j] = p;
                sum += p;
            }
        }
        red[t] = sum;
        Group.Barrier();
        if (row < rb && lane == 0)
        {
            float total = 0f;
            for (int l = 0; l < RowLanes; l++) total += red[t + l];
            shared[statAt + rb + row] = 1f / total;
        }
        Group.Barrier();

        // P·V: consecutive threads take consecutive V columns (coalesced reads of each key's V row).
        for (int e = t; e < rb * dv; e += Threads)
        {
            int r = e / dv, c = e % dv;
            if (r0 + r >= n) continue;
            // Four independent sums (keys j ≡ 0, 1, 2, 3 mod 4): four V loads in flight instead of one.
            float acc0 = 0f, acc1 = 0f, acc2 = 0f, acc3 = 0f;
            long at = imageRow * ldq + vCol + c;
            int j = 0;
            for (; j + 3 < n; j += 4)
            {
                acc0 += shared[sAt + r * n + j] * qkv[at + (long)j * ldq];
                acc1 += shared[sAt + r * n + j + 1] * qkv[at + (long)(j + 1) * ldq];
                acc2 += shared[sAt + r * n + j + 2] * qkv[at + (long)(j + 2) * ldq];
                acc3 += shared[sAt + r * n + j + 3] * qkv[at + (long)(j + 3) * ldq];
            }
            for (; j < n; j++) acc0 += shared[sAt + r * n + j] * qkv[at + (long)j * ldq];
            output[(imageRow + r0 + r) * ldo + vOff + c] = (acc0 + acc1 + (acc2 + acc3)) * shared[statAt + rb + r];
        }
    }

    /// <summary>Shared-memory stride of a staged K row of width <paramref name="width"/>: the width if odd, else one more (no bank conflicts).</summary>
    public static int KeyStride(int width) => width | 1;

    /// <summary>Dynamic shared memory of <see cref="Attention"/>, in floats.</summary>
    public static int AttentionSharedFloats(int rowBlock, int maxQk, int tokens) => rowBlock * maxQk + KeyTile * KeyStride(maxQk) + rowBlock * tokens + 2 * rowBlock;

    /// <summary>im2col for a stride = kernel convolution: one thread per element of the patch rows [batch·grid², C·p·p].</summary>
    public static void Patches(Index1D i, ArrayView<float> images, ArrayView<float> rows, int channels, int size, int patch)
    {
        int grid = size / patch, rowLen = channels * patch * patch;
        int r = i / rowLen, o = i % rowLen;
        int b = r / (grid * grid), gy = r / grid % grid, gx = r % grid;
        int c = o / (patch * patch), ky = o / patch % patch, kx = o % patch;
        rows[i] = images[((long)(b * channels + c) * size + gy * patch + ky) * size + gx * patch + kx];
    }

    /// <summary>Token sequence: prefix tokens then patch embeddings, each plus its position embedding; one thread per element.</summary>
    public static void AssembleTokens(Index1D i, ArrayView<float> embedded, ArrayView<float> prefix, ArrayView<float> pos, ArrayView<float> tokens,
        int prefixTokens, int patchTokens, int width)
    {
        int n = prefixTokens + patchTokens, j = i % width, tok = i / width % n, b = i / width / n;
        float v = tok < prefixTokens ? prefix[tok * width + j] : embedded[((long)b * patchTokens + tok - prefixTokens) * width + j];
        tokens[i] = v + pos[tok * width + j];
    }

    /// <summary>dst[b, j] = x[b·rowsPerImage + row, j].</summary>
    public static void GatherRows(Index1D i, ArrayView<float> x, ArrayView<float> dst, int rowsPerImage, int row, int width)
    {
        int b = i / width, j = i % width;
        dst[i] = x[((long)b * rowsPerImage + row) * width + j];
    }

    /// <summary>dst = (a + b)/2 elementwise.</summary>
    public static void Average(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> dst) => dst[i] = 0.5f * (a[i] + b[i]);
}

/// <summary>The shape arguments of <see cref="VitKernels.Attention"/>.</summary>
struct AttentionShape
{
    /// <summary>Tokens per image.</summary>
    public int Tokens;
    /// <summary>Heads of the layer.</summary>
    public int Heads;
    /// <summary>Σ Q/K widths (where K starts in a QKV row).</summary>
    public int QkTotal;
    /// <summary>Widest Q/K head (shared-memory stride of the staged Q and K).</summary>
    public int MaxQk;
    /// <summary>Query rows per group.</summary>
    public int RowBlock;
    /// <summary>Softmax scale.</summary>
    public float Scale;
}
