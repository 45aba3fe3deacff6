using System.Text;
using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Data;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Images;
using VitSparse.Runtime.Models;

namespace VitSparse.Fuzz;

/// <summary>
/// One parser under fuzz. <see cref="Run"/> gets the mutated input as a file (every VitSparse entry point
/// reads files) and a scratch folder of its own; it either returns or throws, and only a
/// <see cref="VitSparseException"/> is an acceptable way to refuse an input.
/// </summary>
public sealed record FuzzTarget(string Name, string Extension, InputKind Kind, string[] Seeds, Action<string, string> Run)
{
    /// <summary>Most bytes one input may allocate on the calling thread. Seeds are small: more means a size was trusted.</summary>
    public long AllocationBudget { get; init; } = 64L << 20;
    public override string ToString() => Name;
}

/// <summary>An input a parser accepted that it should have refused; a failure like an exception that is not ours.</summary>
public sealed class FuzzFinding(string message) : Exception(message);

public static class Targets
{
    /// <summary>Seeds live under tests/fixtures: existing small fixtures, plus fuzz/seeds/ for formats without one.</summary>
    const string Seeds = "fuzz/seeds/";

    public static readonly IReadOnlyList<FuzzTarget> All =
    [
        new("safetensors", ".safetensors", InputKind.SafeTensors,
            ["writer_sample.safetensors", Seeds + "safetensors_dtypes.safetensors", Seeds + "safetensors_empty_tensor.safetensors"], SafeTensors),
        new("config", ".json", InputKind.Json, [Seeds + "config_ragged_tiny.json", Seeds + "config_ragged_distilled.json"], Config),
        new("class-metadata", ".json", InputKind.Json, [Seeds + "classes_metadata.json"], ClassMetadata),
        new("model", ".safetensors", InputKind.SafeTensors, ["ragged_tiny.safetensors", "ragged_distilled_bf16.safetensors"], Model),
        // Sparse-stored weights: index data validated before any kernel reads through it.
        new("sparse-model", ".safetensors", InputKind.SafeTensors, ["hostile/sparse_valid.safetensors"], Model),
        new("npy-labels", ".npy", InputKind.Npy, [Seeds + "labels_int64.npy", Seeds + "labels_uint8.npy"], (p, _) => Npy.ReadLabels(p)),
        new("npy", ".npy", InputKind.Npy,
            ["ragged_tiny.logits.npy", "png_gray1.pixels.npy", Seeds + "npy_v2.npy", Seeds + "npy_v3.npy", Seeds + "npy_scalar.npy"], Npy_),
        new("idx", ".idx", InputKind.Binary, [Seeds + "idx_images.idx", Seeds + "idx_labels.idx"], Idx),
        new("idx-gzip", ".idx.gz", InputKind.Gzip, [Seeds + "idx_images.idx.gz", Seeds + "idx_labels.idx.gz"], Idx),
        new("png", ".png", InputKind.Png,
            ["png_gray1.png", "png_gray4_adam7.png", "png_gray8.png", "png_gray16.png", "png_gray_alpha8.png", "png_palette4.png",
             "png_palette8_trns.png", "png_rgb8.png", "png_rgb8_adam7.png", "png_rgb16.png", "png_rgba16_adam7.png"], Image)
        {
            // PIL's default limit is 89,478,485 pixels; a decoder that checks the header may allocate that much, no more.
            AllocationBudget = 512L << 20,
        },
        new("jpeg", ".jpg", InputKind.Binary, ["gradient.jpg", Seeds + "jpeg_linuxlogo.jpg", Seeds + "jpeg_blox.jpg"], Image)
        {
            AllocationBudget = 512L << 20,
        },
        new("class-names", ".txt", InputKind.Json, [Seeds + "classes_fashion.txt", Seeds + "classes_wordnet.txt"], (p, _) => ClassNames.FromFile(p, 10)),
        new("ratios", ".json", InputKind.Json, [Seeds + "ratios_blocks.json", Seeds + "ratios_default.json"], (p, _) => RatioSpec.Read(p, 3)),
    ];

    public static FuzzTarget Get(string name) =>
        All.FirstOrDefault(t => t.Name == name) ?? throw new ArgumentException($"unknown fuzz target '{name}' (known: {string.Join(", ", All.Select(t => t.Name))})");

    static void SafeTensors(string path, string scratch)
    {
        using var file = new SafeTensorsFile(path);
        foreach (var t in file.Tensors)
            if (t.DType is DType.F32 or DType.F16 or DType.BF16 or DType.F64) _ = file.GetFloats(t.Name).Length;
    }

    static void Config(string path, string scratch)
    {
        var config = VitConfig.FromJson(Encoding.UTF8.GetString(File.ReadAllBytes(path)));
        ConfigSizes.RequireSafe(config);
        // A config small enough to build: seeded weights of exactly its shapes, one forward pass. This is
        // where configs that pass validation and still break a kernel show up.
        if (ConfigSizes.IsTiny(config)) Forward(VitModel.FromSource(new SeededWeights(config), config));
    }

    static void Model(string path, string scratch)
    {
        // The config is checked on its own first: a config whose sizes overflow must never reach the
        // weight packing, whose unsafe code would then corrupt this (test) process instead of failing.
        using (var file = new SafeTensorsFile(path))
            if (file.Metadata.TryGetValue(VitConfig.MetadataKey, out var json))
            {
                VitConfig? config = null;
                try { config = VitConfig.FromJson(json); }
                catch (VitSparseException) { }
                if (config != null) ConfigSizes.RequireSafe(config);
            }
        var model = VitModel.Load(path);
        ConfigSizes.RequireSafe(model.Config);
        if (ConfigSizes.IsTiny(model.Config)) Forward(model);
    }

    static void Forward(VitModel model)
    {
        var c = model.Config;
        using var session = new InferenceSession(model, threads: 1);
        var logits = new float[c.NumClasses];
        session.Run(new float[c.ImageElements], 1, logits);
    }

    static void ClassMetadata(string path, string scratch)
    {
        // The names arrive as a metadata string of a safetensors file, as a saved model carries them.
        string model = Path.Combine(scratch, "classes.safetensors");
        var metadata = new Dictionary<string, string> { [ClassNames.MetadataKey] = Encoding.UTF8.GetString(File.ReadAllBytes(path)) };
        SafeTensorsWriter.Write(model, [new TensorToWrite("x", [1], new float[1])], metadata);
        using var file = new SafeTensorsFile(model);
        ClassNames.FromMetadata(file, 10);
    }

    static void Npy_(string path, string scratch) => Npy.Read(path);

    static void Idx(string path, string scratch)
    {
        using var file = new IdxFile(path);
        int batch = (int)Math.Min(16, file.Remaining);
        var buffer = new byte[(long)batch * file.ItemSize];
        while (file.Remaining > 0)
        {
            int n = (int)Math.Min(batch, file.Remaining);
            file.Read(n, buffer);
        }
    }

    static void Image(string path, string scratch) => ImageFile.Decode(path);
}
