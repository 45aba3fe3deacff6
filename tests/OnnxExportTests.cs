using Microsoft.ML.OnnxRuntime;
using VitSparse.Interop.Onnx;
using VitSparse.Interop.Onnx.Proto;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;
using Xunit.Abstractions;
using OrtSession = Microsoft.ML.OnnxRuntime.InferenceSession;

namespace VitSparse.Tests;

/// <summary>
/// `vitsparse export-onnx` run in ONNX Runtime (NuGet Microsoft.ML.OnnxRuntime, official C# API): every model
/// kind VitSparse loads gives the logits VitSparse computes (≤ 1e-4 relative); uneven heads are per-head slices
/// of their exact widths; a dynamic and a fixed batch agree; every opset written loads.
/// </summary>
public class OnnxExportTests(ITestOutputHelper log)
{
    /// <summary>Fixture name → its input file: dense DeiT (ours and plain timm), ragged SNP-style, ragged distilled bf16.</summary>
    public static TheoryData<string, string> Models => new()
    {
        { "deit_fmnist", "deit_fmnist.sample.input.npy" },
        { "timm_uniform_f16", "timm_uniform_f16.input.npy" },
        { "ragged_tiny", "ragged_tiny.input.npy" },
        { "ragged_distilled_bf16", "ragged_distilled_bf16.input.npy" },
    };

    internal static float[] RunOrt(string onnxPath, float[] images, int batch, VitConfig c)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        using var session = new OrtSession(onnxPath, options);
        using var input = OrtValue.CreateTensorValueFromMemory(images, [batch, c.InChannels, c.ImageSize, c.ImageSize]);
        using var run = new RunOptions();
        using var results = session.Run(run, ["images"], [input], ["logits"]);
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    internal static float[] RunVitSparse(VitModel model, float[] images, int batch)
    {
        var logits = new float[batch * model.Config.NumClasses];
        using var session = new VitSparse.Runtime.InferenceSession(model, 2);
        session.Run(images, batch, logits);
        return logits;
    }

    static double MaxAbsDiff(float[] a, float[] b) => a.Zip(b).Max(p => Math.Abs((double)p.First - p.Second));

    [Theory, MemberData(nameof(Models))]
    public void Exported_model_gives_vitsparse_logits_in_onnx_runtime(string name, string inputFile)
    {
        string onnx = Path.Combine(Fixtures.TempDir(), name + ".onnx");
        // timm_uniform_f16 is a plain timm checkpoint: its architecture is inferred from tensor shapes.
        var (code, stdout, err) = Fixtures.Cli("export-onnx", "--weights", Fixtures.Path_(name + ".safetensors"), "-o", onnx);
        Assert.True(code == 0, err);
        Assert.Contains($"to {onnx}: opset 17, batch dynamic", stdout);
        var model = VitModel.Load(Fixtures.Path_(name + ".safetensors"));
        var input = Fixtures.Npy_(inputFile);
        int batch = input.Shape[0];
        var ours = RunVitSparse(model, input.Data, batch);
        var ort = RunOrt(onnx, input.Data, batch, model.Config);
        log.WriteLine($"{name}: max |Δlogit| ONNX Runtime {OrtEnv.Instance().GetVersionString()} vs VitSparse = {MaxAbsDiff(ours, ort):0.0e+0} (max |logit| {ours.Max(Math.Abs):0.00}, batch {batch})");
        Fixtures.AssertClose(ours, ort, 1e-4, name);
    }

    [Fact]
    public void Reported_model_kinds_name_ragged_distilled_and_sliced_heads()
    {
        string dir = Fixtures.TempDir();
        var (code, stdout, err) = Fixtures.Cli("export-onnx", "--weights", Fixtures.Path_("ragged_distilled_bf16.safetensors"), "-o", Path.Combine(dir, "d.onnx"));
        Assert.True(code == 0, err);
        Assert.Contains("(ragged (pruned widths), distilled)", stdout);
        Assert.Contains("1 block(s) with even heads as batched multi-head MatMuls; 1 block(s) with uneven heads as 3 per-head Q/K/V slices", stdout);
        Assert.Contains("the mean of the class head and the distillation head", stdout);
        Assert.DoesNotContain("sparse layers", stdout);
        (code, stdout, err) = Fixtures.Cli("export-onnx", "--weights", Fixtures.Path_("deit_fmnist.safetensors"), "-o", Path.Combine(dir, "f.onnx"), "--batch", "4");
        Assert.True(code == 0, err);
        Assert.Contains("deit_fmnist (dense)", stdout);
        Assert.Contains("batch 4,", stdout);
    }

