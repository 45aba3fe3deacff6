using Google.Protobuf;
using VitSparse.Interop.Onnx.Proto;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using static VitSparse.Interop.Onnx.OnnxGraphBuilder;

namespace VitSparse.Interop.Onnx;

/// <summary>How <see cref="OnnxExporter"/> writes a model.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>ONNX opset of the default domain, <see cref="OnnxExporter.MinOpset"/> to <see cref="OnnxExporter.MaxOpset"/>.</summary>
    public int Opset { get; init; } = OnnxExporter.MinOpset;
    /// <summary>Images per inference fixed in the graph's input shape; null for a symbolic (dynamic) batch.</summary>
    public int? Batch { get; init; }
}

/// <summary>What an export wrote: the graph's size and how each kind of block became ONNX.</summary>
/// <param name="Opset">the opset written.</param>
/// <param name="Batch">the batch dimension: a number, or "dynamic" (the symbolic dimension "batch").</param>
/// <param name="Nodes">nodes in the graph.</param>
/// <param name="InitializerBytes">bytes of weights and constants.</param>
/// <param name="UniformBlocks">blocks whose heads share one Q/K and one V width: one batched multi-head attention (Reshape/Transpose/MatMul).</param>
/// <param name="SlicedBlocks">blocks with uneven heads: every head its own Slice of Q, K and V with its exact widths.</param>
/// <param name="SlicedHeads">heads exported as their own slices.</param>
/// <param name="Distilled">whether the graph averages the class and distillation heads.</param>
public sealed record OnnxExportSummary(int Opset, string Batch, int Nodes, long InitializerBytes, int UniformBlocks, int SlicedBlocks, int SlicedHeads, bool Distilled);

/// <summary>
/// Writes a DeiT (dense, ragged SNP, distilled; any linear stored sparse is written dense) as an ONNX model
/// with standard opset-17 operators: input "images" [batch, C, H, W] (preprocessed, as <see cref="InferenceSession"/>
/// takes them), output "logits" [batch, classes]. The graph computes what <see cref="InferenceSession"/> computes:
/// exact erf GELU (Erf/Div/Mul/Add: ONNX Gelu only exists from opset 20), LayerNormalization, and attention as
/// MatMul/Softmax. Heads of uneven widths become one Slice per head of Q, K and V with their exact widths (no
/// padding): ONNX Runtime's fused Attention operator assumes one head size, so it cannot express them.
/// </summary>
public static class OnnxExporter
{
    /// <summary>The lowest opset written (LayerNormalization exists from 17).</summary>
    public const int MinOpset = 17;
    /// <summary>The highest opset written and tested with ONNX Runtime.</summary>
    public const int MaxOpset = 21;
    /// <summary>A protobuf message, and so an ONNX file without external data, is at most 2 GiB.</summary>
    public const long MaxInitializerBytes = (1L << 31) - (64L << 20);

    /// <summary>The ONNX IR version that goes with each opset (onnx/docs/Versioning.md).</summary>
    static long IrVersion(int opset) => opset switch { 17 or 18 => 8, 19 or 20 => 9, _ => 10 };

    /// <summary>Refuses an opset outside [<see cref="MinOpset"/>, <see cref="MaxOpset"/>], naming <paramref name="argument"/>.</summary>
    public static int CheckOpset(int opset, string argument = "opset") => opset is >= MinOpset and <= MaxOpset ? opset
        : throw new InputException(argument, $"opset {opset} is not supported; the exporter writes opset {MinOpset} to {MaxOpset} (LayerNormalization needs 17)");

    /// <summary>Refuses a fixed batch below 1, naming <paramref name="argument"/>.</summary>
    public static int? CheckBatch(int? batch, string argument = "batch") => batch is null or >= 1 ? batch
        : throw new InputException(argument, $"must be at least 1 (or dynamic), got {batch}");

