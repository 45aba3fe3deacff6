// classify MODEL.safetensors IMAGE [RUNS]
// Loads a model, classifies one JPEG/PNG image and times each step: what an edge app does with VitSparse.
using System.Diagnostics;
using System.Numerics.Tensors;
using VitSparse.Runtime;
using VitSparse.Runtime.Images;
using VitSparse.Runtime.Models;

if (args.Length is < 2 or > 3 || (args.Length == 3 && !(int.TryParse(args[2], out int r) && r > 0)))
{
    Console.Error.WriteLine("usage: classify MODEL.safetensors IMAGE [RUNS>0]");
    return 2;
}
int runs = args.Length == 3 ? int.Parse(args[2]) : 10;
try
{
    var clock = Stopwatch.StartNew();
    VitModel model = VitModel.Load(args[0]);              // checks and packs the weights once; share it between threads
    double loadMs = clock.Elapsed.TotalMilliseconds;
    VitConfig c = model.Config;

    clock.Restart();
    var input = new float[c.ImageElements];
    ImageFile.ToTensor(args[1], c, input);                 // decode, resize, center-crop, normalise as timm does
    double preprocessMs = clock.Elapsed.TotalMilliseconds;

    using var session = new InferenceSession(model);       // one per thread; owns the activation buffers
    var logits = new float[c.NumClasses];
    session.Run(input, 1, logits);                         // first run: JIT and buffer allocation
    var times = new double[runs];
    for (int i = 0; i < runs; i++)
    {
        clock.Restart();
        session.Run(input, 1, logits);
        times[i] = clock.Elapsed.TotalMilliseconds;
    }
    Array.Sort(times);

    var (names, origin) = ClassNames.Resolve(args[0], c.NumClasses);
    var probabilities = new float[c.NumClasses];
    TensorPrimitives.SoftMax(logits, probabilities);
    Console.WriteLine($"{args[1]} ({c.Name}, class names: {origin})");
    foreach (int k in Enumerable.Range(0, c.NumClasses).OrderByDescending(k => probabilities[k]).Take(5))
        Console.WriteLine($"  {probabilities[k] * 100,6:0.00}%  {names[k]}");
    Console.WriteLine($"load {loadMs:0.0} ms, preprocess {preprocessMs:0.0} ms, inference median {times[runs / 2]:0.00} ms (min {times[0]:0.00}, {runs} runs, {session.Threads} threads)");
    return 0;
}
catch (VitSparseException e)   // every input problem: the file or argument, and what is wrong
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
