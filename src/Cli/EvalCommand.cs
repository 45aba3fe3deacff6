using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using VitSparse.Runtime;
using VitSparse.Runtime.Data;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using VitSparse.Runtime.Text;

namespace VitSparse.Cli;

/// <summary>`vitsparse eval`: top-1/top-5 accuracy, throughput and the most confused classes on a labelled set.</summary>
static class EvalCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var weights = new Option<string>("--weights") { Description = "model .safetensors, or seeded:ARCH for synthetic weights", Required = true };
        var idx = new Option<string[]?>("--idx") { Description = "IDX images and labels (MNIST / Fashion-MNIST, raw or .gz)", Arity = new ArgumentArity(2, 2), AllowMultipleArgumentsPerToken = true };
        var npy = new Option<string[]?>("--npy") { Description = "preprocessed images X.npy [N,C,H,W] (float32) and labels Y.npy [N] (int64 as NumPy saves them, any integer type, or whole floats)", Arity = new ArgumentArity(2, 2), AllowMultipleArgumentsPerToken = true };
        var data = new Option<string?>("--data") { Description = "image folder: one subfolder per class (ImageFolder order), or flat with --labels" };
        var labelsFile = new Option<string?>("--labels") { Description = "with --data: a file of 'relative/path class-index' lines" };
        var skipBad = new Option<bool>("--skip-bad") { Description = "with --data: report an unreadable image and go on, instead of stopping" };
        var limit = new Option<int>("--limit") { Description = "evaluate only the first N images", DefaultValueFactory = _ => int.MaxValue };
        var batch = new Option<int>("--batch") { Description = "images per inference", DefaultValueFactory = _ => 32 };
        var threads = CliApp.ThreadsOption();
        var json = new Option<string?>("--json") { Description = "also write the results as JSON" };
        var cmd = new Command("eval", "accuracy of a model on a labelled dataset")
        {
            weights, CliApp.ArchOption, idx, npy, data, labelsFile, skipBad, limit, batch, threads, json, CliApp.NonFiniteOption,
            CliApp.ClassesOption, CliApp.MaxImageSideOption, CliApp.MaxImagePixelsOption, CliApp.SparseOption,
        };
        cmd.SetAction(pr => CliApp.Guard(pr, stderr, () =>
        {
            var inv = CultureInfo.InvariantCulture;
            // Every argument and path is checked before the model is loaded.
            int lim = Check.AtLeast(pr, limit, 1), bat = Check.AtLeast(pr, batch, 1), thr = Check.AtLeast(pr, threads, 1);
            var idxFiles = pr.GetValue(idx) ?? [];
            var npyFiles = pr.GetValue(npy) ?? [];
            string? dir = pr.GetValue(data);
            if (new[] { idxFiles.Length > 0, npyFiles.Length > 0, dir != null }.Count(x => x) != 1)
                throw new InputException("--idx", "give exactly one of --idx, --npy, --data");
            Check.OnlyWith(pr.GetValue(labelsFile) != null, "--labels", dir != null, "--data");
            Check.OnlyWith(pr.GetValue(skipBad), "--skip-bad", dir != null, "--data");
            foreach (var f in idxFiles) Check.File("--idx", f);
            foreach (var f in npyFiles) Check.File("--npy", f);
            if (dir != null) Check.Folder("--data", dir);
            if (pr.GetValue(labelsFile) is { } lf) Check.File("--labels", lf);
            string? namesFile = pr.GetValue(CliApp.ClassesOption);
            if (namesFile != null) Check.File("--classes", namesFile);
            if (pr.GetValue(json) is { } jp) Check.Output("--json", jp);
            var limits = CliApp.ImageLimits(pr);
            var options = CliApp.Options(pr, stderr);
            var w = Weights.Check(pr.GetValue(weights)!, options.Arch);

            using var model = Classifier.Open(w, options, thr);
            FolderImages? folder = dir != null
                ? new FolderImages(dir, model.Config, pr.GetValue(labelsFile), lim, pr.GetValue(skipBad), stderr.WriteLine, limits.Side, limits.Pixels) : null;
            // Class subfolders name the classes themselves unless a names file is given.
            var names = folder != null && pr.GetValue(labelsFile) == null && namesFile == null
                ? folder.Classes.Concat(ClassNames.Indices(model.Config.NumClasses).Skip(folder.Classes.Count)).ToArray()
                : w.ClassNamesFor(model.Config.NumClasses, namesFile).Names;
            using ILabelledImages set = folder != null ? folder
                : idxFiles.Length > 0 ? new IdxImages(idxFiles[0], idxFiles[1], model.Config, lim)
                : new NpyImages(npyFiles[0], npyFiles[1], model.Config, lim, options.NonFinite, stderr.WriteLine);
            var r = PruneCommand.WithProgress(stdout, $"evaluating {set.Count} images", report => model.Evaluate(set, bat, report));
            if (w.SyntheticNotice() is { } notice) stdout.WriteLine(notice);
            if (folder is { Skipped: > 0 }) stdout.WriteLine($"skipped {folder.Skipped} unreadable images");
            stdout.WriteLine($"{model.Config.Name} on {set.Description}: {r.Images} images, top-1 {r.Top1 * 100:0.00}%, top-5 {r.Top5 * 100:0.00}%, {r.ImagesPerSecond:0.0} images/s");
            stdout.WriteLine();
            var t = new MarkdownTable("true class", "predicted as", "images", "share of class").RightAlign(2, 3);
            var perClass = Enumerable.Range(0, model.Config.NumClasses).Select(a => Enumerable.Range(0, model.Config.NumClasses).Sum(b => r.Confusion[a, b])).ToArray();
            var confusions = from a in Enumerable.Range(0, model.Config.NumClasses)
                             from b in Enumerable.Range(0, model.Config.NumClasses)
                             where a != b && r.Confusion[a, b] > 0
                             orderby r.Confusion[a, b] descending
                             select (a, b);
            foreach (var (a, b) in confusions.Take(5))
                t.Add(names[a], names[b], r.Confusion[a, b], ((double)r.Confusion[a, b] / perClass[a]).ToString("0.0%", inv));
            stdout.WriteLine("most frequent confusions:");
            stdout.WriteLine();
            stdout.Write(t);
            if (pr.GetValue(json) is { } path)
                AtomicFile.Write(path, s =>
                {
                    using var jw = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true });
                    jw.WriteStartObject();
                    jw.WriteString("model", model.Config.Name);
                    jw.WriteString("data", set.Description);
                    if (w.SyntheticOrigin() is { } synthetic) jw.WriteString("synthetic_weights", synthetic);
                    jw.WriteNumber("images", r.Images);
                    jw.WriteNumber("top1", r.Top1);
                    jw.WriteNumber("top5", r.Top5);
                    jw.WriteNumber("images_per_second", r.ImagesPerSecond);
                    jw.WriteStartArray("confusion");
                    for (int a = 0; a < model.Config.NumClasses; a++)
                    {
                        jw.WriteStartArray();
                        for (int b = 0; b < model.Config.NumClasses; b++) jw.WriteNumberValue(r.Confusion[a, b]);
                        jw.WriteEndArray();
                    }
                    jw.WriteEndArray();
                    jw.WriteEndObject();
                });
            return 0;
        }));
        return cmd;
    }
}
