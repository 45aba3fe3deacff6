using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;

namespace VitSparse.Training;

/// <summary>
/// Every tensor of a DeiT under its timm name, as plain row-major float arrays that training may change
/// (a <see cref="VitModel"/> packs its weights and is immutable). The same class holds gradients.
/// Arrays are pinned, so the backward pass can hand raw pointers to its thread team.
/// </summary>
public sealed class ParameterSet : ITensorSource
{
    readonly Dictionary<string, float[]> _values;

    public VitConfig Config { get; }
    /// <summary>Tensor names in timm order (<see cref="VitLayout.ExpectedShapes"/>).</summary>
    public IReadOnlyList<string> Names { get; }
    public IReadOnlyDictionary<string, long[]> Shapes { get; }
    public string Description { get; }

    ParameterSet(VitConfig config, string description)
    {
        Config = config.Validate();
        Description = description;
        var shapes = VitLayout.ExpectedShapes(Config);
        Shapes = shapes;
        Names = shapes.Keys.ToArray();
        _values = shapes.ToDictionary(kv => kv.Key, kv => GC.AllocateArray<float>(checked((int)kv.Value.Aggregate(1L, (a, b) => a * b)), pinned: true), StringComparer.Ordinal);
    }

    public float[] this[string name] => _values.TryGetValue(name, out var v) ? v : throw new ModelException($"{Description}: no tensor '{name}'", name);

    public static ParameterSet Zeros(VitConfig config) => new(config, "gradients");

    /// <summary>Copies every tensor the config needs from a source, refusing missing, misshapen or NaN/Inf tensors.</summary>
    public static ParameterSet From(ITensorSource src, VitConfig config)
    {
        var set = new ParameterSet(config, src.Description);
        foreach (var name in set.Names)
        {
            if (!src.Contains(name)) throw new ModelException($"{src.Description}: missing tensor '{name}' (architecture '{config.Name}')", name);
            var shape = src.Shape(name);
            if (!shape.SequenceEqual(set.Shapes[name]))
                throw new ModelException($"{src.Description}: tensor '{name}' has shape [{string.Join(",", shape)}], but the architecture '{config.Name}' needs [{string.Join(",", set.Shapes[name])}]", name);
            var data = src.Floats(name);
            for (int i = 0; i < data.Length; i++)
                if (!float.IsFinite(data[i])) throw new ModelException($"{src.Description}: tensor '{name}' has a NaN/Inf value at flat index {i}; cannot train or differentiate it", name);
            data.CopyTo(set._values[name]);
        }
        return set;
    }

    /// <summary>Loads a safetensors checkpoint (our compact format, or timm DeiT with <paramref name="arch"/> for head counts).</summary>
    public static ParameterSet Load(string path, string? arch)
    {
        using var file = new SafeTensorsFile(path);
        return From(new SafeTensorsSource(file), VitModel.ReadConfig(file, arch));
    }

    public void Clear()
    {
        foreach (var v in _values.Values) Array.Clear(v);
    }

    public bool Contains(string name) => _values.ContainsKey(name);
    public long[] Shape(string name) => Shapes[name];
    public ReadOnlySpan<float> Floats(string name) => this[name];

    /// <summary>Pointer to a pinned tensor, for kernels run on a thread team.</summary>
    internal unsafe float* Ptr(string name) => Pin(this[name]);

    internal static unsafe float* Pin(float[] pinned) => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned));
}
