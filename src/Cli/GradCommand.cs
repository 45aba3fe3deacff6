using System.CommandLine;
using System.Globalization;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using VitSparse.Training;

namespace VitSparse.Cli;

/// <summary>
/// `vitsparse grad`: the loss of a model on a batch and dL/dθ for every parameter (batch mean), written as
/// safetensors under timm names, for saliency studies and to prove parity with PyTorch autograd.
/// </summary>
static class GradCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var weights = new Option<string>("--weights") { Description = "model .safetensors (VitSparse compact, timm DeiT or timm Swin)", Required = true };
        var input = new Option<string>("--input") { Description = "float32 NCHW .npy of preprocessed images", Required = true };
        var labels = new Option<string?>("--labels") { Description = "int32/int64 .npy of class indices, one per image (--loss ce)" };
        var loss = new Option<string>("--loss") { Description = "ce (cross-entropy), kl (soft distillation), mse (to teacher logits), sq (mean of logits²)", Required = true };
        var smoothing = new Option<double>("--label-smoothing") { Description = "label smoothing for ce, in [0, 1)", DefaultValueFactory = _ => 0 };
        var temperature = new Option<double>("--temperature") { Description = "distillation temperature for kl", DefaultValueFactory = _ => 1 };
        var teacher = new Option<string?>("--teacher") { Description = "teacher model .safetensors whose logits kl and mse use" };
        var output = new Option<string>("--output", "-o") { Description = "where to write the loss and gradients (.safetensors)", Required = true };
        var threads = new Option<int>("--threads") { Description = "threads (default: all cores)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var cmd = new Command("grad", "write the loss and dL/dθ of every parameter (batch mean) for a batch of images")
        {
            weights, CliApp.ArchOption, input, labels, loss, smoothing, temperature, teacher, output, threads,
        };
        cmd.SetAction(pr => CliApp.Guard(pr, stderr, () =>
        {
            var spec = new LossSpec(LossSpec.Parse(pr.GetValue(loss)!, "--loss"), pr.GetValue(smoothing), pr.GetValue(temperature));
            if (!(spec.LabelSmoothing >= 0 && spec.LabelSmoothing < 1)) throw new InputException("--label-smoothing", $"must be in [0, 1), got {spec.LabelSmoothing}");
            if (!(spec.Temperature > 0 && double.IsFinite(spec.Temperature))) throw new InputException("--temperature", $"must be a positive number, got {spec.Temperature}");
            int t = pr.GetValue(threads);
            if (t < 1) throw new InputException("--threads", $"must be at least 1, got {t}");
            string? labelsPath = pr.GetValue(labels), teacherPath = pr.GetValue(teacher);
            if (spec.NeedsLabels && labelsPath == null) throw new InputException("--labels", $"--loss {pr.GetValue(loss)} needs class labels");
            if (!spec.NeedsLabels && labelsPath != null) throw new InputException("--labels", $"--loss {pr.GetValue(loss)} does not use labels");
            if (spec.NeedsTeacher && teacherPath == null) throw new InputException("--teacher", $"--loss {pr.GetValue(loss)} needs a teacher model");
            if (!spec.NeedsTeacher && teacherPath != null) throw new InputException("--teacher", $"--loss {pr.GetValue(loss)} does not use a teacher");
            string outPath = pr.GetValue(output)!;
            EnsureWritable(outPath, "--output");

            Classifier.CheckArch(pr.GetValue(CliApp.ArchOption));
            var parameters = ParameterSet.Load(pr.GetValue(weights)!, pr.GetValue(CliApp.ArchOption));
            var c = parameters.Model;
            string inputPath = pr.GetValue(input)!;
            var x = Npy.Read(inputPath);
            int batch = x.RequireImages(c, "--input", inputPath);
            int[] y = labelsPath != null ? LabelFile.Read(labelsPath, "--labels", batch, c.NumClasses) : [];
            float[] teacherLogits = teacherPath != null ? TeacherLogits(teacherPath, c, x.Data, batch, t, stderr) : [];

            using var team = new VitSparse.Kernels.ThreadTeam(t);
            var backprop = IBackprop.For(parameters, batch, team);
            var logits = new float[batch * c.NumClasses];
            var dLogits = new float[logits.Length];
            backprop.Forward(x.Data, batch, logits);
            double value = spec.Evaluate(logits, batch, c.NumClasses, y, teacherLogits, dLogits);
            if (!double.IsFinite(value)) throw new InputException("--input", $"the loss is {value} on this batch; no gradients written");
            backprop.Backward(dLogits);

            var grads = backprop.Gradients;
            var tensors = new List<TensorToWrite> { new("loss", [1], new[] { (float)value }) };
            foreach (var name in grads.Names)
            {
                var g = grads[name];
                int bad = Array.FindIndex(g, v => !float.IsFinite(v));
                if (bad >= 0) throw new InputException("--weights", $"dL/d{name} has a NaN/Inf at flat index {bad}; no gradients written");
                tensors.Add(new TensorToWrite(name, grads.Shapes[name], g));
            }
            var inv = CultureInfo.InvariantCulture;
            SafeTensorsWriter.Write(outPath, tensors, new Dictionary<string, string>
            {
                ["vitsparse.grad.loss"] = pr.GetValue(loss)!,
                ["vitsparse.grad.batch"] = batch.ToString(inv),
                ["vitsparse.grad.label_smoothing"] = spec.LabelSmoothing.ToString("R", inv),
                ["vitsparse.grad.temperature"] = spec.Temperature.ToString("R", inv),
                ["vitsparse.grad.model"] = c.Name,
            });
            stdout.WriteLine(string.Create(inv, $"{c.Name}: {pr.GetValue(loss)} loss {value:g6} on {batch} images; wrote it and {grads.Names.Count} gradient tensors (batch mean) to {outPath}"));
            return 0;
        }));
        return cmd;
    }

    /// <summary>The teacher's logits on the same batch; its classes and input shape must match the student's.</summary>
    static float[] TeacherLogits(string path, IImageModelConfig student, float[] images, int batch, int threads, TextWriter stderr)
    {
        // --arch describes the model, not the teacher: a teacher without our metadata is inferred from its shapes.
        // Either family teaches either family; only classes and input shape must agree.
        using var model = Classifier.Open(Weights.Check(path, null, "--teacher"), new LoadOptions { Warn = stderr.WriteLine }, threads);
        var tc = model.Config;
        if (tc.NumClasses != student.NumClasses)
            throw new InputException("--teacher", $"{path} has {tc.NumClasses} classes, the model has {student.NumClasses}");
        if (tc.ImageSize != student.ImageSize || tc.InChannels != student.InChannels)
            throw new InputException("--teacher", $"{path} takes {tc.InChannels}×{tc.ImageSize}×{tc.ImageSize} images, the model takes {student.InChannels}×{student.ImageSize}×{student.ImageSize}");
        var logits = new float[batch * tc.NumClasses];
        model.Run(images, batch, logits);
        return logits;
    }

    /// <summary>Fails before any work when the output cannot be created: a missing directory, a directory, no permission.</summary>
    internal static void EnsureWritable(string path, string argument)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        if (Directory.Exists(full)) throw new InputException(argument, $"{path} is a directory");
        if (!Directory.Exists(dir)) throw new InputException(argument, $"{path}: directory '{dir}' does not exist");
        string probe = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.probe");
        try { using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write)) { } File.Delete(probe); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new InputException(argument, $"{path}: cannot write there ({e.Message})"); }
    }
}
