using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;

namespace VitSparse.Training;

/// <summary>
/// Every tensor of a DeiT or a Swin under its timm name, as plain row-major float arrays that training may change
/// (a <see cref="VitModel"/> or <see cref="SwinModel"/> packs its weights and is immutable). The same class holds gradients.
/// Arrays are pinned, so the backward pass can hand raw pointers to its thread team.
/// </summary>
public sealed class ParameterSet : ITensorSource
{
    readonly Dictionary<string, float[]> _values;
    readonly Dictionary<string, WeightMask> _masks = new(StringComparer.Ordinal);

    readonly VitConfig? _vit;

    /// <summary>The DeiT's config; a Swin set has none (<see cref="Swin"/>).</summary>
    public VitConfig Config => _vit ?? throw new InvalidOperationException($"{Description} holds a Swin ('{Model.Name}'), not a DeiT");
    /// <summary>The Swin's config, or null for a DeiT.</summary>
    public SwinConfig? Swin { get; }
    /// <summary>The model's config, either family.</summary>
    public IImageModelConfig Model { get; }
    /// <summary>Tensor names in timm order (<see cref="VitLayout.ExpectedShapes"/> or <see cref="SwinLayout.ExpectedShapes"/>).</summary>
    public IReadOnlyList<string> Names { get; }
    public IReadOnlyDictionary<string, long[]> Shapes { get; }
    public string Description { get; }

    ParameterSet(VitConfig config, string description) : this(config.Validate(), null, VitLayout.ExpectedShapes(config), description) { }

    ParameterSet(SwinConfig config, string description) : this(null, config.Validate(), SwinLayout.ExpectedShapes(config), description) { }

    ParameterSet(VitConfig? vit, SwinConfig? swin, Dictionary<string, long[]> shapes, string description)
    {
        _vit = vit;
        Swin = swin;
        Model = (IImageModelConfig?)vit ?? swin!;
        Description = description;
        Shapes = shapes;
        Names = shapes.Keys.ToArray();
        _values = shapes.ToDictionary(kv => kv.Key, kv => GC.AllocateArray<float>(checked((int)kv.Value.Aggregate(1L, (a, b) => a * b)), pinned: true), StringComparer.Ordinal);
    }

    public float[] this[string name] => _values.TryGetValue(name, out var v) ? v : throw new ModelException($"{Description}: no tensor '{name}'", name);

    public static ParameterSet Zeros(VitConfig config) => new(config, "gradients");

    /// <summary>Zeros shaped like a Swin's parameters.</summary>
    public static ParameterSet Zeros(SwinConfig config) => new(config, "gradients");

    /// <summary>Zeros with the tensors of <paramref name="like"/> (either family).</summary>
    public static ParameterSet ZerosLike(ParameterSet like) => like.Swin is { } swin ? Zeros(swin) : Zeros(like.Config);

    bool IsLinearWeight(string name) => Swin != null ? SwinLayout.IsLinearWeight(name) : VitLayout.IsLinearWeight(name);

    /// <summary>Pruned linear weights and which of their entries are kept; training leaves the rest exactly zero.</summary>
    public IReadOnlyDictionary<string, WeightMask> Masks => _masks;

    /// <summary>
    /// Marks a linear weight as pruned to <paramref name="mask"/>'s pattern and zeroes its pruned entries, so
    /// the backward pass computes dW only on kept weights and training keeps the rest at zero.
    /// </summary>
    public void SetMask(string name, WeightMask mask)
    {
        if (!IsLinearWeight(name) || !Contains(name)) throw new InputException("mask", $"'{name}' is not a linear weight of '{Model.Name}'");
        var shape = Shapes[name];
        long cols = shape.Aggregate(1L, (a, b) => a * b) / shape[0];
        if (mask.Rows != shape[0] || mask.Cols != cols)
            throw new InputException("mask", $"a [{mask.Rows}, {mask.Cols}] mask for '{name}' of [{shape[0]}, {cols}]");
        var w = this[name];
        for (int i = 0; i < w.Length; i++) if (mask.Keep[i] == 0) w[i] = 0;
        _masks[name] = mask;
    }

    /// <summary>The mask of a linear weight, or null when all of it is trainable.</summary>
    public WeightMask? MaskOf(string name) => _masks.GetValueOrDefault(name);

    /// <summary>Copies every tensor the config needs from a source, refusing missing, misshapen or NaN/Inf tensors.</summary>
    public static ParameterSet From(ITensorSource src, VitConfig config) => new ParameterSet(config, src.Description).CopyFrom(src);

    /// <summary>Copies every tensor a Swin config needs from a source, refusing missing, misshapen or NaN/Inf tensors.</summary>
    public static ParameterSet From(ITensorSource src, SwinConfig config) => new ParameterSet(config, src.Description).CopyFrom(src);

    ParameterSet CopyFrom(ITensorSource src)
    {
        var set = this;
        string arch = Model.Name;
        foreach (var name in set.Names)
        {
            if (!src.Contains(name)) throw new ModelException($"{src.Description}: missing tensor '{name}' (architecture '{arch}')", name);
            var shape = src.Shape(name);
            // A linear weight stored sparse has its 2-D [rows, cols] shape (the patch embedding's [E, C·p·p]).
            bool flattened = IsLinearWeight(name) && shape.Length == 2 && shape[0] == set.Shapes[name][0]
                && shape[1] == set.Shapes[name].Skip(1).Aggregate(1L, (a, b) => a * b);
            if (!flattened && !shape.SequenceEqual(set.Shapes[name]))
                throw new ModelException($"{src.Description}: tensor '{name}' has shape [{string.Join(",", shape)}], but the architecture '{arch}' needs [{string.Join(",", set.Shapes[name])}]", name);
            var data = src.Floats(name);
            for (int i = 0; i < data.Length; i++)
                if (!float.IsFinite(data[i])) throw new ModelException($"{src.Description}: tensor '{name}' has a NaN/Inf value at flat index {i}; cannot train or differentiate it", name);
            data.CopyTo(set._values[name]);
        }
        return set;
    }

    /// <summary>
    /// Loads a safetensors checkpoint (our compact format, a timm DeiT with <paramref name="arch"/> for head
    /// counts, or a Swin in either timm key layout); each weight stored sparse (BSR/CSR) gets its stored pattern
    /// as a <see cref="WeightMask"/>.
    /// </summary>
    public static ParameterSet Load(string path, string? arch)
    {
        using var file = new SafeTensorsFile(path);
        var src = new SafeTensorsSource(file);
        var set = SwinFile.IsSwin(file) ? From(src, SwinFile.ReadConfig(file, arch)) : From(src, VitModel.ReadConfig(file, arch));
        // A weight stored sparse keeps its stored pattern through training.
        foreach (var (name, layout) in src.Stored)
            if (set.Contains(name)) set.SetMask(name, WeightMask.FromStored(file, name, layout));
        return set;
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

    internal static unsafe byte* PinBytes(byte[] pinned) => (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned));
}
