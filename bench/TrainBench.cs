using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using VitSparse.Bench.Peers;
using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Text;
using VitSparse.Training;

namespace VitSparse.Bench;

/// <summary>
/// `bench train`: one training step (forward, cross-entropy with label smoothing 0.1, backward, global-norm
/// clipping to 1.0 and AdamW with DeiT's groups) of a model at a batch size, VitSparse against PyTorch 1.13
/// (tools/peers/torch_train_peer.py) in the same run, alternating rounds so machine drift hits both alike.
/// Both train from the same weights on a fixed random batch; images/s is batch ÷ median step time. CPU time
/// per step (the process's, all threads) is reported beside it: on a shared machine it is the steadier measure.
/// </summary>
static class TrainBench
{
    const int RoundSize = 2;

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var weights = new Option<string>("--weights") { Description = "model .safetensors (our compact format)", DefaultValueFactory = _ => "tests/fixtures/deit_fmnist.safetensors" };
        var batch = new Option<int>("--batch") { Description = "images per step", DefaultValueFactory = _ => 128 };
        var threads = new Option<int>("--threads") { Description = "threads for both runtimes", DefaultValueFactory = _ => 2 };
        var warmup = new Option<int>("--warmup") { Description = "untimed steps first, per runtime", DefaultValueFactory = _ => 2 };
        var iterations = new Option<int>("--iterations") { Description = "timed steps per runtime", DefaultValueFactory = _ => 10 };
        var peers = new Option<string>("--peers") { Description = "torch or none", DefaultValueFactory = _ => "torch" };
        var breakdown = new Option<bool>("--breakdown") { Description = "also print where VitSparse's step time goes, per phase" };
        var cmd = new Command("train", "one training step (forward + backward + AdamW), VitSparse vs PyTorch, alternating") { weights, batch, threads, warmup, iterations, peers, breakdown };
        cmd.SetAction(pr =>
        {
            try { return Run(pr.GetValue(weights)!, pr.GetValue(batch), pr.GetValue(threads), pr.GetValue(warmup), pr.GetValue(iterations), pr.GetValue(peers)!, pr.GetValue(breakdown), stdout); }
            catch (VitSparseException e) { stderr.WriteLine($"error: {e.Message}"); return 2; }
            catch (IOException e) { stderr.WriteLine($"error: {e.Message}"); return 2; }
        });
        return cmd;
    }

    static int Run(string weightsPath, int batch, int threads, int warmup, int iterations, string peer, bool breakdown, TextWriter stdout)
    {
        if (batch < 1) throw new InputException("--batch", $"must be at least 1, got {batch}");
        if (threads < 1) throw new InputException("--threads", $"must be at least 1, got {threads}");
        if (warmup < 0) throw new InputException("--warmup", $"must be at least 0, got {warmup}");
        if (iterations < 1) throw new InputException("--iterations", $"must be at least 1, got {iterations}");
        if (peer is not ("torch" or "none")) throw new InputException("--peers", $"'{peer}' is not one of torch, none");
        if (!File.Exists(weightsPath)) throw new InputException("--weights", $"{weightsPath}: file not found");
        var parameters = ParameterSet.Load(weightsPath, null);
        var c = parameters.Model;

        // A fixed batch: seeded images and labels (speed does not depend on the values).
        var images = new float[(long)batch * c.ImageElements];
        var rng = new Random(1);
        for (int i = 0; i < images.Length; i++) images[i] = (float)(rng.NextDouble() * 2 - 1);
        var labels = Enumerable.Range(0, batch).Select(i => i % c.NumClasses).ToArray();
        using var team = new ThreadTeam(threads);
        var bp = IBackprop.For(parameters, batch, team);
        var opt = new AdamW(parameters, new AdamWSettings(WeightDecay: 0.05, ClipNorm: 1.0));
        var loss = new LossSpec(LossKind.CrossEntropy, 0.1);
        var logits = new float[batch * c.NumClasses];
        var dLogits = new float[logits.Length];
        // Timed steps run unprofiled; with --breakdown, profiled steps follow them (the clock reads cost a little).
        var profile = new StepProfile();
        void Step()
        {
            bp.Forward(images, batch, logits);
            long t0 = bp.Profile is null ? 0 : StepProfile.Now();
            loss.Evaluate(logits, batch, c.NumClasses, labels, default, dLogits);
            bp.Profile?.Add(StepPhase.Loss, t0);
            bp.Backward(dLogits);
            opt.Step(bp.Gradients, 1e-4);
            bp.Profile?.EndStep();
        }

        TorchTrainPeer? torch = null;
        string? skipped = null;
        if (peer == "torch")
        {
            if (parameters.Swin != null) skipped = "the PyTorch training peer (tools/peers/torch_train_peer.py) builds DeiTs only";
            else if (TorchPeer.Unavailable() is { } why) skipped = $"{why}; install with: apt-get install python3-torch libopenblas0-pthread";
            else torch = new TorchTrainPeer(RepoRoot(), Path.GetFullPath(weightsPath), threads, batch);
        }
        using (torch)
        {
            for (int i = 0; i < warmup; i++) Step();
            if (warmup > 0) torch?.Run(warmup);
            var ours = new List<double>();
            var theirs = new List<double>();
            // CPU seconds per step as well as wall time: on a shared machine wall time mostly measures the share
            // of the cores a process gets; CPU time is what the step costs (ours includes the team's spin-waits).
            var oursCpu = new List<double>();
            var theirsCpu = new List<double>();
            var self = Process.GetCurrentProcess();
            long allocated = 0;
            while (ours.Count < iterations)
            {
                int n = Math.Min(RoundSize, iterations - ours.Count);
                for (int i = 0; i < n; i++)
                {
                    self.Refresh();
                    var cpu0 = self.TotalProcessorTime;
                    long a0 = GC.GetAllocatedBytesForCurrentThread(), t0 = Stopwatch.GetTimestamp();
                    Step();
                    ours.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    self.Refresh();
                    oursCpu.Add((self.TotalProcessorTime - cpu0).TotalMilliseconds);
                    allocated += GC.GetAllocatedBytesForCurrentThread() - a0;
                }
                if (torch != null)
                {
                    var (wall, cpu) = torch.Run(n);
                    theirs.AddRange(wall);
                    theirsCpu.AddRange(cpu);
                }
            }
            var inv = CultureInfo.InvariantCulture;
            stdout.WriteLine($"VitSparse bench train · {Isa.Describe()} · {Environment.ProcessorCount} cores · .NET {Environment.Version} · fp32");
            stdout.WriteLine(string.Create(inv, $"{c.Name} ({Path.GetFileName(weightsPath)}), batch {batch}, {threads} threads: one step = forward + cross-entropy (label smoothing 0.1) + backward + clip 1.0 + AdamW; {warmup} warm-up and {iterations} timed steps each, alternating in rounds of {RoundSize}"));
            stdout.WriteLine();
            var t = new MarkdownTable("runtime", "median ms/step", "min ms", "max ms", "images/s", "VitSparse/peer", "median CPU ms/step", "images per CPU-s", "VitSparse/peer (CPU)")
                .RightAlign(1, 2, 3, 4, 5, 6, 7, 8);
            double oursMedian = Median(ours), oursCpuMedian = Median(oursCpu);
            t.Add("VitSparse", oursMedian.ToString("0.0", inv), ours.Min().ToString("0.0", inv), ours.Max().ToString("0.0", inv), (batch * 1000 / oursMedian).ToString("0.0", inv), "",
                oursCpuMedian.ToString("0.0", inv), (batch * 1000 / oursCpuMedian).ToString("0.0", inv), "");
            if (torch != null)
            {
                double m = Median(theirs), mc = Median(theirsCpu);
                t.Add("pytorch 1.13 (OpenBLAS)", m.ToString("0.0", inv), theirs.Min().ToString("0.0", inv), theirs.Max().ToString("0.0", inv), (batch * 1000 / m).ToString("0.0", inv), (m / oursMedian).ToString("0.00×", inv),
                    mc.ToString("0.0", inv), (batch * 1000 / mc).ToString("0.0", inv), (mc / oursCpuMedian).ToString("0.00×", inv));
            }
            stdout.Write(t);
            stdout.WriteLine(string.Create(inv, $"VitSparse allocated {allocated / ours.Count} bytes per step on the calling thread"));
            if (skipped != null) stdout.WriteLine($"skipped pytorch: {skipped}");
            if (breakdown)
            {
                bp.Profile = opt.Profile = profile;
                var t1 = Stopwatch.GetTimestamp();
                for (int i = 0; i < iterations; i++) Step();
                double wallMs = Stopwatch.GetElapsedTime(t1).TotalMilliseconds / iterations;
                bp.Profile = opt.Profile = null;
                stdout.WriteLine();
                stdout.WriteLine(string.Create(inv, $"VitSparse breakdown: {iterations} more steps, profiled; mean {wallMs:0.0} ms/step"));
                stdout.WriteLine();
                stdout.Write(BreakdownTable(profile, wallMs));
            }
        }
        return 0;
    }

    static MarkdownTable BreakdownTable(StepProfile profile, double wallMs)
    {
        var inv = CultureInfo.InvariantCulture;
        var t = new MarkdownTable("phase", "mean ms/step", "share").RightAlign(1, 2);
        double sum = 0;
        foreach (var phase in Enum.GetValues<StepPhase>())
        {
            double ms = profile.MeanMs(phase);
            sum += ms;
            t.Add(phase.ToString(), ms.ToString("0.0", inv), (ms / wallMs).ToString("0.0%", inv));
        }
        t.Add("(untimed glue)", (wallMs - sum).ToString("0.0", inv), ((wallMs - sum) / wallMs).ToString("0.0%", inv));
        return t;
    }

    static double Median(List<double> v)
    {
        var s = v.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }

    static string RepoRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Runtime.sln"))) return d.FullName;
        throw new IOException("cannot find the VitSparse checkout (Runtime.sln) above the working directory; run bench from the repository");
    }

    /// <summary>tools/peers/torch_train_peer.py in a child process, with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset in its environment only.</summary>
    sealed class TorchTrainPeer : IDisposable
    {
        readonly Process _process;

        public TorchTrainPeer(string root, string weights, int threads, int batch)
        {
            var psi = new ProcessStartInfo(TorchPeer.Python) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { Path.Combine(root, "tools", "peers", "torch_train_peer.py"), weights, "--batch", batch.ToString(CultureInfo.InvariantCulture) })
                psi.ArgumentList.Add(a);
            psi.Environment.Remove("OPENBLAS_CORETYPE");
            psi.Environment.Remove("OPENBLAS_L2_SIZE");
            psi.Environment["OPENBLAS_NUM_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
            psi.Environment["OMP_NUM_THREADS"] = "1";
            _process = Process.Start(psi)!;
            _process.ErrorDataReceived += (_, _) => { };
            _process.BeginErrorReadLine();
            if (_process.StandardOutput.ReadLine() != "ready")
                throw new IOException($"the PyTorch training peer did not start (exit code {(_process.HasExited ? _process.ExitCode : -1)})");
        }

        /// <summary>Runs <paramref name="count"/> steps: wall and process CPU milliseconds of each.</summary>
        public (double[] Wall, double[] Cpu) Run(int count)
        {
            _process.StandardInput.WriteLine($"run {count}");
            _process.StandardInput.Flush();
            double[] Line() => (_process.StandardOutput.ReadLine() ?? throw new IOException("the PyTorch training peer exited"))
                .Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            return (Line(), Line());
        }

        public void Dispose()
        {
            try
            {
                if (!_process.HasExited)
                {
                    _process.StandardInput.WriteLine("quit");
                    if (!_process.WaitForExit(5000)) _process.Kill();
                }
            }
            catch (InvalidOperationException) { }
            _process.Dispose();
        }
    }
}
