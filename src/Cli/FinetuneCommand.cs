using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using VitSparse.Runtime;
using VitSparse.Runtime.Data;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using VitSparse.Training;

namespace VitSparse.Cli;

/// <summary>
/// `vitsparse finetune`: trains a (pruned) DeiT or Swin on labelled images with AdamW, optionally distilling from a
/// dense teacher, keeping every pruned structure (ragged widths, sparse patterns) as it is. After each epoch:
/// validation accuracy, then an atomic checkpoint (for --resume) and the model in our compact format.
/// </summary>
static class FinetuneCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var weights = new Option<string>("--weights") { Description = "the (pruned) model to train, .safetensors", Required = true };
        var teacher = new Option<string?>("--teacher") { Description = "dense teacher model for --distill soft" };
        var idx = new Option<string[]?>("--idx") { Description = "training IDX images and labels (MNIST / Fashion-MNIST, raw or .gz)", Arity = new ArgumentArity(2, 2), AllowMultipleArgumentsPerToken = true };
        var npy = new Option<string[]?>("--npy") { Description = "training images X.npy [N,C,H,W] (float32, preprocessed) and labels Y.npy [N]", Arity = new ArgumentArity(2, 2), AllowMultipleArgumentsPerToken = true };
        var data = new Option<string?>("--data") { Description = "training image folder: one subfolder per class" };
        var val = new Option<string[]?>("--val") { Description = "validation set: an image folder, IDX images and labels, or X.npy Y.npy", Arity = new ArgumentArity(1, 2), AllowMultipleArgumentsPerToken = true };
        var limit = new Option<int>("--limit") { Description = "train on the first N images only", DefaultValueFactory = _ => int.MaxValue };
        var valLimit = new Option<int>("--val-limit") { Description = "validate on the first N images only", DefaultValueFactory = _ => int.MaxValue };
        var epochs = new Option<int>("--epochs") { Description = "epochs to train", Required = true };
        var lr = new Option<double>("--lr") { Description = "peak learning rate (AdamW)", DefaultValueFactory = _ => 5e-4 };
        var minLr = new Option<double>("--min-lr") { Description = "learning rate at the end of the cosine decay", DefaultValueFactory = _ => 1e-6 };
        var warmup = new Option<double>("--warmup") { Description = "epochs of linear warm-up (fractions allowed)", DefaultValueFactory = _ => 0.1 };
        var batch = new Option<int>("--batch") { Description = "images per step", DefaultValueFactory = _ => 128 };
        var wd = new Option<double>("--wd") { Description = "AdamW weight decay (not on norms, biases, tokens, pos embed)", DefaultValueFactory = _ => 0.05 };
        var clip = new Option<double>("--clip") { Description = "clip the global gradient norm to this (0: no clipping)", DefaultValueFactory = _ => 1.0 };
        var smoothing = new Option<double>("--label-smoothing") { Description = "label smoothing of the cross-entropy", DefaultValueFactory = _ => 0.1 };
        var distill = new Option<string?>("--distill") { Description = "none or soft (α·τ²·KL to the teacher + (1−α)·cross-entropy); default soft with --teacher" };
        var alpha = new Option<double>("--distill-alpha") { Description = "weight α of the distillation loss", DefaultValueFactory = _ => 0.5 };
        var temperature = new Option<double>("--temperature") { Description = "distillation temperature τ", DefaultValueFactory = _ => 1.0 };
        var ema = new Option<bool>("--ema") { Description = "keep an exponential moving average of the weights; validate and save it" };
        var emaDecay = new Option<double>("--ema-decay") { Description = "decay of --ema per step", DefaultValueFactory = _ => 0.999 };
        var flip = new Option<bool>("--flip") { Description = "flip each training image horizontally with probability 1/2" };
        var seed = new Option<ulong>("--seed") { Description = "seed of the shuffle and the flips", DefaultValueFactory = _ => 0 };
        var resume = new Option<string?>("--resume") { Description = "continue from a checkpoint this command wrote (same --weights and settings)" };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "where to write the checkpoint after each epoch (default: OUTPUT.ckpt)" };
        var output = new Option<string>("--output", "-o") { Description = "the fine-tuned model (.safetensors, compact format), written after each epoch", Required = true };
        var threads = CliApp.ThreadsOption();
        var cmd = new Command("finetune", "fine-tune a (pruned) model with AdamW, keeping its pruned structure")
        {
            weights, CliApp.ArchOption, teacher, idx, npy, data, val, limit, valLimit, epochs, lr, minLr, warmup, batch, wd, clip, smoothing,
            distill, alpha, temperature, ema, emaDecay, flip, seed, resume, checkpoint, output, threads,
        };
        cmd.SetAction(pr => CliApp.Guard(pr, stderr, () =>
        {
            var inv = CultureInfo.InvariantCulture;
            // Every argument and path is checked before anything is loaded or trained.
            int thr = Check.AtLeast(pr, threads, 1), lim = Check.AtLeast(pr, limit, 1), vlim = Check.AtLeast(pr, valLimit, 1);
            string? teacherPath = pr.GetValue(teacher);
            bool soft = (pr.GetValue(distill) ?? (teacherPath != null ? "soft" : "none")) switch
            {
                "soft" => true,
                "none" => false,
                var other => throw new InputException("--distill", $"'{other}' is not one of none, soft"),
            };
            if (soft && teacherPath == null) throw new InputException("--teacher", "--distill soft needs a teacher model (--teacher DENSE.safetensors)");
            if (!soft && teacherPath != null) throw new InputException("--teacher", "a teacher is only used with --distill soft");
            var settings = new FineTuneSettings(pr.GetValue(epochs), pr.GetValue(batch), pr.GetValue(lr), pr.GetValue(minLr), pr.GetValue(warmup),
                pr.GetValue(wd), pr.GetValue(clip), pr.GetValue(smoothing), soft, pr.GetValue(alpha), pr.GetValue(temperature),
                pr.GetValue(ema) ? pr.GetValue(emaDecay) : 0, pr.GetValue(flip), pr.GetValue(seed)).Validate();
            var idxFiles = pr.GetValue(idx) ?? [];
            var npyFiles = pr.GetValue(npy) ?? [];
            string? dir = pr.GetValue(data);
            if (new[] { idxFiles.Length > 0, npyFiles.Length > 0, dir != null }.Count(x => x) != 1)
                throw new InputException("--idx", "give exactly one of --idx, --npy, --data for the training images");
            foreach (var f in idxFiles) Check.File("--idx", f);
            foreach (var f in npyFiles) Check.File("--npy", f);
            if (dir != null) Check.Folder("--data", dir);
            var valArgs = pr.GetValue(val) ?? [];
            if (valArgs.Length == 1) Check.Folder("--val", valArgs[0]);
            foreach (var f in valArgs.Length == 2 ? valArgs : []) Check.File("--val", f);
            string weightsPath = Check.File("--weights", pr.GetValue(weights)!);
            if (teacherPath != null) Check.File("--teacher", teacherPath);
            string? resumePath = pr.GetValue(resume) is { } rp ? Check.File("--resume", rp) : null;
            using var outputs = new Outputs();
            string outPath = outputs.Add("--output", pr.GetValue(output)!);
            string ckptPath = outputs.Add("--checkpoint", pr.GetValue(checkpoint) ?? outPath + ".ckpt");
            if (Path.GetFullPath(weightsPath) == Path.GetFullPath(outPath)) throw new InputException("--output", $"{outPath} is the --weights file; write the fine-tuned model elsewhere");

            Classifier.CheckArch(pr.GetValue(CliApp.ArchOption));
            var parameters = ParameterSet.Load(weightsPath, pr.GetValue(CliApp.ArchOption));
            var c = parameters.Model;
            string[]? classNames;
            using (var file = new SafeTensorsFile(weightsPath)) classNames = ClassNames.FromMetadata(file, c.NumClasses);
            string origin = TrainingCheckpoint.Fingerprint(parameters);
            Classifier? teacherModel = null;
            try
            {
                FineTuner.Teacher? teacherRun = null;
                if (teacherPath != null)
                {
                    // Either family teaches either family: only classes and input shape must agree.
                    teacherModel = Classifier.Open(Weights.Check(teacherPath, null, "--teacher"), new LoadOptions { Warn = stderr.WriteLine }, thr);
                    CheckTeacher(teacherModel.Config, c, teacherPath);
                    teacherRun = new FineTuner.Teacher(teacherModel.Config, teacherModel.Run);
                }
                var train = Read(idxFiles, npyFiles, dir, c, lim, idxFiles.Length > 0 ? "--idx" : npyFiles.Length > 0 ? "--npy" : "--data", stderr);
                var valSet = valArgs.Length == 0 ? null
                    : Read(valArgs.Length == 2 && !IsNpy(valArgs[0]) ? valArgs : [], valArgs.Length == 2 && IsNpy(valArgs[0]) ? valArgs : [],
                        valArgs.Length == 1 ? valArgs[0] : null, c, vlim, "--val", stderr);
                using var team = new VitSparse.Kernels.ThreadTeam(thr);
                var tuner = new FineTuner(parameters, settings, train, team, teacherRun);
                string settingsText = $"lr {settings.Lr:g4}, min-lr {settings.MinLr:g4}, warmup {settings.WarmupEpochs:g4} epochs, batch {settings.Batch}, wd {settings.WeightDecay:g4}, clip {settings.ClipNorm:g4}, " +
                    $"label smoothing {settings.LabelSmoothing:g4}, distill {(soft ? $"soft α {settings.DistillAlpha:g4} τ {settings.Temperature:g4}" : "none")}, ema {settings.EmaDecay:g4}, flip {settings.Flip}, seed {settings.Seed}";
                if (resumePath != null)
                {
                    int done = TrainingCheckpoint.Load(resumePath, origin, tuner, parameters);
                    stdout.WriteLine($"resumed from {resumePath}: {done} of {settings.Epochs} epochs done");
                }
                stdout.WriteLine(string.Create(inv, $"{c.Name}: {train.Count} training images ({train.Description}), {tuner.StepsPerEpoch} steps per epoch, {parameters.Masks.Count} pruned linears kept sparse; {settingsText}"));
                if (valSet != null && tuner.EpochsDone == 0)
                    stdout.WriteLine(string.Create(inv, $"before fine-tuning: validation top-1 {Validate(tuner.Result, valSet, settings.Batch, thr) * 100:0.00}% on {valSet.Count} images"));

                using var interrupt = new Interrupt();
                // The last complete checkpoint: the resumed one until this run writes its own.
                string? lastGood = resumePath;
                int lastEpoch = tuner.EpochsDone;
                string LastGood() => lastGood != null ? $"the last good checkpoint is {lastGood} (epoch {lastEpoch})" : "no checkpoint was written (no epoch completed)";
                while (tuner.EpochsDone < settings.Epochs)
                {
                    EpochResult? r;
                    try { r = RunEpoch(stdout, tuner, settings.Epochs, interrupt); }
                    catch (TrainingDivergedException e) { throw new VitSparseException($"{e.Message}; {LastGood()}"); }
                    if (r == null)
                    {
                        stdout.WriteLine($"interrupted: {LastGood()}{(lastGood != null ? "; continue with --resume" : "")}");
                        return 130;
                    }
                    string valText = valSet != null ? string.Create(inv, $", validation top-1 {Validate(tuner.Result, valSet, settings.Batch, thr) * 100:0.00}%") : "";
                    // Checkpoint first, then the model: each is renamed into place whole, so an interrupt leaves whole files.
                    TrainingCheckpoint.Save(ckptPath, origin, tuner, parameters, settingsText);
                    (lastGood, lastEpoch) = (ckptPath, tuner.EpochsDone);
                    SaveModel(outPath, tuner.Result, parameters.Masks, classNames, settingsText, tuner.EpochsDone);
                    stdout.WriteLine(string.Create(inv, $"epoch {r.Epoch}/{settings.Epochs}: loss {r.Loss:0.0000}, train accuracy {r.Accuracy * 100:0.00}%{valText}, {r.ImagesPerSecond:0.0} images/s; wrote {outPath} and {ckptPath}"));
                }
                return 0;
            }
            finally { teacherModel?.Dispose(); }
        }));
        return cmd;
    }

    static bool IsNpy(string path) => path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase);

    static void CheckTeacher(IImageModelConfig tc, IImageModelConfig student, string path)
    {
        if (tc.NumClasses != student.NumClasses)
            throw new InputException("--teacher", $"{path} has {tc.NumClasses} classes, the model has {student.NumClasses}");
        if (tc.ImageSize != student.ImageSize || tc.InChannels != student.InChannels)
            throw new InputException("--teacher", $"{path} takes {tc.InChannels}×{tc.ImageSize}×{tc.ImageSize} images, the model takes {student.InChannels}×{student.ImageSize}×{student.ImageSize}");
    }

    static LabelledArrays Read(string[] idxFiles, string[] npyFiles, string? dir, IImageModelConfig c, int limit, string argument, TextWriter stderr)
    {
        using ILabelledImages set = dir != null ? new FolderImages(dir, c, null, limit, false, stderr.WriteLine)
            : idxFiles.Length > 0 ? new IdxImages(idxFiles[0], idxFiles[1], c, limit)
            : new NpyImages(npyFiles[0], npyFiles[1], c, limit, NonFinitePolicy.Refuse, stderr.WriteLine);
        return LabelledArrays.ReadAll(set, c, argument);
    }

    static double Validate(ParameterSet weights, LabelledArrays set, int batch, int threads)
    {
        if (weights.Swin is { } swin)
        {
            using var swinSession = new SwinSession(SwinModel.FromSource(weights, swin), threads);
            set.Reset();
            return Evaluation.Run(swinSession, set, batch).Top1;
        }
        var model = VitModel.FromSource(weights, weights.Config);
        using var session = new InferenceSession(model, threads);
        set.Reset();
        return Evaluation.Run(session, set, batch).Top1;
    }

    /// <summary>The model in our compact format; a weight loaded sparse is stored in its format again (the masks kept its zeros).</summary>
    static void SaveModel(string path, ParameterSet weights, IReadOnlyDictionary<string, WeightMask> masks, string[]? classNames, string settingsText, int epochs)
    {
        var layouts = new Dictionary<string, StoredLayout>(StringComparer.Ordinal);
        foreach (var (name, mask) in masks)
            if (mask.Stored != null) layouts[name] = mask.Stored;
        var metadata = new Dictionary<string, string> { ["vitsparse.finetune"] = $"{epochs} epochs; {settingsText}" };
        if (weights.Swin is { } swin) SwinFile.Save(path, swin, weights, classNames: classNames, metadata: metadata, sparse: layouts);
        else VitModel.Save(path, weights.Config, weights, classNames: classNames, sparse: layouts, metadata: metadata);
    }

    static EpochResult? RunEpoch(TextWriter stdout, FineTuner tuner, int epochs, Interrupt interrupt)
    {
        var inv = CultureInfo.InvariantCulture;
        string Line(StepProgress p) => string.Create(inv, $"epoch {p.Epoch}/{epochs}: {p.Images}/{p.TotalImages} images, loss {p.Loss:0.0000}, accuracy {p.Accuracy * 100:0.00}%, {p.ImagesPerSecond:0.0} images/s");
        if (ReferenceEquals(stdout, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive)
        {
            EpochResult? result = null;
            AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn()).Start(ctx =>
            {
                var task = ctx.AddTask($"epoch {tuner.EpochsDone + 1}/{epochs}");
                result = tuner.RunEpoch(() => interrupt.Requested, p =>
                {
                    task.MaxValue = p.TotalImages;
                    task.Value = p.Images;
                    task.Description = Markup.Escape(Line(p));
                });
            });
            return result;
        }
        // Redirected: a plain line at every tenth of the epoch.
        int lastTenth = 0;
        return tuner.RunEpoch(() => interrupt.Requested, p =>
        {
            int tenth = (int)((long)p.Images * 10 / p.TotalImages);
            if (tenth != lastTenth && tenth < 10) { stdout.WriteLine(Line(p)); lastTenth = tenth; }
        });
    }

    /// <summary>Ctrl-C asks training to stop between steps instead of killing the process mid-write.</summary>
    sealed class Interrupt : IDisposable
    {
        volatile bool _requested;
        public bool Requested => _requested;

        public Interrupt() => Console.CancelKeyPress += OnCancel;

        void OnCancel(object? sender, ConsoleCancelEventArgs e)
        {
            if (_requested) return;   // a second Ctrl-C ends the process at once
            e.Cancel = true;
            _requested = true;
        }

        public void Dispose() => Console.CancelKeyPress -= OnCancel;
    }
}
