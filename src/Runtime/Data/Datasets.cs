using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;

namespace VitSparse.Runtime.Data;

/// <summary>Labelled, preprocessed images read in batches (streamed where the source allows).</summary>
public interface ILabelledImages : IDisposable
{
    /// <summary>Names the data in reports (file names).</summary>
    string Description { get; }
    /// <summary>Images that will be returned in all.</summary>
    int Count { get; }
    /// <summary>Fills up to <paramref name="max"/> images (model-ready NCHW floats) and labels; returns how many.</summary>
    int Next(int max, Span<float> images, Span<int> labels);
}

/// <summary>
/// IDX images + labels (MNIST, Fashion-MNIST): uint8 pixels scaled to [0, 1] and normalised with the model's
/// mean/std; a grayscale image is repeated over the channels of an RGB model.
/// </summary>
public sealed class IdxImages : ILabelledImages
{
    readonly IdxFile _images, _labels;
    readonly IImageModelConfig _config;
    readonly int _count;
    int _done;
    byte[] _pixels = [], _labelBytes = [];

    /// <inheritdoc/>
    public string Description => $"{Path.GetFileName(_images.Path)} + {Path.GetFileName(_labels.Path)}";
    /// <inheritdoc/>
    public int Count => _count;

    /// <summary>Opens an IDX image file and its label file (raw or gzip), checking that they match each other and the model; at most <paramref name="limit"/> images.</summary>
    public IdxImages(string images, string labels, IImageModelConfig config, int limit = int.MaxValue)
    {
        _images = new IdxFile(images);
        try
        {
            _labels = new IdxFile(labels);
            if (_images.Dims.Length != 3) throw new FileFormatException(images, $"an IDX image file has 3 dimensions (count, rows, cols), this one {_images.Dims.Length}");
            if (_labels.Dims.Length != 1) throw new FileFormatException(labels, $"an IDX label file has 1 dimension, this one {_labels.Dims.Length}");
            if (_images.Count != _labels.Count)
                throw new FileFormatException(labels, $"{_labels.Count} labels for {_images.Count} images in {Path.GetFileName(images)}");
            if (_images.Dims[1] != config.ImageSize || _images.Dims[2] != config.ImageSize)
                throw new InputException("--idx", $"{images} holds {_images.Dims[1]}×{_images.Dims[2]} images, model '{config.Name}' takes {config.ImageSize}×{config.ImageSize}");
            _config = config;
            _count = Math.Min(limit, _images.Count);
        }
        catch
        {
            _images.Dispose();
            _labels?.Dispose();
            throw;
        }
    }

    /// <summary>The first <paramref name="count"/> images of an IDX image file, preprocessed for the model (calibration).</summary>
    public static (float[] Images, int Count) ReadImages(string path, IImageModelConfig config, int count)
    {
        using var file = new IdxFile(path);
        if (file.Dims.Length != 3) throw new FileFormatException(path, $"an IDX image file has 3 dimensions (count, rows, cols), this one {file.Dims.Length}");
        if (file.Dims[1] != config.ImageSize || file.Dims[2] != config.ImageSize)
            throw new InputException("--calib", $"{path} holds {file.Dims[1]}×{file.Dims[2]} images, model '{config.Name}' takes {config.ImageSize}×{config.ImageSize}");
        int n = Math.Min(count, file.Count);
        // n·ItemSize is within the data the header declared, which IdxFile bounded by the file; one
        // float array still has to hold n images.
        if ((long)n * config.ImageElements > Array.MaxLength)
            throw new InputException("--calib", $"{n} images of {config.ImageElements} values do not fit in one array; use fewer");
        var pixels = new byte[(long)n * file.ItemSize];
        file.Read(n, pixels);
        var images = new float[(long)n * config.ImageElements];
        Normalise(pixels, n, file.ItemSize, config, images);
        return (images, n);
    }

    static void Normalise(ReadOnlySpan<byte> pixels, int n, int size, IImageModelConfig config, Span<float> images)
    {
        int ch = config.InChannels;
        for (int i = 0; i < n; i++)
            for (int c = 0; c < ch; c++)
            {
                float mean = config.Mean[c], inv = 1f / config.Std[c];
                var dst = images.Slice((i * ch + c) * size, size);
                for (int p = 0; p < size; p++) dst[p] = (pixels[i * size + p] / 255f - mean) * inv;
            }
    }

    /// <inheritdoc/>
    public int Next(int max, Span<float> images, Span<int> labels)
    {
        int n = Math.Min(max, _count - _done);
        if (n <= 0) return 0;
        int pixels = _images.ItemSize;
        if (_pixels.Length < n * pixels) _pixels = new byte[n * pixels];
        if (_labelBytes.Length < n) _labelBytes = new byte[n];
        _images.Read(n, _pixels);
        _labels.Read(n, _labelBytes);
        for (int i = 0; i < n; i++)
        {
            labels[i] = _labelBytes[i];
            if (labels[i] >= _config.NumClasses)
                throw new FileFormatException(_labels.Path, $"label {labels[i]} at item {_done + i} is outside the model's {_config.NumClasses} classes");
        }
        Normalise(_pixels, n, pixels, _config, images);
        _done += n;
        return n;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _images.Dispose();
        _labels.Dispose();
    }
}

/// <summary>
/// Preprocessed images X [N, C, H, W] (float32) and labels Y [N] (class indices: int64 as NumPy saves them,
/// any other integer type, or whole float32/float64) from .npy files.
/// </summary>
public sealed class NpyImages : ILabelledImages
{
    readonly NpyArray _x;
    readonly int[] _y;
    readonly int _count, _per;
    int _done;

    /// <inheritdoc/>
    public string Description { get; }
    /// <inheritdoc/>
    public int Count => _count;

    /// <summary>
    /// Reads both files and checks them: X fits the model, one label per image, each label a class of the model, and
    /// X finite as <paramref name="nonFinite"/> says (refused by default; a warning goes to <paramref name="warn"/>).
    /// </summary>
    public NpyImages(string x, string y, IImageModelConfig config, int limit = int.MaxValue, NonFinitePolicy nonFinite = NonFinitePolicy.Refuse, Action<string>? warn = null)
    {
        _x = Npy.Read(x);
        int n = _x.RequireImages(config, "--npy", x);
        NonFinite.Check(_x.Data, "--npy", x, nonFinite, warn);
        var labels = Npy.ReadLabels(y);
        if (labels.Shape.Length != 1 || labels.Shape[0] != n)
            throw new InputException("--npy", $"{y} has shape ({string.Join(", ", labels.Shape)}), expected ({n},): one label per image");
        _y = new int[labels.Values.Length];
        for (int i = 0; i < _y.Length; i++)
        {
            long v = labels.Values[i];
            if (v < 0 || v >= config.NumClasses)
                throw new FileFormatException(y, $"label {v} at {i} is not a class index below {config.NumClasses}");
            _y[i] = (int)v;
        }
        _per = config.ImageElements;
        _count = Math.Min(limit, n);
        Description = $"{Path.GetFileName(x)} + {Path.GetFileName(y)}";
    }

    /// <inheritdoc/>
    public int Next(int max, Span<float> images, Span<int> labels)
    {
        int n = Math.Min(max, _count - _done);
        if (n <= 0) return 0;
        _x.Data.AsSpan(_done * _per, n * _per).CopyTo(images);
        _y.AsSpan(_done, n).CopyTo(labels);
        _done += n;
        return n;
    }

    /// <inheritdoc/>
    public void Dispose() { }
}
