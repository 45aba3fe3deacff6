namespace VitSparse.Kernels;

/// <summary>What a linear layer does with its result after X·Wᵀ + b.</summary>
public enum Epilogue
{
    /// <summary>Y = X·Wᵀ + b.</summary>
    Bias,
    /// <summary>Y = GELU(X·Wᵀ + b), exact erf form.</summary>
    BiasGelu,
    /// <summary>Y += X·Wᵀ + b: the residual add of a pre-norm block, done while the tile is in registers' reach.</summary>
    BiasAccumulate,
}

/// <summary>
/// A linear layer Y[M,N] = X[M,K]·W[N,K]ᵀ + b with W packed once, at model load, into column panels
/// of NR = 2 vectors: panel p holds W[p·NR .. p·NR+NR, :] transposed to [K][NR], zero-padded past N
/// (<see cref="PanelGemm"/>, with every column of K kept). Any M, N and K run without padding the model:
/// ragged N is a partially used last panel, ragged M a shorter row tile.
/// </summary>
public sealed class PackedLinear : ILinear
{
    public int N => _gemm.N;
    public int K => _gemm.K;
    public SimdWidth Width => _gemm.Width;
    public long MacsPerRow => (long)N * K;
    readonly PanelGemm _gemm;

    PackedLinear(PanelGemm gemm) => _gemm = gemm;

    /// <summary>Packs W [n,k] row-major (PyTorch's Linear layout) and an optional bias [n].</summary>
    public static PackedLinear Pack(ReadOnlySpan<float> weight, int n, int k, ReadOnlySpan<float> bias, SimdWidth width = 0)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "output width must be positive");
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "input width must be positive");
        if (weight.Length != (long)n * k)
            throw new ArgumentException($"weight has {weight.Length} elements, expected {n}×{k}", nameof(weight));
        if (!bias.IsEmpty && bias.Length != n)
            throw new ArgumentException($"bias has {bias.Length} elements, expected {n}", nameof(bias));
        if (width == 0) width = Isa.Best == SimdWidth.Scalar ? SimdWidth.V128 : Isa.Best;
        int nr = 2 * Isa.LanesOf(width);
        int panels = (n + nr - 1) / nr;
        if ((long)panels * k * nr > Array.MaxLength)
            throw new ArgumentException($"a {n}×{k} weight packs to more than {Array.MaxLength} floats", nameof(weight));
        var row0 = new int[panels];
        var rows = new int[panels];
        for (int p = 0; p < panels; p++) { row0[p] = p * nr; rows[p] = nr; }
        return new PackedLinear(PanelGemm.Pack(n, k, width, row0, rows, (_, runs) => runs.Add((0, k)),
            new PanelGemm.RowMajor(weight, k), bias, "weight"));
    }

    /// <summary>The weight as W [N,K] row-major and the bias [N] again (for a backend that stores weights its own way).</summary>
    public void CopyDense(Span<float> weight, Span<float> bias) => _gemm.CopyDense(weight, bias);

    /// <summary>
    /// Runs the layer on M rows. x is [m, K] with row stride ldx (≥ K), y is [m, N] with row stride ldy (≥ N).
    /// Each output element is written by exactly one work item, so the result is the same for any team size.
    /// </summary>
    public void Forward(ReadOnlySpan<float> x, int m, int ldx, Span<float> y, int ldy, Epilogue epilogue, ThreadTeam team) =>
        _gemm.Forward(x, m, ldx, y, ldy, epilogue, team);
}
