using VitSparse.Runtime;
using VitSparse.Runtime.Data;
using VitSparse.Runtime.Models;

namespace VitSparse.Training;

/// <summary>
/// A labelled set held in memory (training reads it in a new order every epoch; validation reads it once per
/// epoch). Every label is checked to be a class of the model when the set is read.
/// </summary>
public sealed class LabelledArrays : ILabelledImages
{
    readonly float[] _images;
    readonly int[] _labels;
    readonly int _elements;
    int _next;

    /// <inheritdoc/>
    public string Description { get; }
    /// <inheritdoc/>
    public int Count { get; }
    /// <summary>All images, model-ready NCHW, image after image.</summary>
    public ReadOnlySpan<float> Images => _images.AsSpan(0, Count * _elements);
    /// <summary>One class index per image.</summary>
    public ReadOnlySpan<int> Labels => _labels.AsSpan(0, Count);

    LabelledArrays(string description, float[] images, int[] labels, int count, int elements)
    {
        Description = description;
        _images = images;
        _labels = labels;
        Count = count;
        _elements = elements;
    }

    /// <summary>Reads a whole source into memory; <paramref name="argument"/> names it in errors.</summary>
    public static LabelledArrays ReadAll(ILabelledImages source, IImageModelConfig config, string argument)
    {
        int n = source.Count, e = config.ImageElements;
        if (n < 1) throw new InputException(argument, $"{source.Description} holds no images");
        if ((long)n * e > Array.MaxLength)
            throw new InputException(argument, $"{source.Description}: {n} images of {e} values do not fit in memory as one array; use fewer (--limit)");
        var images = new float[(long)n * e];
        var labels = new int[n];
        int done = 0, got;
        while (done < n && (got = source.Next(Math.Min(256, n - done), images.AsSpan(done * e), labels.AsSpan(done))) > 0) done += got;
        return From(source.Description, images, labels, done, config, argument);
    }

    /// <summary>A set over arrays the caller made (tests, bench); labels checked against the model's classes.</summary>
    public static LabelledArrays From(string description, float[] images, int[] labels, int count, IImageModelConfig config, string argument)
    {
        if (count < 1) throw new InputException(argument, $"{description} holds no images");
        if (labels.Length < count || images.Length < (long)count * config.ImageElements)
            throw new InputException(argument, $"{description}: {labels.Length} labels and {images.Length} values for {count} images of {config.ImageElements}");
        for (int i = 0; i < count; i++)
            if (labels[i] < 0 || labels[i] >= config.NumClasses)
                throw new InputException(argument, $"{description}: label {labels[i]} of image {i} is outside [0, {config.NumClasses})");
        return new LabelledArrays(description, images, labels, count, config.ImageElements);
    }

    /// <summary>Starts reading from the first image again (each validation pass).</summary>
    public void Reset() => _next = 0;

    /// <inheritdoc/>
    public int Next(int max, Span<float> images, Span<int> labels)
    {
        int n = Math.Min(max, Count - _next);
        if (n <= 0) return 0;
        _images.AsSpan(_next * _elements, n * _elements).CopyTo(images);
        _labels.AsSpan(_next, n).CopyTo(labels);
        _next += n;
        return n;
    }

    /// <inheritdoc/>
    public void Dispose() { }
}