    /// <summary>
    /// Refuses a checkpoint holding tensors the DeiT graph would not use (LayerScale gammas, Swin stages,
    /// relative position tables…): exporting without them would silently change what the model computes.
    /// Without <paramref name="config"/> (before the architecture is read) only tensors that mark another model
    /// family are refused; with it, every tensor outside the architecture's layout. Sparse-stored weights' parts
    /// (<see cref="SparseStorage"/>) belong to the weight they encode.
    /// </summary>
    public static void RefuseUnknownTensors(SafeTensorsFile file, VitConfig? config)
    {
        var expected = config != null ? VitLayout.ExpectedShapes(config) : null;
        var stored = config != null ? SparseStorage.Read(file) : null;
        foreach (var t in file.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            string? family = OtherFamily(t.Name);
            if (expected == null ? family == null
                : expected.ContainsKey(t.Name) || stored!.Keys.Any(w => t.Name.StartsWith(w + ".", StringComparison.Ordinal))) continue;
            throw new ModelException($"{file.Path}: tensor '{t.Name}' is not part of a DeiT (it suggests {family ?? "an operation outside DeiT"}); " +
                "the ONNX exporter writes DeiT models (dense, ragged, distilled, sparse) only and would drop it", t.Name);
        }
    }

    static string? OtherFamily(string tensor) =>
        tensor.StartsWith("layers.", StringComparison.Ordinal) ? "a hierarchical (Swin-style) model"
        : tensor.Contains("relative_position", StringComparison.Ordinal) ? "relative position bias"
        : tensor.Contains(".ls1.", StringComparison.Ordinal) || tensor.Contains(".ls2.", StringComparison.Ordinal) || tensor.Contains("gamma", StringComparison.Ordinal) ? "LayerScale (DeiT III, CaiT)"
        : null;

    /// <summary>Writes the model to <paramref name="path"/> atomically: on any failure no file (and no partial file) is left.</summary>
    public static OnnxExportSummary Write(string path, VitConfig config, ITensorSource weights, OnnxExportOptions? options = null)
    {
        AtomicFile.CheckWritable(path);
        var (model, summary) = Build(config, weights, options ?? new OnnxExportOptions());
        AtomicFile.Write(path, s => model.WriteTo(s));
        return summary;
    }

    /// <summary>The model's ONNX bytes (tests, in-memory sessions).</summary>
    public static byte[] ToBytes(VitConfig config, ITensorSource weights, OnnxExportOptions? options = null) =>
        Build(config, weights, options ?? new OnnxExportOptions()).Model.ToByteArray();

    static (ModelProto Model, OnnxExportSummary Summary) Build(VitConfig c, ITensorSource w, OnnxExportOptions o)
    {
        int opset = CheckOpset(o.Opset);
        CheckBatch(o.Batch);
        c.Validate();
        foreach (var (name, shape) in VitLayout.ExpectedShapes(c))
        {
            if (!w.Contains(name)) throw new ModelException($"{w.Description}: missing tensor '{name}' (architecture '{c.Name}')", name);
            long elements = shape.Aggregate(1L, (a, b) => a * b), actual = w.Shape(name).Aggregate(1L, (a, b) => a * b);
            if (elements != actual) throw new ModelException($"{w.Description}: tensor '{name}' has shape [{string.Join(",", w.Shape(name))}], but the architecture '{c.Name}' needs [{string.Join(",", shape)}]", name);
        }
        long weightBytes = VitLayout.ExpectedShapes(c).Values.Sum(s => 4 * s.Aggregate(1L, (a, b) => a * b));
        if (weightBytes > MaxInitializerBytes)
            throw new ModelException($"{w.Description}: {weightBytes / (1 << 20)} MiB of weights do not fit one ONNX protobuf file (2 GiB at most); external data is not supported");

        var graph = new GraphProto { Name = c.Name };
        var g = new OnnxGraphBuilder(graph);
        var (uniform, sliced, heads) = DeitGraph.Write(g, c, w);
        string batch = o.Batch?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "dynamic";
        long? b = o.Batch;
        graph.Input.Add(FloatValue("images", "batch", b, c.InChannels, c.ImageSize, c.ImageSize));
        graph.Output.Add(FloatValue("logits", "batch", b, c.NumClasses));
        var model = new ModelProto
        {
            IrVersion = IrVersion(opset),
            ProducerName = "vitsparse",
            ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "",
            Graph = graph,
            DocString = $"{c.Name}: input 'images' [batch, {c.InChannels}, {c.ImageSize}, {c.ImageSize}] preprocessed (mean/std applied), output 'logits' [batch, {c.NumClasses}]",
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        model.MetadataProps.Add(new StringStringEntryProto { Key = VitConfig.MetadataKey, Value = c.ToJson() });
        return (model, new OnnxExportSummary(opset, batch, g.NodeCount, g.InitializerBytes, uniform, sliced, heads, c.Distilled));
    }
}
