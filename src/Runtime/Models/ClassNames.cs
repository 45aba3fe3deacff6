using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using VitSparse.Runtime.Formats;

namespace VitSparse.Runtime.Models;

/// <summary>
/// Human-readable class names for a model's outputs. They come, first match wins, from an explicit names
/// file, the model's "classes" metadata (a JSON list), the ImageNet-1k list Debian's opencv-doc ships (for
/// 1000-class models only), or else the class indices.
/// </summary>
public static class ClassNames
{
    /// <summary>safetensors metadata key of the class names (a JSON list).</summary>
    public const string MetadataKey = "classes";

    /// <summary>Where Debian's opencv-doc installs the ILSVRC2012 names, in the order timm's 1000 outputs use.</summary>
    public const string DebianImageNetList = "/usr/share/doc/opencv-doc/examples/data/dnn/classification_classes_ILSVRC2012.txt";

    /// <summary>
    /// A names file: one class per line, in output order. WordNet-style lines ("tench, Tinca tinca") keep
    /// their first name, which is what the 1000 ImageNet lines all start with.
    /// </summary>
    public static string[] FromFile(string path, int classes)
    {
        var lines = TextFile.Read(path, MaxFileBytes, "class names file").Split(["\r\n", "\n", "\r"], StringSplitOptions.None);
        int count = lines.Length;
        while (count > 0 && string.IsNullOrWhiteSpace(lines[count - 1])) count--;
        if (count != classes) throw new FileFormatException(path, $"has {count} class names, the model {classes} classes");
        var names = new string[count];
        for (int i = 0; i < count; i++)
        {
            int comma = lines[i].IndexOf(',');
            names[i] = (comma < 0 ? lines[i] : lines[i][..comma]).Trim();
            if (names[i].Length == 0) throw new FileFormatException(path, $"line {i + 1} is empty; every class needs a name");
            if (HasControl(names[i])) throw new FileFormatException(path, $"line {i + 1} holds a control character");
        }
        return names;
    }

    /// <summary>Largest names file read: 8 MiB (the 1000 ImageNet lines are 30 KB, 21k-class lists under 1 MB).</summary>
    public const long MaxFileBytes = 8L << 20;

    // Names are printed to terminals: escape sequences in a downloaded file must not reach them.
    static bool HasControl(string s) => s.AsSpan().IndexOfAnyInRange('\0', '\x1f') >= 0 || s.Contains('\x7f');

    /// <summary>The "classes" metadata of a safetensors file, if present and of the right length.</summary>
    public static string[]? FromMetadata(SafeTensorsFile file, int classes)
    {
        if (!file.Metadata.TryGetValue(MetadataKey, out var json)) return null;
        string[]? names;
        try { names = JsonSerializer.Deserialize(json, ClassNamesJson.Default.StringArray); }
        catch (JsonException e) { throw new FileFormatException(file.Path, $"metadata '{MetadataKey}' is not a JSON list of strings: {e.Message}"); }
        if (names == null || names.Length != classes || names.Any(n => n == null))
            throw new FileFormatException(file.Path, $"metadata '{MetadataKey}' must list {classes} names, one per class");
        if (Array.FindIndex(names, HasControl) is int bad and >= 0)
            throw new FileFormatException(file.Path, $"metadata '{MetadataKey}': name {bad} holds a control character");
        return names;
    }

    /// <summary>Names for a model file's outputs and where they came from (for the user to see).</summary>
    public static (string[] Names, string Origin) Resolve(string weights, int classes, string? namesFile = null,
        string imageNetList = DebianImageNetList)
    {
        if (namesFile != null) return (FromFile(namesFile, classes), namesFile);
        using (var f = new SafeTensorsFile(weights))
            if (FromMetadata(f, classes) is { } fromModel) return (fromModel, "model metadata");
        if (classes == 1000 && File.Exists(imageNetList)) return (FromFile(imageNetList, classes), imageNetList);
        return (Indices(classes), "class indices");
    }

    /// <summary>The class indices as names: "0", "1", …</summary>
    public static string[] Indices(int classes) =>
        Enumerable.Range(0, classes).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();

    /// <summary>The names as the JSON list the metadata holds.</summary>
    public static string ToJson(string[] names) => JsonSerializer.Serialize(names, ClassNamesJson.Default.StringArray);
}

[JsonSerializable(typeof(string[]))]
internal partial class ClassNamesJson : JsonSerializerContext;
