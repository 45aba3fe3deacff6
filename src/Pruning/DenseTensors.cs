using VitSparse.Runtime;
using VitSparse.Runtime.Models;

namespace VitSparse.Pruning;

/// <summary>A tensor held in memory while it is being cut: shape and row-major data.</summary>
public sealed record Tensor(long[] Shape, float[] Data)
{
    /// <summary>Rows: the first dimension.</summary>
    public int Rows => (int)Shape[0];
    /// <summary>Elements per row.</summary>
    public int RowLength => (int)(Data.Length / Math.Max(1, Shape[0]));
}

/// <summary>
/// A DeiT's weights in memory with their config: the input and output of structural surgery. It is an
/// <see cref="ITensorSource"/>, so a pruned result can be run (VitModel.FromSource) or saved (VitModel.Save).
/// </summary>
public sealed class DenseTensors : ITensorSource
{
    /// <summary>The architecture these tensors fill.</summary>
    public VitConfig Config { get; }
    /// <summary>Tensors by timm name.</summary>
    public Dictionary<string, Tensor> Tensors { get; }

    /// <summary>Wraps tensors that already match <paramref name="config"/>.</summary>
    public DenseTensors(VitConfig config, Dictionary<string, Tensor> tensors)
    {
        Config = config;
        Tensors = tensors;
    }

    /// <summary>Copies every tensor the config names out of a source (file or seeded weights), checking shapes.</summary>
    public static DenseTensors From(ITensorSource src, VitConfig config)
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, shape) in VitLayout.ExpectedShapes(config.Validate()))
        {
            if (!src.Contains(name)) throw new ModelException($"{src.Description}: missing tensor '{name}'", name);
            if (!src.Shape(name).SequenceEqual(shape))
                throw new ModelException($"{src.Description}: tensor '{name}' has shape [{string.Join(",", src.Shape(name))}], the architecture needs [{string.Join(",", shape)}]", name);
            tensors[name] = new Tensor(shape, src.Floats(name).ToArray());
        }
        return new DenseTensors(config, tensors);
    }

    /// <summary>The tensor called <paramref name="name"/>; a missing one is a <see cref="ModelException"/>.</summary>
    public Tensor this[string name] => Tensors.TryGetValue(name, out var t) ? t : throw new ModelException($"missing tensor '{name}'", name);

    /// <inheritdoc/>
    public string Description => $"in-memory {Config.Name}";
    /// <inheritdoc/>
    public bool Contains(string name) => Tensors.ContainsKey(name);
    /// <inheritdoc/>
    public long[] Shape(string name) => this[name].Shape;
    /// <inheritdoc/>
    public ReadOnlySpan<float> Floats(string name) => this[name].Data;

    /// <summary>A deep copy: surgery on it leaves this one unchanged.</summary>
    public DenseTensors Clone() => new(Config, Tensors.ToDictionary(kv => kv.Key, kv => kv.Value with { Data = (float[])kv.Value.Data.Clone() }));
}
