using System.CommandLine;
using VitSparse.Runtime;
using VitSparse.Runtime.Images;
using VitSparse.Runtime.Models;

namespace VitSparse.Cli;

/// <summary>The `vitsparse` command. Every input error ends as one line on stderr and exit code 2.</summary>
public static class CliApp
{
    /// <summary>Runs the command line <paramref name="args"/>, writing to the given streams; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("VitSparse: run and inspect (pruned) Vision Transformers on the CPU")
        {
            InferCommand.Create(stdout, stderr),
            InspectCommand.Create(stdout, stderr),
            PruneCommand.Create(stdout, stderr),
            FidelityCommand.Create(stdout, stderr),
            EvalCommand.Create(stdout, stderr),
            MetersCommand.Create(stdout, stderr),
            GradCommand.Create(stdout, stderr),
            ExportOnnxCommand.Create(stdout, stderr),
        };
        root.Options.Add(VerboseOption);
        var result = root.Parse(args);
        if (ParseErrors.Describe(result) is { } error)
        {
            stderr.WriteLine($"error: {error}");
            return InputError;
        }
        return result.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
    }

    internal static readonly Option<string?> ArchOption = new("--arch")
    {
        Description = "architecture for checkpoints without VitSparse metadata (e.g. deit_s, deit_b_distilled, swin_t)",
    };

    internal static readonly Option<string> NonFiniteOption = new("--nonfinite")
    {
        Description = "what to do with NaN/Inf in the weights and in .npy inputs: refuse, warn or allow",
        DefaultValueFactory = _ => "refuse",
    };

    internal static readonly Option<string> SparseOption = new("--sparse")
    {
        Description = "kernels for linear layers with zeros: auto (per layer, from the cost model), off or dense, bsr, unstructured",
        DefaultValueFactory = _ => "auto",
    };

    static readonly string[] SparseModes = ["auto", "off", "dense", "bsr", "unstructured"];

    internal static SparseMode ParseSparse(string? value) => value switch
    {
        null or "auto" => SparseMode.Auto,
        "off" or "dense" => SparseMode.Off,
        "bsr" => SparseMode.Bsr,
        "unstructured" => SparseMode.Unstructured,
        _ => throw new InputException("--sparse", $"'{value}' is not one of {string.Join(", ", SparseModes)}{Runtime.Text.DidYouMean.Hint(value, SparseModes)}"),
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

    internal static readonly Option<bool> VerboseOption = new("--verbose")
    {
        Description = "print the stack trace of an internal error",
        Recursive = true,
    };

    /// <summary>Intra-op threads: every command that runs the model takes it, and refuses a count below 1.</summary>
    internal static Option<int> ThreadsOption(string description = "intra-op threads (default: all cores)") => new("--threads")
    {
        Description = description,
        DefaultValueFactory = _ => Environment.ProcessorCount,
    };

    /// <summary>--max-image-side and --max-image-pixels.</summary>
    internal static (int Side, long Pixels) ImageLimits(ParseResult pr) =>
        (Check.AtLeast(pr, MaxImageSideOption, 1), Check.AtLeast(pr, MaxImagePixelsOption, 1L));

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

    /// <summary>--nonfinite as a policy (for weights and for inputs).</summary>
    internal static NonFinitePolicy NonFinite(ParseResult pr) => pr.GetValue(NonFiniteOption) switch
    {
        "refuse" => NonFinitePolicy.Refuse,
        "warn" => NonFinitePolicy.Warn,
        "allow" => NonFinitePolicy.Allow,
        var v => throw new InputException("--nonfinite", $"'{v}' is not one of refuse, warn, allow{Runtime.Text.DidYouMean.Hint(v ?? "", ["refuse", "warn", "allow"])}"),
    };

    /// <summary>Load options from --arch (checked to be a known name), --nonfinite and --sparse (where the command has it).</summary>
    internal static LoadOptions Options(ParseResult pr, TextWriter stderr)
    {
        string? arch = pr.GetValue(ArchOption);
        Classifier.CheckArch(arch);
        var sparse = pr.CommandResult.Command.Options.Contains(SparseOption) ? ParseSparse(pr.GetValue(SparseOption)) : SparseMode.Auto;
        return new LoadOptions { Arch = arch, NonFinite = NonFinite(pr), Warn = stderr.WriteLine, Sparse = sparse };
    }
}
