using System.CommandLine;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Images;
using VitSparse.Runtime.Models;

namespace VitSparse.Cli;

/// <summary>`vitsparse infer`: logits of a preprocessed .npy batch, or the top-5 classes of image files.</summary>
static class InferCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var weights = new Option<string>("--weights") { Description = "model .safetensors (VitSparse compact, timm DeiT or Swin), or seeded:ARCH for synthetic weights", Required = true };
        var input = new Option<string[]>("--input") { Description = "float32 NCHW .npy of preprocessed images, or image files (.jpg, .png)", Required = true, AllowMultipleArgumentsPerToken = true };
        var output = new Option<string?>("--output") { Description = "where to write float32 [batch, classes] logits (.npy); required for .npy input" };
        var threads = CliApp.ThreadsOption();
        var cmd = new Command("infer", "run a model on images (top-5 classes) or on a preprocessed batch (logits to .npy)")
        {
            weights, input, output, CliApp.ArchOption, threads, CliApp.NonFiniteOption, CliApp.ClassesOption, CliApp.MaxImageSideOption, CliApp.MaxImagePixelsOption, CliApp.SparseOption,
        };
        cmd.SetAction(pr => CliApp.Guard(pr, stderr, () =>
        {
            // Every argument and path is checked before the model is loaded.
            int t = Check.AtLeast(pr, threads, 1);
            var inputs = pr.GetValue(input) ?? [];
            if (inputs.Length == 0) throw new InputException("--input", "give a .npy file or image files");
            var limits = CliApp.ImageLimits(pr);
            var options = CliApp.Options(pr, stderr);
            bool npy = inputs.Length == 1 && inputs[0].EndsWith(".npy", StringComparison.OrdinalIgnoreCase);
            if (!npy && inputs.FirstOrDefault(i => i.EndsWith(".npy", StringComparison.OrdinalIgnoreCase)) is { } extra)
                throw new InputException("--input", $"{extra}: a .npy batch is given alone, not with other inputs");
            foreach (var i in inputs) Check.File("--input", i);
            string? outPath = pr.GetValue(output);
            if (npy && outPath == null) throw new InputException("--output", "needed with a .npy input: where the logits go");
            if (outPath != null) Check.Output("--output", outPath);
            string? namesFile = pr.GetValue(CliApp.ClassesOption);
            if (namesFile != null) Check.File("--classes", namesFile);
            var w = Weights.Check(pr.GetValue(weights)!, options.Arch);
            // A batch with NaN/Inf is refused (by default) before the model is loaded.
            var array = npy ? Npy.Read(inputs[0]) : null;
            if (array != null) NonFinite.Check(array.Data, "--input", inputs[0], options.NonFinite, stderr.WriteLine);

            using var model = Classifier.Open(w, options, t);
            var c = model.Config;
            var (names, namesOrigin) = npy ? (null, "") : w.ClassNamesFor(c.NumClasses, namesFile);
            int batch;
            float[] x;
            if (array != null) (batch, x) = (array.RequireImages(c, "--input", inputs[0]), array.Data);
            else
            {
                batch = inputs.Length;
                x = new float[(long)batch * c.ImageElements];
                for (int i = 0; i < batch; i++)
                    ImageFile.ToTensor(inputs[i], c, x.AsSpan(i * c.ImageElements, c.ImageElements), limits.Side, limits.Pixels);
            }
            var logits = new float[(long)batch * c.NumClasses];
            const int chunk = 64;
            for (int b0 = 0; b0 < batch; b0 += chunk)
            {
                int n = Math.Min(chunk, batch - b0);
                model.Run(x.AsSpan(b0 * c.ImageElements, n * c.ImageElements), n, logits.AsSpan(b0 * c.NumClasses, n * c.NumClasses));
            }
            if (w.SyntheticNotice() is { } notice) stdout.WriteLine(notice);
            if (outPath != null)
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
}
