// edgecamera MODEL.safetensors FRAMES [--size WxH] [--threads N]
// Classifies camera frames with one reused InferenceSession, as an edge app does: prints the top-5 classes and
// the latency of each frame. FRAMES is a folder (its .raw, .png and .jpg files in name order) or "-" for
// stdin. A .raw frame, and each frame on stdin, is 8-bit BGR (OpenCV's order), rows packed, W·H·3 bytes: give
// --size WxH. Exit code 2 with a one-line message on a bad argument, model or frame.
using System.Diagnostics;
using System.Numerics.Tensors;
using VitSparse.Runtime;
using VitSparse.Runtime.Images;
using VitSparse.Runtime.Models;

const string Usage = "usage: edgecamera MODEL.safetensors (FOLDER | -) [--size WxH] [--threads N]";
try
{
    var (modelPath, source, width, height, threads) = ParseArguments(args);
    VitModel model = VitModel.Load(modelPath);                // checks and packs the weights once
    VitConfig config = model.Config;
    var (names, _) = ClassNames.Resolve(modelPath, config.NumClasses);
    using var session = new InferenceSession(model, threads); // reused for every frame: no allocation per run
    var input = new float[config.ImageElements];
    var logits = new float[config.NumClasses];
    var probabilities = new float[config.NumClasses];
    var order = new int[config.NumClasses];
    var latencies = new List<double>();
    var clock = new Stopwatch();

    foreach (var (frameName, frame) in Frames(source, width, height))
    {
        clock.Restart();
        Preprocess.ToTensor(frame, config, input);             // resize, center-crop, normalise as timm does
        double preprocessMs = clock.Elapsed.TotalMilliseconds;
        session.Run(input, 1, logits);
        double totalMs = clock.Elapsed.TotalMilliseconds;   // preprocessing and inference; decoding a file is not counted
        latencies.Add(totalMs);

        TensorPrimitives.SoftMax(logits, probabilities);
        for (int k = 0; k < order.Length; k++) order[k] = k;
        Array.Sort(order, (a, b) => probabilities[b].CompareTo(probabilities[a]));
        var top = order.Take(Math.Min(5, order.Length)).Select(k => $"{probabilities[k] * 100:0.00}% {names[k]}");
        Console.WriteLine($"{frameName}: {string.Join(", ", top)} | preprocess {preprocessMs:0.00} ms, total {totalMs:0.00} ms");
    }
    if (latencies.Count == 0) throw new InputException(source, "no frames (.raw, .png or .jpg files, or BGR frames on stdin)");
    latencies.Sort();
    Console.WriteLine($"{latencies.Count} frames, {config.Name}, {session.Threads} threads: median {latencies[latencies.Count / 2]:0.00} ms per frame, " +
        $"slowest {latencies[^1]:0.00} ms (the first frame includes warm-up)");
    return 0;
}
catch (VitSparseException e)   // a bad argument, model or frame: what and where
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

static (string Model, string Source, int Width, int Height, int Threads) ParseArguments(string[] args)
{
    var positional = new List<string>();
    int width = 0, height = 0, threads = 0;
    for (int i = 0; i < args.Length; i++)
    {
        if (args[i] is "--size" or "--threads")
        {
            if (i + 1 >= args.Length) throw new InputException(args[i], $"needs a value; {Usage}");
            string value = args[++i];
            if (args[i - 1] == "--threads")
            {
                if (!int.TryParse(value, out threads) || threads < 1) throw new InputException("--threads", $"'{value}' is not a positive count");
                continue;
            }
            var parts = value.Split('x');
            if (parts.Length != 2 || !int.TryParse(parts[0], out width) || !int.TryParse(parts[1], out height) || width < 1 || height < 1 || width > 16384 || height > 16384)
                throw new InputException("--size", $"'{value}' is not WxH with sides 1..16384 (e.g. 640x480)");
        }
        else if (args[i].StartsWith("--")) throw new InputException(args[i], $"unknown option; {Usage}");
        else positional.Add(args[i]);
    }
    if (positional.Count != 2) throw new InputException("arguments", Usage);
    return (positional[0], positional[1], width, height, threads);
}

// Frames in order; a raw frame's buffer is reused, FromPixels copies it into the (RGB) image it returns.
static IEnumerable<(string Name, DecodedImage Frame)> Frames(string source, int width, int height)
{
    if (source == "-")
    {
        var buffer = RawBuffer("-", width, height);
        using var stdin = Console.OpenStandardInput();
        for (int n = 0; ; n++)
        {
            int got = stdin.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
            if (got == 0) yield break;
            if (got < buffer.Length) throw new InputException($"stdin frame {n}", $"ends after {got} of {buffer.Length} bytes ({width}x{height} BGR)");
            yield return ($"stdin frame {n}", ImageFile.FromPixels(buffer, width, height, width * 3, PixelOrder.Bgr));
        }
    }
    if (!Directory.Exists(source)) throw new InputException(source, "no such folder (give a folder of frames, or - for stdin)");
    byte[]? raw = null;
    foreach (var path in Directory.EnumerateFiles(source).Order(StringComparer.Ordinal))
    {
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext == ".raw")
        {
            raw ??= RawBuffer(path, width, height);
            using (var file = File.OpenRead(path))
            {
                if (file.Length != raw.Length) throw new InputException(path, $"{file.Length} bytes, but a {width}x{height} BGR frame is {raw.Length}");
                file.ReadExactly(raw);
            }
            yield return (Path.GetFileName(path), ImageFile.FromPixels(raw, width, height, width * 3, PixelOrder.Bgr));
        }
        else if (ext is ".png" or ".jpg" or ".jpeg")
            yield return (Path.GetFileName(path), ImageFile.Decode(path));
    }
}

static byte[] RawBuffer(string what, int width, int height) =>
    width > 0 ? new byte[checked(width * height * 3)] : throw new InputException(what, "raw BGR frames need --size WxH");
