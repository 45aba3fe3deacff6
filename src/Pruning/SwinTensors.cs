using VitSparse.Runtime;
using VitSparse.Runtime.Models;

namespace VitSparse.Pruning;

/// <summary>
/// A Swin's tensors in memory, in the order of <see cref="SwinLayout.ExpectedShapes"/>: what DIMAP ranks and cuts.
/// It is an <see cref="ITensorSource"/>, so a pruned result is saved with <see cref="SwinFile.Save"/>.
/// </summary>
public sealed class SwinTensors : ITensorSource
{
    /// <summary>The architecture.</summary>
    public SwinConfig Config { get; }
    /// <summary>Tensors by timm name, in the layout's order.</summary>
    public IReadOnlyList<KeyValuePair<string, Tensor>> Tensors { get; }
    readonly Dictionary<string, Tensor> _byName;

    /// <summary>Wraps tensors that already match <paramref name="config"/> (every expected name, in any order).</summary>
    public SwinTensors(SwinConfig config, IReadOnlyDictionary<string, Tensor> tensors)
    {
        Config = config;
        var shapes = SwinLayout.ExpectedShapes(config);
        foreach (var name in shapes.Keys)
            if (!tensors.ContainsKey(name)) throw new ModelException($"missing tensor '{name}' (architecture '{config.Name}')", name);
        Tensors = shapes.Keys.Select(n => new KeyValuePair<string, Tensor>(n, tensors[n])).ToList();
        _byName = Tensors.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
    }

    /// <summary>
    /// Copies every tensor the config names out of a source (a file, sparse-stored weights expanded, or seeded weights),
    /// checking shapes; a weight stored sparse may have its matrix shape (a conv flattened to [out, in·p·p]).
    /// </summary>
    public static SwinTensors From(ITensorSource src, SwinConfig config)
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var stored = (src as SafeTensorsSource)?.Stored;
        foreach (var (name, shape) in SwinLayout.ExpectedShapes(config.Validate()))
        {
            if (!src.Contains(name)) throw new ModelException($"{src.Description}: missing tensor '{name}' (architecture '{config.Name}')", name);
            var actual = src.Shape(name);
            bool flattened = stored != null && stored.ContainsKey(name) && actual.Length == 2 && actual[0] == shape[0]
                && actual[1] == shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            if (!flattened && !actual.SequenceEqual(shape))
                throw new ModelException($"{src.Description}: tensor '{name}' has shape [{string.Join(",", actual)}], the architecture '{config.Name}' needs [{string.Join(",", shape)}]", name);
            tensors[name] = new Tensor(shape, src.Floats(name).ToArray());
        }
        return new SwinTensors(config, tensors);
    }

    /// <inheritdoc/>
    public string Description => $"in-memory {Config.Name}";
    /// <inheritdoc/>
    public bool Contains(string name) => _byName.ContainsKey(name);
    /// <inheritdoc/>
    public long[] Shape(string name) => Get(name).Shape;
    /// <inheritdoc/>
    public ReadOnlySpan<float> Floats(string name) => Get(name).Data;
    /// <summary>Non-zero values over every tensor: the paper's "non-zero parameters".</summary>
    public long NonZeros() => Tensors.Sum(kv => (long)kv.Value.Data.AsSpan().Length - kv.Value.Data.AsSpan().Count(0f));

    Tensor Get(string name) => _byName.TryGetValue(name, out var t) ? t : throw new ModelException($"missing tensor '{name}'", name);
}
