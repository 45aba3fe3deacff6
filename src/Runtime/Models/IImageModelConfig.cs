namespace VitSparse.Runtime.Models;

/// <summary>
/// What every model family's config says about its input and output (a DeiT's <see cref="VitConfig"/>, a Swin's
/// <see cref="SwinConfig"/>): enough to preprocess images, check batches and label files, and hand the config
/// to a peer runtime as JSON.
/// </summary>
public interface IImageModelConfig
{
    /// <summary>Architecture name.</summary>
    string Name { get; }
    /// <summary>Input side in pixels (square images).</summary>
    int ImageSize { get; }
    /// <summary>Input channels.</summary>
    int InChannels { get; }
    /// <summary>Classes of the head.</summary>
    int NumClasses { get; }
    /// <summary>Normalisation mean per channel.</summary>
    float[] Mean { get; }
    /// <summary>Normalisation std per channel.</summary>
    float[] Std { get; }
    /// <summary>Center-crop fraction of the evaluation resize.</summary>
    float CropPct { get; }
    /// <summary>Floats per preprocessed image: channels × size².</summary>
    int ImageElements { get; }
    /// <summary>The config as our metadata JSON.</summary>
    string ToJson();
}
