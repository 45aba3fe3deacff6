using VitSparse.Runtime.Formats;

namespace VitSparse.Runtime.Models;

/// <summary>Writes our compact safetensors for any model family: its config as metadata, its tensors dense or sparse-stored.</summary>
static class CompactFile
{
    /// <summary>
    /// Writes <paramref name="expected"/>'s tensors from <paramref name="src"/> (linear weights named in
    /// <paramref name="sparse"/> in their sparse format, the rest dense) with the config JSON, class names and
    /// further metadata, atomically.
    /// </summary>
    public static void Write(string path, string configJson, int numClasses, IReadOnlyDictionary<string, long[]> expected, Func<string, bool> isLinearWeight,
        ITensorSource src, DType dtype, string[]? classNames, IReadOnlyDictionary<string, string>? metadata, IReadOnlyDictionary<string, StoredLayout>? sparse)
    {
        if (classNames != null && classNames.Length != numClasses)
            throw new InputException(nameof(classNames), $"{classNames.Length} names for a model with {numClasses} classes");
        var tensors = new List<TensorToWrite>();
        var layouts = new Dictionary<string, StoredLayout>(StringComparer.Ordinal);
        foreach (var (name, shape) in expected)
        {
            if (sparse != null && sparse.TryGetValue(name, out var l) && l.Format != WeightFormat.Dense)
            {
                if (!isLinearWeight(name)) throw new InputException(nameof(sparse), $"'{name}' is not a linear weight");
                int rows = (int)shape[0], cols = (int)(shape.Aggregate(1L, (a, b) => a * b) / rows);
                var (encoded, layout) = SparseStorage.Encode(name, src.Floats(name), rows, cols, l.Format, l.BlockHeight, l.BlockWidth, dtype);
                tensors.AddRange(encoded);
                layouts[name] = layout;
            }
            else tensors.Add(new TensorToWrite(name, shape, src.Floats(name).ToArray(), dtype));
        }
        var all = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>())
        {
            [VitConfig.MetadataKey] = configJson,
            ["format"] = "pt",
            ["producer"] = "vitsparse",
        };
        if (layouts.Count > 0) all[SparseStorage.MetadataKey] = SparseStorage.ToJson(layouts);
        if (classNames != null) all[ClassNames.MetadataKey] = ClassNames.ToJson(classNames);
        SafeTensorsWriter.Write(path, tensors, all);
    }
}
