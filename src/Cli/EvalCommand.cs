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
        var weights = new Option<string>("--weights") { Description = "model .safetensors", Required = true };
        var idx = new Option<string[]?>("--idx") { Description = "IDX images and labels (MNIST / Fashion-MNIST, raw or .gz)", Arity = new ArgumentArity(2, 2), AllowMultipleArgumentsPerToken = true };
        var npy = new Option<string[]?>("--npy") { Description = "preprocessed images X.npy [N,C,H,W] and labels Y.npy [N]", Arity = new ArgumentArity(2, 2), AllowMultipleArgumentsPerToken = true };
        var data = new Option<string?>("--data") { Description = "image folder: one subfolder per class (ImageFolder order), or flat with --labels" };
        var labelsFile = new Option<string?>("--labels") { Description = "with --data: a file of 'relative/path class-index' lines" };
        var skipBad = new Option<bool>("--skip-bad") { Description = "with --data: report an unreadable image and go on, instead of stopping" };
        var limit = new Option<int>("--limit") { Description = "evaluate only the first N images", DefaultValueFactory = _ => int.MaxValue };
        var batch = new Option<int>("--batch") { Description = "images per inference", DefaultValueFactory = _ => 32 };
        var threads = new Option<int>("--threads") { Description = "intra-op threads", DefaultValueFactory = _ => Environment.ProcessorCount };
        var json = new Option<string?>("--json") { Description = "also write the results as JSON" };
        var cmd = new Command("eval", "accuracy of a model on a labelled dataset")
        {
            weights, CliApp.ArchOption, idx, npy, data, labelsFile, skipBad, limit, batch, threads, json, CliApp.NonFiniteOption,
            CliApp.ClassesOption, CliApp.MaxImageSideOption, CliApp.SparseOption,
        };
        cmd.SetAction(pr => CliApp.Guard(pr, stderr, () =>
        {
            var inv = CultureInfo.InvariantCulture;
            if (pr.GetValue(limit) < 1) throw new InputException("--limit", $"must be at least 1, got {pr.GetValue(limit)}");
            var idxFiles = pr.GetValue(idx) ?? [];
            var npyFiles = pr.GetValue(npy) ?? [];
            if (new[] { idxFiles.Length > 0, npyFiles.Length > 0, pr.GetValue(data) != null }.Count(x => x) != 1)
                throw new InputException("--idx", "give exactly one of --idx, --npy, --data");
            int maxSide = CliApp.MaxImageSide(pr);
            var model = VitModel.Load(pr.GetValue(weights)!, CliApp.Options(pr, stderr));
            FolderImages? folder = pr.GetValue(data) is { } dir
                ? new FolderImages(dir, model.Config, pr.GetValue(labelsFile), pr.GetValue(limit), pr.GetValue(skipBad), stderr.WriteLine, maxSide) : null;
            // Class subfolders name the classes themselves unless a names file is given.
            var names = folder != null && pr.GetValue(labelsFile) == null && pr.GetValue(CliApp.ClassesOption) == null
                ? folder.Classes.Concat(ClassNames.Indices(model.Config.NumClasses).Skip(folder.Classes.Count)).ToArray()
                : ClassNames.Resolve(pr.GetValue(weights)!, model.Config.NumClasses, pr.GetValue(CliApp.ClassesOption)).Names;
            using ILabelledImages set = folder != null ? folder
                : idxFiles.Length > 0 ? new IdxImages(idxFiles[0], idxFiles[1], model.Config, pr.GetValue(limit))
                : new NpyImages(npyFiles[0], npyFiles[1], model.Config, pr.GetValue(limit));
            using var session = new InferenceSession(model, pr.GetValue(threads));
            var r = PruneCommand.WithProgress(stdout, $"evaluating {set.Count} images", report => Evaluation.Run(session, set, pr.GetValue(batch), report));
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
                    using var w = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true });
                    w.WriteStartObject();
                    w.WriteString("model", model.Config.Name);
                    w.WriteString("data", set.Description);
                    w.WriteNumber("images", r.Images);
                    w.WriteNumber("top1", r.Top1);
                    w.WriteNumber("top5", r.Top5);
                    w.WriteNumber("images_per_second", r.ImagesPerSecond);
                    w.WriteStartArray("confusion");
                    for (int a = 0; a < model.Config.NumClasses; a++)
                    {
                        w.WriteStartArray();
                        for (int b = 0; b < model.Config.NumClasses; b++) w.WriteNumberValue(r.Confusion[a, b]);
                        w.WriteEndArray();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                });
            return 0;
        }));
        return cmd;
    }
}
