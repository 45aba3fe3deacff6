using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Backends;

namespace VitSparse.Bench;

/// <summary>
/// `bench gemm --device gpu --shapes MxNxK,...`: one linear layer (bias epilogue) alone on a backend, launched
/// back to back and synchronised once per round: milliseconds and TFLOP/s per shape, for comparison with cuBLAS
/// (tools/gpu/torch_gpu_bench.py) on DeiT's fc1/fc2 shapes.
/// </summary>
static class GemmBench
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var device = new Option<string>("--device") { Description = "cpu, gpu, gpu:N or ilgpu-cpu", DefaultValueFactory = _ => "cpu" };
        var shapes = new Option<string>("--shapes") { Description = "comma-separated MxNxK (rows of X, outputs, inputs)", DefaultValueFactory = _ => "12608x1536x384,12608x384x1536" };
        var iterations = new Option<int>("--iterations") { Description = "launches per timed round (5 rounds, median)", DefaultValueFactory = _ => 20 };
        var threads = new Option<int>("--threads") { Description = "CPU threads (cpu device)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var fp16 = new Option<bool>("--fp16-weights") { Description = "GPU weights as fp16" };
        var cmd = new Command("gemm", "one linear layer's time on a device (SGEMM with bias), per shape") { device, shapes, iterations, threads, fp16 };
        cmd.SetAction(pr =>
        {
            try
            {
                var inv = CultureInfo.InvariantCulture;
                using var be = Devices.Open(pr.GetValue(device)!, pr.GetValue(threads), 0, pr.GetValue(fp16));
                int iters = Math.Max(1, pr.GetValue(iterations));
                stdout.WriteLine($"gemm on {be.Device}: median of 5 rounds of {iters} launches");
                stdout.WriteLine("| M | N | K | ms | TFLOP/s |");
                stdout.WriteLine("|---:|---:|---:|---:|---:|");
                foreach (var s in pr.GetValue(shapes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    var d = s.Split('x');
                    if (d.Length != 3 || !d.All(v => int.TryParse(v, NumberStyles.None, inv, out int x) && x > 0))
                        throw new InputException("--shapes", $"'{s}' is not MxNxK with positive integers");
                    int m = int.Parse(d[0], inv), n = int.Parse(d[1], inv), k = int.Parse(d[2], inv);
                    var w = new float[(long)n * k];
                    var rng = new Random(1);
                    for (int i = 0; i < w.Length; i++) w[i] = (float)(rng.NextDouble() - 0.5);
                    using var layer = be.Linear(PackedLinear.Pack(w, n, k, new float[n]));
                    using var x = be.Allocate((long)m * k);
                    using var y = be.Allocate((long)m * n);
                    var xs = new float[(long)m * k];
                    for (int i = 0; i < xs.Length; i++) xs[i] = (float)(rng.NextDouble() - 0.5);
                    be.Upload(xs, x);
                    for (int i = 0; i < 3; i++) be.LinearForward(layer, x, m, k, y, n, Epilogue.Bias);
                    be.Synchronize();
                    var rounds = new double[5];
                    for (int r = 0; r < rounds.Length; r++)
                    {
                        long t0 = Stopwatch.GetTimestamp();
                        for (int i = 0; i < iters; i++) be.LinearForward(layer, x, m, k, y, n, Epilogue.Bias);
                        be.Synchronize();
                        rounds[r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds / iters;
                    }
                    Array.Sort(rounds);
                    double ms = rounds[rounds.Length / 2];
                    stdout.WriteLine($"| {m} | {n} | {k} | {ms.ToString("0.000", inv)} | {(2.0 * m * n * k / ms / 1e9).ToString("0.00", inv)} |");
                }
                return 0;
            }
            catch (VitSparseException e) { stderr.WriteLine($"error: {e.Message}"); return 2; }
        });
        return cmd;
    }
}