    [Fact]
    public void Uneven_heads_become_slices_of_their_exact_widths_without_fused_attention()
    {
        var file = new SafeTensorsFile(Fixtures.Path_("ragged_tiny.safetensors"));
        using (file)
        {
            var c = VitModel.ReadConfig(file, null);
            var proto = ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(c, new SafeTensorsSource(file)));
            Assert.Equal(17, proto.OpsetImport.Single().Version);
            Assert.Equal(8, proto.IrVersion);
            Assert.All(proto.Graph.Node, n => Assert.Equal("", n.Domain));
            Assert.DoesNotContain(proto.Graph.Node, n => n.OpType is "Attention" or "MultiHeadAttention" or "Gelu");
            var ints = proto.Graph.Initializer.Where(t => t.DataType == (int)TensorProto.Types.DataType.Int64).ToDictionary(t => t.Name, t => t.Int64Data.ToArray());
            long Width(string slice)
            {
                var n = proto.Graph.Node.Single(x => x.Name == slice);
                Assert.Equal("Slice", n.OpType);
                return ints[n.Input[2]][0] - ints[n.Input[1]][0];
            }
            for (int i = 0; i < c.Depth; i++)
            {
                var b = c.Blocks[i];
                for (int h = 0; h < b.Heads; h++)
                {
                    Assert.Equal(b.QkWidths[h], Width($"blocks.{i}.attn.head{h}.q"));
                    Assert.Equal(b.QkWidths[h], Width($"blocks.{i}.attn.head{h}.k"));
                    Assert.Equal(b.VWidths[h], Width($"blocks.{i}.attn.head{h}.v"));
                }
            }
            // Weights are stored once each, at their exact sizes: no padded head.
            long floats = proto.Graph.Initializer.Where(t => t.DataType == (int)TensorProto.Types.DataType.Float).Sum(t => t.RawData.Length / 4L);
            long scalars = proto.Graph.Initializer.Count(t => t.DataType == (int)TensorProto.Types.DataType.Float && t.Dims.Count == 0);
            // The class token is folded into its position (prefix tokens + patch positions = pos_embed's size).
            Assert.Equal(ModelStats.Params(c) - c.PrefixTokens * c.EmbedDim, floats - scalars);
        }
    }

    [Fact]
    public void Dynamic_and_fixed_batch_agree_and_declare_their_shapes()
    {
        string dir = Fixtures.TempDir(), dynamic = Path.Combine(dir, "dyn.onnx"), fixedThree = Path.Combine(dir, "b3.onnx");
        string weights = Fixtures.Path_("ragged_tiny.safetensors");
        Assert.Equal(0, Fixtures.Cli("export-onnx", "--weights", weights, "-o", dynamic, "--batch", "dynamic").Code);
        Assert.Equal(0, Fixtures.Cli("export-onnx", "--weights", weights, "-o", fixedThree, "--batch", "3").Code);
        using (var s = new OrtSession(dynamic)) Assert.Equal(new[] { -1, 3, 32, 32 }, s.InputMetadata["images"].Dimensions);
        using (var s = new OrtSession(fixedThree))
        {
            Assert.Equal(new[] { 3, 3, 32, 32 }, s.InputMetadata["images"].Dimensions);
            Assert.Equal(new[] { 3, 10 }, s.OutputMetadata["logits"].Dimensions);
        }
        var c = VitModel.Load(weights).Config;
        var input = Fixtures.Npy_("ragged_tiny.input.npy").Data;
        Assert.Equal(3 * c.ImageElements, input.Length);
        var three = RunOrt(dynamic, input, 3, c);
        Fixtures.AssertClose(three, RunOrt(fixedThree, input, 3, c), 1e-6, "fixed vs dynamic batch");
        // The dynamic graph also runs one image, and gives that image's row.
        Fixtures.AssertClose(three.AsSpan(0, 10), RunOrt(dynamic, input[..c.ImageElements], 1, c), 1e-5, "batch 1 vs batch 3");
        Assert.ThrowsAny<OnnxRuntimeException>(() => RunOrt(fixedThree, input[..c.ImageElements], 1, c));
    }

    [Theory]
    [InlineData(17)]
    [InlineData(18)]
    [InlineData(19)]
    [InlineData(20)]
    [InlineData(21)]
    public void Every_opset_written_loads_and_agrees(int opset)
    {
        string onnx = Path.Combine(Fixtures.TempDir(), $"o{opset}.onnx");
        var (code, stdout, err) = Fixtures.Cli("export-onnx", "--weights", Fixtures.Path_("ragged_distilled_bf16.safetensors"), "-o", onnx, "--opset", opset.ToString());
        Assert.True(code == 0, err);
        Assert.Contains($"opset {opset}", stdout);
        var model = VitModel.Load(Fixtures.Path_("ragged_distilled_bf16.safetensors"));
        var input = Fixtures.Npy_("ragged_distilled_bf16.input.npy");
        Fixtures.AssertClose(RunVitSparse(model, input.Data, input.Shape[0]), RunOrt(onnx, input.Data, input.Shape[0], model.Config), 1e-4, $"opset {opset}");
    }

    [Fact]
    public void A_sparse_model_is_exported_dense_with_the_same_logits_and_says_so()
    {
        string dir = Fixtures.TempDir(), compact = Path.Combine(dir, "sparse.safetensors"), onnx = Path.Combine(dir, "sparse.onnx");
        var weights = SparseModelTests.ZeroHolding();
        var c = SparseModelTests.Config;
        VitModel.Save(compact, c, weights, sparse: VitModel.FromSource(weights, c).SparseLayouts());
        var model = VitModel.Load(compact);
        Assert.Contains(model.LinearLayers, l => l.Format == WeightFormat.Bsr);
        var (code, stdout, err) = Fixtures.Cli("export-onnx", "--weights", compact, "-o", onnx);
        Assert.True(code == 0, err);
        Assert.Contains("sparse layers exported dense: ", stdout);
        Assert.Contains("bsr 16×16", stdout);
        Assert.Contains("unstructured", stdout);
        var input = new float[2 * c.ImageElements];
        SeededWeights.FillInput(input, 5);
        var ours = RunVitSparse(model, input, 2);
        var ort = RunOrt(onnx, input, 2, c);
        log.WriteLine($"sparse (BSR + CSR stored): max |Δlogit| = {MaxAbsDiff(ours, ort):0.0e+0} (max |logit| {ours.Max(Math.Abs):0.00})");
        Fixtures.AssertClose(ours, ort, 1e-4, "sparse exported dense");
    }

    [Fact]
    public void Seeded_weights_export_with_the_synthetic_notice()
    {
        string onnx = Path.Combine(Fixtures.TempDir(), "t.onnx");
        var (code, stdout, err) = Fixtures.Cli("export-onnx", "--weights", "seeded:deit_t_snp", "-o", onnx);
        Assert.True(code == 0, err);
        Assert.StartsWith("synthetic weights (seeded:deit_t_snp)", stdout);
        Assert.Contains("12 block(s) with even heads", stdout);
        using var s = new OrtSession(onnx);
        Assert.Equal(new[] { -1, 1000 }, s.OutputMetadata["logits"].Dimensions);
    }

    /// <summary>Shapes of a config without values: reading a value is a test failure.</summary>
    sealed class ShapesOnly(VitConfig c) : ITensorSource
    {
        readonly Dictionary<string, long[]> _shapes = VitLayout.ExpectedShapes(c);
        public string Description => "shapes-only";
        public bool Contains(string name) => _shapes.ContainsKey(name);
        public long[] Shape(string name) => _shapes[name];
        public ReadOnlySpan<float> Floats(string name) => throw new InvalidOperationException($"read {name}");
    }

    [Fact]
    public void A_model_past_the_protobuf_limit_is_refused_before_any_weight_is_read()
    {
        // One block of width 8192 with a 32768 FFN: 3 GiB of float32.
        var c = new VitConfig("huge", 32, 8, 3, 8192, 10, false, 1e-6f, [BlockConfig.Uniform(128, 64, 32768)],
            VitConfig.ImageNetMean, VitConfig.ImageNetStd, 0.875f);
        var e = Assert.Throws<ModelException>(() => OnnxExporter.ToBytes(c, new ShapesOnly(c)));
        Assert.StartsWith("shapes-only: 3079 MiB of weights", e.Message);
        Assert.Contains("do not fit one ONNX protobuf file (2 GiB at most)", e.Message);
    }
}
