using VitSparse.Runtime;
using VitSparse.Runtime.Formats;

namespace VitSparse.Training;

/// <summary>Class labels for a loss: a 1-D integer .npy (what `np.save(path, y)` writes; <see cref="Npy.ReadLabels"/>).</summary>
public static class LabelFile
{
    /// <summary>Reads the labels and checks there are <paramref name="count"/> of them, each in [0, classes).</summary>
    public static int[] Read(string path, string argument, int count, int classes)
    {
        var labels = Npy.ReadLabels(path);
        if (labels.Shape.Length != 1) throw new InputException(argument, $"{path} has shape ({string.Join(", ", labels.Shape)}); labels are a 1-D array");
        if (labels.Values.Length != count) throw new InputException(argument, $"{path} has {labels.Values.Length} labels for {count} images");
        var result = new int[count];
        for (int i = 0; i < count; i++)
        {
            long v = labels.Values[i];
            if (v < 0 || v >= classes) throw new InputException(argument, $"{path}: label {v} of image {i} is outside [0, {classes})");
            result[i] = (int)v;
        }
        return result;
    }
}
