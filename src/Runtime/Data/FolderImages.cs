using VitSparse.Runtime.Images;
using VitSparse.Runtime.Models;

namespace VitSparse.Runtime.Data;

/// <summary>
/// An ImageNet-style folder: one subfolder per class (classes in ordinal name order, as torchvision's
/// ImageFolder numbers them), or a flat folder with a labels file of "relative/path class-index" lines.
/// Images (JPEG, PNG) are decoded and preprocessed batch by batch. A bad image stops the run naming the
/// file, or with skipBad is reported through the log callback and left out.
/// </summary>
public sealed class FolderImages : ILabelledImages
{
    static readonly string[] Extensions = [".jpg", ".jpeg", ".png"];
    readonly List<(string Path, int Label)> _items = [];
    readonly IImageModelConfig _config;
    readonly bool _skipBad;
    readonly int _maxSide;
    readonly long _maxPixels;
    readonly Action<string>? _log;
    int _next;

    /// <inheritdoc/>
    public string Description { get; }
    /// <inheritdoc/>
    public int Count => _items.Count;
    /// <summary>Class names in label order: the subfolder names, or empty with a labels file.</summary>
    public IReadOnlyList<string> Classes { get; }
    /// <summary>Images left out as unreadable (with skipBad).</summary>
    public int Skipped { get; private set; }

    /// <summary>Lists the images of <paramref name="dir"/> (one subfolder per class, or flat with <paramref name="labelsFile"/>); images are decoded batch by batch, within the given size limits.</summary>
    public FolderImages(string dir, IImageModelConfig config, string? labelsFile = null, int limit = int.MaxValue, bool skipBad = false, Action<string>? log = null,
        int maxImageSide = ImageFile.DefaultMaxSide, long maxImagePixels = ImageFile.DefaultMaxPixels)
    {
        if (!Directory.Exists(dir)) throw new InputException("--data", $"{dir} is not a folder");
        _config = config;
        _skipBad = skipBad;
        _log = log;
        _maxSide = maxImageSide;
        _maxPixels = maxImagePixels;
        Description = Path.GetFileName(Path.TrimEndingDirectorySeparator(dir));
        if (labelsFile != null)
        {
            if (!File.Exists(labelsFile)) throw new FileFormatException(labelsFile, "file not found");
            int line = 0;
            foreach (var text in File.ReadLines(labelsFile))
            {
                line++;
                if (string.IsNullOrWhiteSpace(text)) continue;
                int cut = text.LastIndexOf(' ');
                if (cut <= 0 || !int.TryParse(text[(cut + 1)..], out int label) || label < 0 || label >= config.NumClasses)
                    throw new FileFormatException(labelsFile, $"line {line}: expected 'path class-index' with an index below {config.NumClasses}");
                _items.Add((Path.Combine(dir, text[..cut].Trim()), label));
            }
            Classes = Enumerable.Range(0, config.NumClasses).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        }
        else
        {
            var classes = Directory.GetDirectories(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
            if (classes.Length == 0) throw new InputException("--data", $"{dir} has no class subfolders (give --labels for a flat folder)");
            if (classes.Length > config.NumClasses) throw new InputException("--data", $"{dir} has {classes.Length} class folders, the model {config.NumClasses} classes");
            for (int c = 0; c < classes.Length; c++)
                foreach (var f in Directory.GetFiles(Path.Combine(dir, classes[c]!)).Order(StringComparer.Ordinal))
                    if (Extensions.Contains(Path.GetExtension(f).ToLowerInvariant())) _items.Add((f, c));
            Classes = classes!;
        }
        if (_items.Count > limit) _items.RemoveRange(limit, _items.Count - limit);
        if (_items.Count == 0) throw new InputException("--data", $"{dir} holds no .jpg/.jpeg/.png images");
    }

    /// <inheritdoc/>
    public int Next(int max, Span<float> images, Span<int> labels)
    {
        int n = 0, per = _config.ImageElements;
        while (n < max && _next < _items.Count)
        {
            var (path, label) = _items[_next++];
            try
            {
                ImageFile.ToTensor(path, _config, images.Slice(n * per, per), _maxSide, _maxPixels);
            }
            catch (VitSparseException e) when (_skipBad)
            {
                Skipped++;
                _log?.Invoke($"skipping {path}: {e.Message}");
                continue;
            }
            labels[n++] = label;
        }
        return n;
    }

    /// <inheritdoc/>
    public void Dispose() { }
}
