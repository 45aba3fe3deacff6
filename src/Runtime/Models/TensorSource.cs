using VitSparse.Runtime.Formats;

namespace VitSparse.Runtime.Models;

/// <summary>Where a model's named float tensors come from: a safetensors file, or a seeded generator.</summary>
public interface ITensorSource
{
    /// <summary>Names the source in error messages (a file path, or "seeded weights").</summary>
    string Description { get; }
    /// <summary>Whether a tensor called <paramref name="name"/> exists.</summary>
    bool Contains(string name);
    /// <summary>The shape of tensor <paramref name="name"/>.</summary>
    long[] Shape(string name);
    /// <summary>The values of tensor <paramref name="name"/> as float32, row-major.</summary>
    ReadOnlySpan<float> Floats(string name);
}

/// <summary>
/// A safetensors file as dense tensors (F32 read in place, F16/BF16 converted): a weight stored sparse
/// (<see cref="SparseStorage"/>) appears under its own name with its dense shape, expanded (after every
/// index is checked) when read.
/// </summary>
public sealed class SafeTensorsSource(SafeTensorsFile file) : ITensorSource
{
    readonly Dictionary<string, StoredLayout> _stored = SparseStorage.Read(file);

    /// <inheritdoc/>
    public string Description => file.Path;
    /// <summary>The weights this file stores sparse, with their formats.</summary>
    public IReadOnlyDictionary<string, StoredLayout> Stored => _stored;
    /// <inheritdoc/>
    public bool Contains(string name) => file.Contains(name) || _stored.ContainsKey(name);
    /// <inheritdoc/>
    public long[] Shape(string name) => _stored.TryGetValue(name, out var l) ? [l.Rows, l.Cols] : file.Info(name).Shape;
    /// <inheritdoc/>
    public ReadOnlySpan<float> Floats(string name) => _stored.TryGetValue(name, out var l) ? SparseStorage.Densify(file, name, l) : file.GetFloats(name);
}

/// <summary>
/// Deterministic synthetic weights for a config, the same in C# and in tools/reference (numpy): value i of
/// tensor t is splitmix64(fnv1a64(t) ^ seed + (i+1)·φ), mapped to a uniform in a range that depends on
/// the tensor's role (LayerNorm weights near 1, linears U(±1/√fan_in), small biases and embeddings).
/// Used by `bench` when no checkpoint is given and by the full-size parity test.
/// </summary>
public sealed class SeededWeights(VitConfig config, ulong seed = 0) : ITensorSource
{
    readonly Dictionary<string, long[]> _shapes = VitLayout.ExpectedShapes(config);

    /// <inheritdoc/>
    public string Description => $"seeded weights (seed {seed})";
    /// <inheritdoc/>
    public bool Contains(string name) => _shapes.ContainsKey(name);
    /// <inheritdoc/>
    public long[] Shape(string name) => _shapes[name];

    /// <inheritdoc/>
    public ReadOnlySpan<float> Floats(string name)
    {
        var shape = _shapes[name];
        long count = shape.Aggregate(1L, (a, b) => a * b);
        var data = new float[count];
        Fill(name, shape, seed, data);
        return data;
    }

    /// <summary>Fills <paramref name="dst"/> with the seeded values of tensor <paramref name="name"/>.</summary>
    public static void Fill(string name, long[] shape, ulong seed, Span<float> dst)
    {
        (float scale, float offset) = Range(name, shape);
        ulong state = Fnv1a(name) ^ seed;
        for (int i = 0; i < dst.Length; i++)
        {
            ulong z = SplitMix(state + (ulong)(i + 1) * 0x9E3779B97F4A7C15UL);
            float u = (z >> 40) * (1f / (1 << 24));
            dst[i] = offset + scale * (2f * u - 1f);
        }
    }

    /// <summary>A seeded input batch in [−2, 2), the range of normalised images (tools/reference/seeded.py image_batch).</summary>
    public static void FillInput(Span<float> dst, ulong seed = 0)
    {
        ulong state = Fnv1a("input") ^ seed;
        for (int i = 0; i < dst.Length; i++)
        {
            ulong z = SplitMix(state + (ulong)(i + 1) * 0x9E3779B97F4A7C15UL);
            dst[i] = 4f * ((z >> 40) * (1f / (1 << 24))) - 2f;
        }
    }

    static (float Scale, float Offset) Range(string name, long[] shape)
    {
        bool isNorm = name.Contains("norm", StringComparison.Ordinal);
        if (isNorm && name.EndsWith(".weight", StringComparison.Ordinal)) return (0.1f, 1f);
        if (isNorm) return (0.05f, 0f);
        if (name.EndsWith(".bias", StringComparison.Ordinal)) return (0.02f, 0f);
        if (name.EndsWith(".weight", StringComparison.Ordinal) && shape.Length >= 2)
        {
            long fanIn = 1;
            for (int i = 1; i < shape.Length; i++) fanIn *= shape[i];
            return (1f / MathF.Sqrt(fanIn), 0f);
        }
        return (0.05f, 0f);
    }

    static ulong Fnv1a(string s)
    {
        ulong h = 0xcbf29ce484222325UL;
        foreach (byte b in System.Text.Encoding.UTF8.GetBytes(s)) { h ^= b; h *= 0x100000001b3UL; }
        return h;
    }

    static ulong SplitMix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
