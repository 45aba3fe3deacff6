using System.CommandLine;
using System.Globalization;
using VitSparse.Kernels;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using VitSparse.Runtime.Text;

namespace VitSparse.Cli;

/// <summary>`vitsparse inspect`: architecture, per-head widths, parameters and MACs of a model file or seeded:ARCH.</summary>
static class InspectCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var file = new Argument<string>("weights") { Description = "model .safetensors, or seeded:ARCH" };
        var cmd = new Command("inspect", "print the architecture, per-block widths, parameters, MACs and each linear layer's kernel format")
        {
            file, CliApp.ArchOption, CliApp.SparseOption, CliApp.NonFiniteOption,
        };
        cmd.SetAction(pr => CliApp.Guard(pr, stderr, () =>
        {
            string? arch = pr.GetValue(CliApp.ArchOption);
            Classifier.CheckArch(arch);
            var w = Weights.Check(pr.GetValue(file)!, arch, "weights");
            if (w.SeededSwin != null)
            {
                stdout.Write(Classifier.DescribeSwin(w.SeededSwin, $"{w.Spec}, synthetic weights"));
                return 0;
            }
            if (w.Seeded != null)
            {
                stdout.Write(Describe(w.Seeded, $"{w.Spec}, synthetic weights"));
                return 0;
            }
            var options = CliApp.Options(pr, stderr);
            if (w.IsSwin) return InspectSwin(w, arch, options, pr.GetValue(CliApp.SparseOption) ?? "auto", stdout, stderr);
            using (var st = new SafeTensorsFile(w.Spec))
            {
                bool fromMetadata = st.Metadata.ContainsKey(VitConfig.MetadataKey);
                if (fromMetadata && arch != null) stderr.WriteLine($"warning: --arch {arch} ignored: {w.Spec} carries its own architecture (VitSparse metadata)");
                var c = VitModel.ReadConfig(st, arch);
                string origin = fromMetadata ? "VitSparse metadata" : "inferred from tensor shapes";
                if (Synthetic.Origin(st) is { } synthetic) origin += $", synthetic weights from {synthetic}";
                stdout.Write(Describe(c, origin));
            }
            var model = VitModel.Load(w.Spec, options);
            stdout.WriteLine();
            stdout.Write(DescribeFormats(model, pr.GetValue(CliApp.SparseOption) ?? "auto"));
            return 0;
        }));
        return cmd;
    }

    static int InspectSwin(Weights w, string? arch, LoadOptions options, string mode, TextWriter stdout, TextWriter stderr)
    {
        using (var st = new SafeTensorsFile(w.Spec))
        {
            bool fromMetadata = st.Metadata.ContainsKey(VitConfig.MetadataKey);
            if (fromMetadata && arch != null) stderr.WriteLine($"warning: --arch {arch} ignored: {w.Spec} carries its own architecture (VitSparse metadata)");
            string origin = fromMetadata ? "VitSparse metadata" : "inferred from tensor shapes";
            if (Synthetic.Origin(st) is { } synthetic) origin += $", synthetic weights from {synthetic}";
            stdout.Write(Classifier.DescribeSwin(SwinFile.ReadConfig(st, arch), origin));
        }
        stdout.WriteLine();
        stdout.Write(Classifier.DescribeFormats(w.LoadSwin(options), mode));
        return 0;
    }

    /// <summary>Each linear layer's kernel format as loaded: density, non-zero parameters, dense and kernel MACs per image.</summary>
    internal static string DescribeFormats(VitModel model, string mode)
    {
        var inv = CultureInfo.InvariantCulture;
        var c = model.Config;
        var sw = new StringWriter(inv);
        var (dense, kernel) = WriteFormatTable(sw, model.LinearLayers, l => l.RowsPerImage(c), mode);
        sw.WriteLine($"linear layers: {(dense / 1e9).ToString("0.000", inv)} GMAC dense, {(kernel / 1e9).ToString("0.000", inv)} GMAC in the chosen kernels ({(dense / (double)Math.Max(1, kernel)).ToString("0.00", inv)}× fewer)");
        return sw.ToString();
    }

    /// <summary>The per-layer format table of either model family; returns the dense and kernel MACs per image.</summary>
    internal static (long Dense, long Kernel) WriteFormatTable(StringWriter sw, IReadOnlyList<LayerFormat> layers, Func<LayerFormat, long> rowsPerImage, string mode)
    {
        var inv = CultureInfo.InvariantCulture;
        sw.WriteLine($"linear layers as loaded (--sparse {mode}; MACs per image):");
        sw.WriteLine();
        var t = new MarkdownTable("layer", "N×K", "format", "density", "non-zero params", "dense MMAC", "kernel MMAC").RightAlign(3, 4, 5, 6);
        long dense = 0, kernel = 0;
        foreach (var l in layers)
        {
            long rows = rowsPerImage(l);
            long d = rows * l.N * l.K, k = rows * l.KernelMacsPerRow;
            dense += d; kernel += k;
            t.Add(l.Layer, $"{l.N}×{l.K}", l.Describe(), l.Density.ToString("0.000", inv), l.NonZeros.ToString("N0", inv), (d / 1e6).ToString("0.0", inv), (k / 1e6).ToString("0.0", inv));
        }
        sw.Write(t);
        sw.WriteLine();
        return (dense, kernel);
    }

    internal static string Describe(VitConfig c, string origin)
    {
        var inv = CultureInfo.InvariantCulture;
        var sw = new StringWriter(inv);
        sw.WriteLine($"model {c.Name} ({origin}): image {c.ImageSize}, patch {c.PatchSize}, tokens {c.Tokens}, embed {c.EmbedDim}, classes {c.NumClasses}, depth {c.Depth}{(c.Distilled ? ", distilled" : "")}, kernels {Isa.Describe()}");
        sw.WriteLine();
        var blocks = new MarkdownTable("block", "heads", "Q/K per head", "V per head", "Q/K total", "V total", "FFN", "scale").RightAlign(0, 1, 4, 5, 6, 7);
        for (int i = 0; i < c.Depth; i++)
        {
            var b = c.Blocks[i];
            blocks.Add(i, b.Heads, string.Join(",", b.QkWidths), string.Join(",", b.VWidths), b.QkTotal, b.VTotal, b.MlpHidden, b.AttnScale.ToString("0.######", inv));
        }
        sw.Write(blocks);
        sw.WriteLine();
        var layers = new MarkdownTable("layer", "shape", "params", "MMAC").RightAlign(2, 3);
        foreach (var l in ModelStats.Layers(c))
            layers.Add(l.Name, l.Shape, l.Params.ToString("N0", inv), (l.Macs / 1e6).ToString("0.000", inv));
        sw.Write(layers);
        sw.WriteLine();
        sw.WriteLine($"total: {ModelStats.Params(c).ToString("N0", inv)} params, {(ModelStats.Macs(c) / 1e9).ToString("0.000", inv)} GMAC per image");
        return sw.ToString();
    }
}
