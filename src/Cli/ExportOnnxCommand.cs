using System.CommandLine;
using System.Globalization;
using VitSparse.Interop.Onnx;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;

namespace VitSparse.Cli;

/// <summary>`vitsparse export-onnx`: any model VitSparse loads (dense, ragged, distilled, sparse) as a standard ONNX file.</summary>
static class ExportOnnxCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var weights = new Option<string>("--weights") { Description = "model .safetensors (timm DeiT or VitSparse, dense, pruned or sparse), or seeded:ARCH for synthetic weights", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "the .onnx file to write (atomically: nothing is left on failure)", Required = true };
        var opset = new Option<int>("--opset") { Description = $"ONNX opset, {OnnxExporter.MinOpset} to {OnnxExporter.MaxOpset}", DefaultValueFactory = _ => OnnxExporter.MinOpset };
        var batch = new Option<string>("--batch") { Description = "batch dimension of 'images' and 'logits': dynamic, or a fixed number of images", DefaultValueFactory = _ => "dynamic" };
        var cmd = new Command("export-onnx", "write the model as ONNX (input 'images' [batch, C, H, W] preprocessed, output 'logits'); sparse layers are written dense")
        {
            weights, output, CliApp.ArchOption, opset, batch, CliApp.NonFiniteOption,
        };
        cmd.SetAction(pr => CliApp.Guard(pr, stderr, () =>
        {
            // Arguments and the output path are checked before anything is loaded.
            var options = CliApp.Options(pr, stderr);
            var exportOptions = new OnnxExportOptions { Opset = OnnxExporter.CheckOpset(pr.GetValue(opset), "--opset"), Batch = ParseBatch(pr.GetValue(batch)) };
            string outPath = Check.Output("--output", pr.GetValue(output)!);
            var w = Weights.Check(pr.GetValue(weights)!, options.Arch);
            if (w.IsSwin) throw new InputException("--weights", $"{w.Spec} is a Swin; export-onnx writes DeiT models (dense, ragged, distilled, sparse) only");

            OnnxExportSummary summary;
            VitModel model;
            string? synthetic;
            if (w.Seeded != null)
            {
                var source = new SeededWeights(w.Seeded);
                model = VitModel.FromSource(source, w.Seeded, options);
                summary = OnnxExporter.Write(outPath, w.Seeded, source, exportOptions);
                synthetic = w.Spec;
            }
            else
            {
                using var file = new SafeTensorsFile(w.Spec);
                OnnxExporter.RefuseUnknownTensors(file, null);
                if (options.Arch != null && file.Metadata.ContainsKey(VitConfig.MetadataKey))
                    stderr.WriteLine($"warning: --arch {options.Arch} ignored: {w.Spec} carries its own architecture (VitSparse metadata)");
                var config = VitModel.ReadConfig(file, options.Arch);
                OnnxExporter.RefuseUnknownTensors(file, config);
                var source = new SafeTensorsSource(file);
                // Loading checks what the exporter relies on (shapes, NaN/Inf) and tells which layers run sparse here.
                model = VitModel.FromSource(source, config, options);
                summary = OnnxExporter.Write(outPath, config, source, exportOptions);
                synthetic = Synthetic.Origin(file);
            }
            if (synthetic != null) stdout.WriteLine(Synthetic.Notice(synthetic));
            stdout.Write(Describe(model.Config, summary, model.LinearLayers, outPath, new FileInfo(outPath).Length));
            return 0;
        }));
        return cmd;
    }

    /// <summary>--batch: "dynamic" (symbolic) or a positive number.</summary>
    internal static int? ParseBatch(string? value)
    {
        if (value is null or "dynamic") return null;
        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 1) return n;
        throw new InputException("--batch", $"'{value}' is neither 'dynamic' nor a number of images of at least 1");
    }

    /// <summary>What the export wrote: the model kind, how its attention became ONNX, and the sparse layers written dense.</summary>
    internal static string Describe(VitConfig c, OnnxExportSummary s, IReadOnlyList<LayerFormat> layers, string path, long bytes)
    {
        var inv = CultureInfo.InvariantCulture;
        var sw = new StringWriter(inv);
        bool pruned = c.Blocks.Any(b => b.QkWidths.Concat(b.VWidths).Any(x => x * b.Heads != c.EmbedDim) || b.MlpHidden != 4 * c.EmbedDim);
        string kind = (pruned ? "ragged (pruned widths)" : "dense") + (c.Distilled ? ", distilled" : "");
        sw.WriteLine($"exported {c.Name} ({kind}) to {path}: opset {s.Opset}, batch {s.Batch}, {s.Nodes} nodes, {(bytes / 1e6).ToString("0.0", inv)} MB");
        sw.WriteLine($"attention: {s.UniformBlocks} block(s) with even heads as batched multi-head MatMuls; {s.SlicedBlocks} block(s) with uneven heads as {s.SlicedHeads} per-head Q/K/V slices of their exact widths (no padding)");
        if (c.Distilled) sw.WriteLine("logits: the mean of the class head and the distillation head, as VitSparse computes them");
        var sparse = layers.Where(l => l.Format != WeightFormat.Dense).ToList();
        if (sparse.Count > 0)
        {
            string formats = string.Join(", ", sparse.GroupBy(l => l.Describe()).Select(g => $"{g.Count()} {g.Key}"));
            sw.WriteLine($"sparse layers exported dense: {sparse.Count} of {layers.Count} linear layers run sparse in VitSparse ({formats}); " +
                "the ONNX file stores them as dense MatMul weights, zeros included: the same logits, without the sparse speedup");
        }
        return sw.ToString();
    }
}
