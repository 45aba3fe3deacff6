using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;
using VitSparse.Training;

namespace VitSparse.Pruning.Lpvit;

/// <summary>
/// The gradient LPViT scores with (methods.md §3.2): dL/dW of the label-free loss L = mean(logits²), averaged
/// over the calibration images, for every linear and conv weight.
/// </summary>
public static class TaylorGradients
{
    /// <summary>Images per forward/backward pass: the reference uses 64; activations of DeiT-B cost about 0.1 GB per image here.</summary>
    public const int BatchSize = 8;

    /// <summary>
    /// Runs the images ([count, C, H, W], preprocessed) through the DeiT and back, and returns the mean gradient of
    /// each layer's weight (by weight name). progress(done, total) is called after each batch.
    /// </summary>
    public static Dictionary<string, float[]> Average(DenseTensors dense, ReadOnlySpan<float> images, int count, IEnumerable<PrunableLayer> layers,
        int threads = 0, Action<int, int>? progress = null) =>
        Average(ParameterSet.From(dense, dense.Config), images, count, layers, threads, progress);

    /// <summary>The same for a Swin: images at the Swin's own size and channels.</summary>
    public static Dictionary<string, float[]> Average(SwinTensors dense, ReadOnlySpan<float> images, int count, IEnumerable<PrunableLayer> layers,
        int threads = 0, Action<int, int>? progress = null) =>
        Average(ParameterSet.From(dense, dense.Config), images, count, layers, threads, progress);

    /// <summary>
    /// The mean gradient of each layer's weight over the images, for the family of <paramref name="parameters"/>
    /// (DeiT or Swin, through <see cref="IBackprop.For"/>). A conv weight's gradient is flat, as its [out, C·p·p] matrix.
    /// </summary>
    public static Dictionary<string, float[]> Average(ParameterSet parameters, ReadOnlySpan<float> images, int count, IEnumerable<PrunableLayer> layers,
        int threads = 0, Action<int, int>? progress = null)
    {
        var c = parameters.Model;
        if (count < 1) throw new InputException("--calib", "needs at least one calibration image");
        if (images.Length != (long)count * c.ImageElements)
            throw new InputException("--calib", $"holds {images.Length} floats, expected {count}×{c.InChannels}×{c.ImageSize}×{c.ImageSize}");
        var names = layers.Select(l => l.Weight).ToArray();
        using var team = new ThreadTeam(threads > 0 ? threads : Environment.ProcessorCount);
        int capacity = Math.Min(BatchSize, count);
        var backprop = IBackprop.For(parameters, capacity, team);
        var sum = names.ToDictionary(n => n, n => new float[parameters[n].Length], StringComparer.Ordinal);
        var logits = new float[capacity * c.NumClasses];
        var dLogits = new float[logits.Length];
        var loss = new LossSpec(LossKind.SquaredLogits);
        for (int start = 0; start < count; start += capacity)
        {
            int b = Math.Min(capacity, count - start);
            var x = images.Slice(start * c.ImageElements, b * c.ImageElements);
            backprop.Forward(x, b, logits.AsSpan(0, b * c.NumClasses));
            loss.Evaluate(logits.AsSpan(0, b * c.NumClasses), b, c.NumClasses, [], [], dLogits.AsSpan(0, b * c.NumClasses));
            backprop.Backward(dLogits.AsSpan(0, b * c.NumClasses));
            // Each batch's gradient is its mean; weighting it by its share of the images makes the sum the mean over all.
            float share = b / (float)count;
            foreach (var n in names)
            {
                var g = backprop.Gradients[n];
                var s = sum[n];
                for (int i = 0; i < s.Length; i++) s[i] += share * g[i];
            }
            progress?.Invoke(start + b, count);
        }
        return sum;
    }

    /// <summary>Writes averaged gradients as safetensors under the weights' names (what <see cref="Read"/> and `vitsparse grad` use).</summary>
    public static void Write(string path, ITensorSource dense, IReadOnlyDictionary<string, float[]> gradients, int images) =>
        Runtime.Formats.SafeTensorsWriter.Write(path, gradients.Select(kv => new Runtime.Formats.TensorToWrite(kv.Key, dense.Shape(kv.Key), kv.Value)).ToList(),
            new Dictionary<string, string> { ["vitsparse.gradient"] = "mean over images of dL/dW, L = mean(logits²)", ["vitsparse.images"] = images.ToString(System.Globalization.CultureInfo.InvariantCulture) });

    /// <summary>
    /// Reads gradients for the layers' weights from a safetensors file (from <see cref="Write"/> or `vitsparse grad --loss sq`),
    /// refusing a missing tensor, a wrong size or NaN/Inf, naming the tensor.
    /// </summary>
    public static Dictionary<string, float[]> Read(string path, IEnumerable<PrunableLayer> layers)
    {
        using var file = new Runtime.Formats.SafeTensorsFile(path);
        var result = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var l in layers)
        {
            if (!file.Contains(l.Weight)) throw new ModelException($"{path}: no gradient '{l.Weight}'", l.Weight);
            var g = file.GetFloats(l.Weight);
            if (g.Length != l.Numel) throw new ModelException($"{path}: gradient '{l.Weight}' has {g.Length} values, the layer has {l.Rows}×{l.Cols}", l.Weight);
            NonFinite.Check(g, "--gradients", $"{path}: gradient '{l.Weight}'", NonFinitePolicy.Refuse);
            result[l.Weight] = g.ToArray();
        }
        return result;
    }

    /// <summary>
    /// The reference's normalisation quirk (mean = std = 0.5 for DeiT): images normalised with the model's own
    /// mean and std are mapped, in place, to what (x − 0.5)/0.5 of the same pixels would give.
    /// </summary>
    public static void RenormaliseHalf(Span<float> images, IImageModelConfig c)
    {
        int plane = c.ImageSize * c.ImageSize;
        for (int i = 0; i < images.Length; i++)
        {
            int ch = i / plane % c.InChannels;
            float pixel = images[i] * c.Std[ch] + c.Mean[ch];
            images[i] = (pixel - 0.5f) / 0.5f;
        }
    }
}
