using System.Globalization;
using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Data;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using VitSparse.Runtime.Text;

namespace VitSparse.Cli;

/// <summary>
/// A loaded model of either family with its session, for the commands that only run images through a model
/// (`infer`, `eval`): a DeiT (<see cref="InferenceSession"/>) or a Swin (<see cref="SwinSession"/>), chosen from
/// the weights (seeded:swin_t, or a file whose metadata or keys are a Swin's).
/// </summary>
sealed class Classifier : IDisposable
{
    readonly InferenceSession? _vit;
    readonly SwinSession? _swin;

    public IImageModelConfig Config { get; }

    Classifier(InferenceSession? vit, SwinSession? swin, IImageModelConfig config) => (_vit, _swin, Config) = (vit, swin, config);

    /// <summary>Refuses an unknown --arch, suggesting Swin names for a Swin-like name and DeiT names otherwise.</summary>
    public static void CheckArch(string? arch)
    {
        if (arch == null || SwinArchitectures.TryGet(arch, out _)) return;
        if (arch.StartsWith("swin", StringComparison.OrdinalIgnoreCase)) SwinArchitectures.Get(arch, "--arch");
        Architectures.Get(arch, "--arch");
    }

    /// <summary>Loads the model and opens its session on <paramref name="device"/> (cpu, gpu, gpu:N, ilgpu-cpu).</summary>
    public static Classifier Open(Weights w, LoadOptions options, int threads, string device = "cpu", bool fp16Weights = false)
    {
        if (w.IsSwin)
        {
            var model = w.LoadSwin(options);
            return new Classifier(null, new SwinSession(model, device, threads, fp16Weights), model.Config);
        }
        var vit = w.Load(options);
        return new Classifier(new InferenceSession(vit, device, threads, fp16Weights), null, vit.Config);
    }

    public void Run(ReadOnlySpan<float> images, int batch, Span<float> logits)
    {
        if (_swin != null) _swin.Run(images, batch, logits);
        else _vit!.Run(images, batch, logits);
    }

    public EvalResult Evaluate(ILabelledImages data, int batch, Action<int, int>? progress) => Evaluation.Run(Config, Run, data, batch, progress);

    public void Dispose()
    {
        _vit?.Dispose();
        _swin?.Dispose();
    }

    /// <summary>`inspect` for a Swin: stages, windows, shifts, parameters and MACs.</summary>
    public static string DescribeSwin(SwinConfig c, string origin)
    {
        var inv = CultureInfo.InvariantCulture;
        var sw = new StringWriter(inv);
        sw.WriteLine($"model {c.Name} ({origin}): Swin, image {c.ImageSize}, patch {c.PatchSize}, window {c.Window}, classes {c.NumClasses}, " +
            $"keys {(c.Layout == SwinKeyLayout.Legacy ? "timm 0.6/MS" : "timm ≥ 0.9")}, kernels {Isa.Describe()}");
        sw.WriteLine();
        var t = new MarkdownTable("stage", "map", "window", "shift (odd blocks)", "depth", "width", "heads", "head width", "MLP").RightAlign(0, 2, 3, 4, 5, 6, 7, 8);
        for (int s = 0; s < c.Stages.Count; s++)
        {
            var st = c.Stages[s];
            string map = c.PaddedResolution(s) != c.Resolution(s) ? $"{c.Resolution(s)}² (padded to {c.PaddedResolution(s)}²)" : $"{c.Resolution(s)}²";
            t.Add(s, map, c.StageWindow(s), c.StageShift(s), st.Depth, st.Dim, st.Heads, st.HeadDim, st.MlpHidden);
        }
        sw.Write(t);
        sw.WriteLine();
        sw.WriteLine($"total: {SwinLayout.Params(c).ToString("N0", inv)} params");
        return sw.ToString();
    }

    /// <summary>Each linear layer's kernel format as loaded, like DeiT's table, with the Swin's rows per layer.</summary>
    public static string DescribeFormats(SwinModel model, string mode)
    {
        var inv = CultureInfo.InvariantCulture;
        var sw = new StringWriter(inv);
        var (dense, kernel) = InspectCommand.WriteFormatTable(sw, model.LinearLayers, model.RowsPerImage, mode);
        long attention = SwinModel.AttentionMacs(model.Config);
        sw.WriteLine($"linear layers: {(dense / 1e9).ToString("0.000", inv)} GMAC dense, {(kernel / 1e9).ToString("0.000", inv)} GMAC in the chosen kernels; " +
            $"window attention {(attention / 1e9).ToString("0.000", inv)} GMAC; total {(model.DenseMacs() / 1e9).ToString("0.000", inv)} GMAC dense, {(model.KernelMacs() / 1e9).ToString("0.000", inv)} as run");
        return sw.ToString();
    }
}
