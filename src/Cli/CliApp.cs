using System.CommandLine;
using System.Globalization;
using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Images;
using VitSparse.Runtime.Models;
using VitSparse.Runtime.Text;

namespace VitSparse.Cli;

/// <summary>The `vitsparse` command. Every input error ends as one line on stderr and a non-zero exit code.</summary>
public static class CliApp
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("VitSparse: run and inspect (pruned) Vision Transformers on the CPU")
        {
            InferCommand(stdout, stderr),
            InspectCommand(stdout, stderr),
            PruneCommand.Create(stdout, stderr),
            FidelityCommand.Create(stdout, stderr),
            EvalCommand.Create(stdout, stderr),
            MetersCommand.Create(stdout, stderr),
            GradCommand.Create(stdout, stderr),
        };
        root.Options.Add(VerboseOption);
        var result = root.Parse(args);
        return result.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
    }

    internal static readonly Option<string?> ArchOption = new("--arch")
    {
        Description = "architecture for checkpoints without VitSparse metadata (e.g. deit_s, deit_b_distilled)",
    };

    internal static readonly Option<string> NonFiniteOption = new("--nonfinite")
    {
        Description = "what to do with NaN/Inf weights: refuse, warn or allow",
        DefaultValueFactory = _ => "refuse",
    };

    internal static readonly Option<int> MaxImageSideOption = new("--max-image-side")
    {
        Description = "refuse JPEG/PNG images wider or taller than this many pixels, before decoding (decompression-bomb guard)",
        DefaultValueFactory = _ => ImageFile.DefaultMaxSide,
    };

    internal static readonly Option<long> MaxImagePixelsOption = new("--max-image-pixels")
    {
        Description = "refuse JPEG/PNG images with more pixels (width×height) than this, before decoding (default: PIL's MAX_IMAGE_PIXELS)",
        DefaultValueFactory = _ => ImageFile.DefaultMaxPixels,
    };

    internal static readonly Option<string?> ClassesOption = new("--classes")
    {
        Description = "class names file, one per line in output order (default: the model's metadata, else for 1000 classes Debian opencv-doc's ImageNet list)",
    };

    /// <summary>--max-image-side and --max-image-pixels.</summary>
    internal static (int Side, long Pixels) ImageLimits(ParseResult pr)
    {
        int side = pr.GetValue(MaxImageSideOption);
        long pixels = pr.GetValue(MaxImagePixelsOption);
        if (side < 1) throw new InputException("--max-image-side", $"must be at least 1, got {side}");
        if (pixels < 1) throw new InputException("--max-image-pixels", $"must be at least 1, got {pixels}");
        return (side, pixels);
    }

    internal static readonly Option<bool> VerboseOption = new("--verbose")
    {
        Description = "print the stack trace of an internal error",
        Recursive = true,
    };

    /// <summary>Exit code of an input error of ours (one line on stderr).</summary>
    public const int InputError = 2;
    /// <summary>Exit code of an exception we did not foresee: a bug of ours, never the user's fault.</summary>
    public const int InternalError = 3;

    /// <summary>
    /// Runs a command's body: our errors become one line and exit code 2; anything else is a bug of ours and
    /// still ends as one line (exit code 3), with the stack trace only under --verbose.
    /// </summary>
    internal static int Guard(ParseResult pr, TextWriter stderr, Func<int> body)
    {
        try { return body(); }
        catch (VitSparseException e) { stderr.WriteLine($"error: {e.Message}"); return InputError; }
        catch (IOException e) { stderr.WriteLine($"error: {e.Message}"); return InputError; }
        catch (UnauthorizedAccessException e) { stderr.WriteLine($"error: {e.Message}"); return InputError; }
        catch (Exception e)
        {
            stderr.WriteLine($"internal error: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}, please report with the input file");
            if (pr.GetValue(VerboseOption)) stderr.WriteLine(e);
            return InternalError;
        }
    }

    internal static LoadOptions Options(ParseResult pr, TextWriter stderr) => new()
    {
        Arch = pr.GetValue(ArchOption),
        NonFinite = pr.GetValue(NonFiniteOption) switch
        {
            "refuse" => NonFinitePolicy.Refuse,
            "warn" => NonFinitePolicy.Warn,
            "allow" => NonFinitePolicy.Allow,
            var v => throw new InputException("--nonfinite", $"'{v}' is not one of refuse, warn, allow"),
        },
        Warn = stderr.WriteLine,
    };

    static Command InferCommand(TextWriter stdout, TextWriter stderr)
    {
        var weights = new Option<string>("--weights") { Description = "model .safetensors (VitSparse compact or timm DeiT)", Required = true };
        var input = new Option<string[]>("--input") { Description = "float32 NCHW .npy of preprocessed images, or image files (.jpg, .png)", Required = true, AllowMultipleArgumentsPerToken = true };
        var output = new Option<string?>("--output") { Description = "where to write float32 [batch, classes] logits (.npy); required for .npy input" };
        var threads = new Option<int>("--threads") { Description = "intra-op threads (default: all cores)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var cmd = new Command("infer", "run a model on images (top-5 classes) or on a preprocessed batch (logits to .npy)")
        {
            weights, input, output, ArchOption, threads, NonFiniteOption, ClassesOption, MaxImageSideOption, MaxImagePixelsOption,
        };
        cmd.SetAction(pr => Guard(pr, stderr, () =>
        {
            int t = pr.GetValue(threads);
            if (t < 1) throw new InputException("--threads", $"must be at least 1, got {t}");
            var inputs = pr.GetValue(input) ?? [];
            if (inputs.Length == 0) throw new InputException("--input", "give a .npy file or image files");
            var limits = ImageLimits(pr);
            var model = VitModel.Load(pr.GetValue(weights)!, Options(pr, stderr));
            var c = model.Config;
            bool npy = inputs.Length == 1 && inputs[0].EndsWith(".npy", StringComparison.OrdinalIgnoreCase);
            // Names are resolved before the work so a bad names file fails fast.
            var (names, namesOrigin) = npy ? (null, "") : ClassNames.Resolve(pr.GetValue(weights)!, c.NumClasses, pr.GetValue(ClassesOption));
            int batch;
            float[] x;
            if (npy)
            {
                if (pr.GetValue(output) == null) throw new InputException("--output", "needed with a .npy input: where the logits go");
                var a = Npy.Read(inputs[0]);
                (batch, x) = (a.RequireImages(c, "--input", inputs[0]), a.Data);
            }
            else
            {
                batch = inputs.Length;
                x = new float[(long)batch * c.ImageElements];
                for (int i = 0; i < batch; i++)
                    ImageFile.ToTensor(inputs[i], c, x.AsSpan(i * c.ImageElements, c.ImageElements), limits.Side, limits.Pixels);
            }
            var logits = new float[(long)batch * c.NumClasses];
            using (var session = new InferenceSession(model, t))
            {
                const int chunk = 64;
                for (int b0 = 0; b0 < batch; b0 += chunk)
                {
                    int n = Math.Min(chunk, batch - b0);
                    session.Run(x.AsSpan(b0 * c.ImageElements, n * c.ImageElements), n, logits.AsSpan(b0 * c.NumClasses, n * c.NumClasses));
                }
            }
            if (pr.GetValue(output) is { } outPath)
            {
                Npy.Write(outPath, [batch, c.NumClasses], logits);
                stdout.WriteLine($"wrote {batch}×{c.NumClasses} logits to {outPath}");
            }
            if (names != null)
            {
                stdout.WriteLine($"class names: {namesOrigin}");
                for (int i = 0; i < batch; i++)
                {
                    var row = logits.AsSpan(i * c.NumClasses, c.NumClasses).ToArray();
                    System.Numerics.Tensors.TensorPrimitives.SoftMax(row, row);
                    stdout.WriteLine(inputs[i]);
                    foreach (int k in Enumerable.Range(0, c.NumClasses).OrderByDescending(k => row[k]).Take(5))
                        stdout.WriteLine($"  {row[k] * 100,6:0.00}%  {names[k]}");
                }
            }
            return 0;
        }));
        return cmd;
    }

    static Command InspectCommand(TextWriter stdout, TextWriter stderr)
    {
        var file = new Argument<string>("weights") { Description = "model .safetensors" };
        var cmd = new Command("inspect", "print the architecture, per-block widths, parameters and MACs") { file, ArchOption };
        cmd.SetAction(pr => Guard(pr, stderr, () =>
        {
            using var st = new SafeTensorsFile(pr.GetValue(file)!);
            bool fromMetadata = st.Metadata.ContainsKey(VitConfig.MetadataKey);
            var c = VitModel.ReadConfig(st, pr.GetValue(ArchOption));
            stdout.Write(Describe(c, fromMetadata ? "VitSparse metadata" : "inferred from tensor shapes"));
            return 0;
        }));
        return cmd;
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
