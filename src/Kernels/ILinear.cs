namespace VitSparse.Kernels;

/// <summary>
/// A linear layer Y[M,N] = X[M,K]·W[N,K]ᵀ + b whatever W's format (dense packed panels, block-sparse,
/// unstructured sparse), so a model holds its layers without knowing how each one stores its weight.
/// </summary>
public interface ILinear
{
    int N { get; }
    int K { get; }
    /// <summary>Multiply-adds per row of X in this format: N·K for dense, the kept weights (with block padding) for sparse.</summary>
    long MacsPerRow { get; }
    /// <summary>x is [m, K] with row stride ldx (≥ K), y is [m, N] with row stride ldy (≥ N); the same bits for any team size.</summary>
    void Forward(ReadOnlySpan<float> x, int m, int ldx, Span<float> y, int ldy, Epilogue epilogue, ThreadTeam team);
}
