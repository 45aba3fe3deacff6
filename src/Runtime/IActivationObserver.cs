namespace VitSparse.Runtime;

/// <summary>
/// Sees activations as an <see cref="InferenceSession"/> produces them. The runtime knows nothing of what
/// the observer does with them (pruning criteria calibrate on them).
/// </summary>
public interface IActivationObserver
{
    /// <summary>Block <paramref name="block"/>'s fused QKV output: [images·tokens, rowWidth], rows [q heads | k heads | v heads].</summary>
    void OnQkv(int block, ReadOnlySpan<float> qkv, int images, int tokens, int rowWidth);
}
