using VitSparse.Runtime.Formats;

namespace VitSparse.Runtime.Models;

/// <summary>Reading a Swin's config from a safetensors file and writing a Swin (dense or sparse-stored) as our compact format.</summary>
public static class SwinFile
{
    /// <summary>
    /// Whether a file holds a Swin: its metadata config says `"family": "swin"`, or (a plain timm checkpoint) it has
    /// Swin blocks (`layers.0.blocks.0.attn.qkv.weight`) and no DeiT blocks.
    /// </summary>
    public static bool IsSwin(SafeTensorsFile file) =>
        file.Metadata.TryGetValue(VitConfig.MetadataKey, out var json) ? SwinConfig.IsSwinJson(json)
            : new SafeTensorsSource(file).Contains("layers.0.blocks.0.attn.qkv.weight") && !file.Contains("blocks.0.attn.qkv.weight");

    /// <summary>The config of a Swin file: its metadata, else inferred from tensor shapes (<paramref name="arch"/> supplies image size and window).</summary>
    public static SwinConfig ReadConfig(SafeTensorsFile file, string? arch)
    {
        if (file.Metadata.TryGetValue(VitConfig.MetadataKey, out var json))
        {
            try { return SwinConfig.FromJson(json); }
            catch (ModelException e) { throw new ModelException($"{file.Path}: {e.Message}", e.Tensor); }
        }
        return SwinLayout.Infer(new SafeTensorsSource(file), arch == null ? null : SwinArchitectures.Get(arch));
    }

    /// <summary>
    /// Writes the config and the given tensors (in the config's key layout) as our compact safetensors, with
    /// class names when given, further string metadata, and the linear weights named in <paramref name="sparse"/>
    /// stored in their sparse formats.
    /// </summary>
    /// <param name="path">the file to write (atomically).</param>
    /// <param name="config">the architecture, written as metadata.</param>
    /// <param name="src">where the tensors come from.</param>
    /// <param name="dtype">F32, F16 or BF16 for the float tensors.</param>
    /// <param name="classNames">one name per class, or null.</param>
    /// <param name="metadata">further string metadata to keep.</param>
    /// <param name="sparse">linear weights to store sparse (format and block shape per weight name); the rest are dense.</param>
    public static void Save(string path, SwinConfig config, ITensorSource src, DType dtype = DType.F32, string[]? classNames = null,
        IReadOnlyDictionary<string, string>? metadata = null, IReadOnlyDictionary<string, StoredLayout>? sparse = null)
    {
        var c = config.Validate();
        CompactFile.Write(path, c.ToJson(), c.NumClasses, SwinLayout.ExpectedShapes(c), SwinLayout.IsLinearWeight, src, dtype, classNames, metadata, sparse);
    }
}
