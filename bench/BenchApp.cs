using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using VitSparse.Bench.Peers;
using VitSparse.Interop.Onnx;
using VitSparse.Kernels;
using VitSparse.Pruning;
using VitSparse.Pruning.Lpvit;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime;
using VitSparse.Runtime.Energy;
using VitSparse.Runtime.Models;
using VitSparse.Runtime.Text;

namespace VitSparse.Bench;

/// <summary>One runtime's measured latency on one model.</summary>
public sealed record BenchResult(string Model, string Runtime, string Weights, int Threads, int Batch, int Iterations,
    double MedianMs, double MinMs, double MaxMs, double ImagesPerSecond, double Gmac, double Gflops, long Params,
    double? VitSparseOverPeer = null, double? MaxAbsLogitDiff = null)
{
    /// <summary>The median again, under the name the percentile columns use.</summary>
    public double P50Ms => MedianMs;
    /// <summary>90th percentile of the timed runs (linear interpolation between order statistics).</summary>
    public double P90Ms { get; init; }
    /// <summary>99th percentile: with fewer than 100 runs it lies between the two slowest.</summary>
    public double P99Ms { get; init; }
}

/// <summary>A peer that could not be measured, and how to make it available.</summary>
public sealed record SkippedPeer(string Model, string Runtime, string Reason);

/// <summary>Dense vs pruned on one runtime: does the MAC reduction become time?</summary>
public sealed record Speedup(string Model, string Runtime, double DenseMs, double PrunedMs, double MeasuredSpeedup, double MacRatio, long DenseParams, long PrunedParams)
{
    public double SpeedupOverMacRatio => MeasuredSpeedup / MacRatio;
    /// <summary>Dense ÷ pruned joules per inference from a sensor (bench --energy with a meter).</summary>
    public double? MeasuredEnergyRatio { get; init; }
    /// <summary>The same ratio from <see cref="VitSparse.Runtime.Energy.EnergyModel"/>: modelled, not measured.</summary>
    public double? ModelledEnergyRatio { get; init; }
}

public sealed record BenchReport(string Machine, List<BenchResult> Results, List<SkippedPeer> Skipped, Dictionary<string, Dictionary<string, double>> BreakdownMs, List<Speedup> Speedups)
{
    /// <summary>Busy processes run beside the measurement (bench --load).</summary>
    public int Load { get; set; }
    /// <summary>/proc/loadavg when the run started (other load on the machine), where the OS has it.</summary>
    public string? LoadAverage { get; set; }
    public EnergyReport? Energy { get; set; }
    /// <summary>Kernel launches per inference on a GPU device (`--breakdown`), per model.</summary>
    public Dictionary<string, long> LaunchesPerInference { get; init; } = [];
    /// <summary>On a GPU device: max |Δlogit| of the device's logits against the CPU backend's, per model.</summary>
    public Dictionary<string, double> DeviceVsCpuMaxAbsDiff { get; init; } = [];
}

/// <summary>
/// `bench --model deit_s [--peers ort,torch]`: builds each model (seeded synthetic weights unless --weights
/// is given), warms up, then times whole inferences, alternating VitSparse with its peers in rounds so that
/// machine drift hits every runtime alike. Prints markdown tables (and JSON with --json).
/// </summary>
public static partial class BenchApp
{
    const int RoundSize = 5;
    /// <summary>Pause before each round, longer than a thread pool's spin-before-sleep.</summary>
    internal const int SettleMs = 50;

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var models = new Option<string>("--model") { Description = "comma-separated architectures: deit_t, deit_s, deit_b, deit_s_snp, deit_s_lpvit, deit_b_lpvit, swin_t_dimap, swin_t_lpvit, ... (see vitsparse inspect)", DefaultValueFactory = _ => "deit_s" };
        var weights = new Option<string?>("--weights") { Description = "a real checkpoint to benchmark instead of seeded synthetic weights (one model); seeded:ARCH names the synthetic weights of ARCH" };
        var threads = new Option<int>("--threads") { Description = "intra-op threads, for every runtime", DefaultValueFactory = _ => Environment.ProcessorCount };
        var batch = new Option<int>("--batch") { Description = "images per inference", DefaultValueFactory = _ => 1 };
        var warmup = new Option<int>("--warmup") { Description = "untimed runs first, per runtime", DefaultValueFactory = _ => 10 };
        var iterations = new Option<int>("--iterations") { Description = "timed runs per runtime", DefaultValueFactory = _ => 30 };
        var peers = new Option<string>("--peers") { Description = "peers measured in the same run: ort, torch (comma-separated) or none", DefaultValueFactory = _ => "none" };
        var breakdown = new Option<bool>("--breakdown") { Description = "also print where VitSparse's time goes, per operation" };
        var json = new Option<string?>("--json") { Description = "also write the results as JSON to this file" };
        var sparse = new Option<string>("--sparse") { Description = "kernels for layers with zeros in the sparse variant: auto, bsr, unstructured (off or dense: no sparse variant)", DefaultValueFactory = _ => "auto" };
        var load = new Option<int>("--load") { Description = "busy-spinning processes to run beside the measurement (a contended device; killed at the end)", DefaultValueFactory = _ => 0 };
        var sparsify = new Option<string?>("--sparsify") { Description = "zero a fraction of every block linear by magnitude (not a pruning method) and compare with the same model dense: bsr32x32:0.5, bsr16x16:0.5, unstructured:0.7" };
        var device = new Option<string>("--device") { Description = "what runs VitSparse: cpu, gpu, gpu:N, ilgpu-cpu (GPU kernels on ILGPU's slow CPU accelerator)", DefaultValueFactory = _ => "cpu" };
        var fp16 = new Option<bool>("--fp16-weights") { Description = "on a GPU device, store weights as fp16" };
        var root = new RootCommand("VitSparse benchmark: end-to-end latency per model, with peers")
        {
            models, weights, threads, batch, warmup, iterations, peers, breakdown, json, sparse, sparsify, load, device, fp16,
        };
        EnergyBench.AddOptions(root);
        var ortExport = new Option<string>("--ort-export") { Description = "the ONNX model the ort peer runs: torch (torch.onnx.export of the PyTorch reference, independent of VitSparse), vitsparse (vitsparse export-onnx), or auto (torch when installed)", DefaultValueFactory = _ => "auto" };
        root.Options.Add(ortExport);
        root.SetAction(pr =>
        {
            try
            {
                if (SwinLpvitBench.Handles(pr.GetValue(models)!))   // --model swin_t_lpvit: SwinLpvitBench.cs
                {
                    return SwinLpvitBench.Run(pr.GetValue(models)!, pr.GetValue(weights), pr.GetValue(threads), pr.GetValue(batch), pr.GetValue(warmup), pr.GetValue(iterations), stdout, stderr,
                        VitSparse.Runtime.Backends.Devices.Validate(pr.GetValue(device)!));
                }
                if (SwinDimapBench.Handles(pr.GetValue(models)!))   // --model swin_t_dimap: SwinDimapBench.cs
                {
                    return SwinDimapBench.Run(pr.GetValue(models)!, pr.GetValue(weights), pr.GetValue(threads), pr.GetValue(batch), pr.GetValue(warmup), pr.GetValue(iterations), stdout, stderr,
                        VitSparse.Runtime.Backends.Devices.Validate(pr.GetValue(device)!));
                }
                var names = pr.GetValue(models)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                string? w = pr.GetValue(weights);
                if (w != null && names.Length != 1) throw new InputException("--weights", "give exactly one --model with --weights");
                if (w != null && Synthetic.IsSeededSwin(w, out var seededSwin))
                {
                    if (pr.GetResult(models) is null or { Implicit: true }) names = [w[Synthetic.Prefix.Length..]];
                    if (!SwinArchitectures.TryGet(names[0], out var m) || m.Name != seededSwin.Name)
                        throw new InputException("--weights", $"{w} is not the architecture of --model {names[0]}");
                    w = null;
                }
                else if (w != null && Synthetic.IsSeeded(w, out var seeded))
                {
                    // seeded:ARCH is what bench measures anyway: the synthetic weights of ARCH (or of the dense model an SNP name prunes).
                    if (pr.GetResult(models) is null or { Implicit: true }) names = [w[Synthetic.Prefix.Length..]];
                    string dense = SnpModels.TryGetValue(names[0], out var snp) ? snp.Dense : LpvitBench.Models.TryGetValue(names[0], out var lp) ? lp.Dense : names[0];
                    if (Architectures.Get(dense, "--model").Name != seeded.Name)
                        throw new InputException("--weights", $"{w} is not the architecture of --model {names[0]}");
                    w = null;
                }
                var spec = pr.GetValue(sparsify) is { } sp ? SparsifySpec.Parse(sp) : null;
                var mode = ParseSparse(pr.GetValue(sparse));
                var settings = new BenchSettings(pr.GetValue(threads), pr.GetValue(batch), pr.GetValue(warmup), pr.GetValue(iterations), ParsePeers(pr.GetValue(peers)!), mode, spec)
                    { Load = pr.GetValue(load), OrtExport = ParseOrtExport(pr.GetValue(ortExport)), Device = VitSparse.Runtime.Backends.Devices.Validate(pr.GetValue(device)!), Fp16Weights = pr.GetValue(fp16) };
                settings.Validate();
                var report = new BenchReport($"{Isa.Describe()} · {Environment.ProcessorCount} cores · .NET {Environment.Version} · {(settings.Fp16Weights ? "fp16 weights" : "fp32")}{(settings.Device == "cpu" ? "" : $" · VitSparse on --device {settings.Device}")}", [], [], [], [])
                    { Load = settings.Load, LoadAverage = ReadLoadAverage() };
                using var energy = EnergyBench.Open(pr);
                report.Energy = energy?.Report;
                // A Swin file without --model is measured as the Swin it holds (the default --model is a DeiT).
                bool swinFile = w != null && pr.GetResult(models) is null or { Implicit: true } && IsSwinFile(w);
                foreach (var n in names)
                    if (swinFile) MeasureSwin(null, w, settings, report, stderr);
                    else if (SwinArchitectures.TryGet(n, out _)) MeasureSwin(n, w, settings, report, stderr);
                    else Measure(n, w, settings, report, stderr, energy);
                stdout.WriteLine($"VitSparse bench · {report.Machine}");
                if (report.Load > 0) stdout.WriteLine($"--load {report.Load}: {report.Load} busy-spinning process{(report.Load == 1 ? "" : "es")} ran beside the measurement");
                if (report.LoadAverage != null) stdout.WriteLine($"load average at start: {report.LoadAverage}");
                if (spec != null) stdout.WriteLine($"--sparsify {spec.Label}: every block linear zeroed by magnitude per layer, a structure for kernel benchmarks, not a pruning method (accuracy is not kept)");
                stdout.WriteLine();
                stdout.Write(Table(report.Results));
                foreach (var (m, d) in report.DeviceVsCpuMaxAbsDiff)
                    stdout.WriteLine($"{m} on --device {settings.Device}: max |Δlogit| against the CPU backend {d.ToString("g3", System.Globalization.CultureInfo.InvariantCulture)}");
                foreach (var s in report.Skipped) stdout.WriteLine($"skipped {s.Runtime} for {s.Model}: {s.Reason}");
                if (report.Speedups.Count > 0) stdout.Write(SpeedupTable(report.Speedups));
                stdout.Write(LpvitBench.TakeTables());
                if (report.Energy != null) stdout.Write(EnergyBench.Tables(report.Energy));
                if (pr.GetValue(breakdown)) stdout.Write(BreakdownTable(report.BreakdownMs));
                if (pr.GetValue(breakdown) && report.LaunchesPerInference.Count > 0)
                    stdout.WriteLine($"\nkernel launches per inference ({settings.Device}): {string.Join(", ", report.LaunchesPerInference.Select(kv => $"{kv.Key} {kv.Value}"))}");
                if (pr.GetValue(json) is { } path)
                    VitSparse.Runtime.Formats.AtomicFile.Write(path, s => JsonSerializer.Serialize(s, report, BenchJson.Default.BenchReport));
                return 0;
            }
            catch (VitSparseException e) { stderr.WriteLine($"error: {e.Message}"); return 2; }
            catch (IOException e) { stderr.WriteLine($"error: {e.Message}"); return 2; }
        });
        var quick = new Option<bool>("--quick") { Description = "few iterations (a smoke run, not a measurement)" };
        var sparseKernels = new Option<bool>("--sparse") { Description = "the sparse linears against dense on DeiT-S/B shapes: ratios, cost-model factors and break-even densities" };
        var sparseCases = new Option<string?>("--cases") { Description = "with --sparse: only the cases whose name starts with this (e.g. unstructured, bsr32x32), alternating measurement only (no BenchmarkDotNet pass)" };
        var sparseRounds = new Option<int?>("--rounds") { Description = "with --sparse: only the alternating sparse-vs-dense measurement, this many rounds (no BenchmarkDotNet pass; default 41)" };
        var sparseThreads = new Option<int>("--threads") { Description = "with --sparse: time dense and sparse on a team of this many threads (wall time; only the alternating measurement)", DefaultValueFactory = _ => 1 };
        var kernels = new Command("kernels", "BenchmarkDotNet suites per kernel: GFLOP/s and share of the measured FMA peak") { quick, sparseKernels, sparseCases, sparseRounds, sparseThreads };
        kernels.SetAction(pr => Suites.KernelSuite.Run(stdout, stderr, pr.GetValue(quick), pr.GetValue(sparseKernels), pr.GetValue(sparseCases), pr.GetValue(sparseRounds), pr.GetValue(sparseThreads)));
        root.Add(kernels);
        root.Add(GemmBench.Create(stdout, stderr));
        root.Add(TrainBench.Create(stdout, stderr));
        return root.Parse(args).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
    }

    static string[] ParsePeers(string value)
    {
        if (value is "none" or "") return [];
        var list = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var p in list)
            if (p is not ("ort" or "torch")) throw new InputException("--peers", $"unknown peer '{p}'; known: ort, torch, none");
        return list;
    }

    /// <summary>--ort-export: auto (torch when python3-torch imports: an exporter independent of VitSparse; else vitsparse), torch or vitsparse.</summary>
    static string ParseOrtExport(string? value) => value switch
    {
        null => "auto",
        "auto" or "torch" or "vitsparse" => value,
        _ => throw new InputException("--ort-export", $"'{value}' is not one of auto, torch, vitsparse"),
    };

    static SparseMode ParseSparse(string? value) => value switch
    {
        null or "auto" => SparseMode.Auto,
        "off" or "dense" => SparseMode.Off,
        "bsr" => SparseMode.Bsr,
        "unstructured" => SparseMode.Unstructured,
        _ => throw new InputException("--sparse", $"'{value}' is not one of auto, off, dense, bsr, unstructured"),
    };

    sealed record BenchSettings(int Threads, int Batch, int Warmup, int Iterations, string[] Peers, SparseMode Sparse = SparseMode.Auto, SparsifySpec? Sparsify = null)
    {
        public string Device { get; init; } = "cpu";
        public bool Fp16Weights { get; init; }
        public int Load { get; init; }
        /// <summary>Which exporter writes the ort peer's model: auto, torch or vitsparse.</summary>
        public string OrtExport { get; init; } = "auto";

        public void Validate()
        {
            LoadProcesses.Validate(Load);
            if (Threads < 1) throw new InputException("--threads", $"must be at least 1, got {Threads}");
            if (Batch < 1) throw new InputException("--batch", $"must be at least 1, got {Batch}");
            if (Warmup < 0) throw new InputException("--warmup", $"must be at least 0, got {Warmup}");
            if (Iterations < 1) throw new InputException("--iterations", $"must be at least 1, got {Iterations}");
        }
    }

    /// <summary>Whether <paramref name="path"/> holds a Swin (our config, or timm's Swin keys); unreadable files are left to the loader's errors.</summary>
    static bool IsSwinFile(string path)
    {
        if (!File.Exists(path)) return false;
        try { using var f = new SafeTensorsFile(path); return SwinFile.IsSwin(f); }
        catch (VitSparseException) { return false; }
    }

    /// <summary>
    /// Warms every contender up, then times them in alternating rounds of <see cref="RoundSize"/>, each round after a
    /// pause: a runtime's idle pool threads may still spin right after its round (ONNX Runtime's do), and the next
    /// runtime's first runs must not be timed against them.
    /// </summary>
    static void Alternate(IReadOnlyList<Contender> contenders, int warmup, int iterations)
    {
        foreach (var x in contenders) x.Round(warmup);
        foreach (var x in contenders) x.Times.Clear();
        for (int done = 0; done < iterations; done += RoundSize)
            foreach (var x in contenders)
            {
                Thread.Sleep(SettleMs);
                x.Round(Math.Min(RoundSize, iterations - done));
            }
    }

    /// <summary>A runtime under test: runs one inference when asked, keeps its timings.</summary>
    sealed class Contender(string name, Func<int, double[]> run, float[]? logits)
    {
        public string Name { get; } = name;
        public List<double> Times { get; } = [];
        public float[]? Logits { get; } = logits;
        public void Round(int count) => Times.AddRange(run(count));
        /// <summary>count inferences whose times are not kept (the energy windows).</summary>
        public void Untimed(int count) => run(count);
    }

    /// <summary>One model measured: the dense model, or for an SNP name also its pruned version.</summary>
    sealed record Variant(string Label, VitModel Model, ITensorSource Weights, string? WeightsFile, bool Peers = true);

    /// <summary>bench names of SNP structures: the dense architecture they are pruned from, and the released target.</summary>
    static readonly Dictionary<string, (string Dense, string Target)> SnpModels = new(StringComparer.OrdinalIgnoreCase)
    {
        ["deit_t_snp"] = ("deit_t", "deit_t_snp"), ["deit_s_snp"] = ("deit_s", "deit_s_snp"),
        ["deit_s_snp_1.3g"] = ("deit_s", "deit_s_snp_1.3g"), ["deit_b_snp"] = ("deit_b", "deit_b_snp"),
    };

    const int SnpCalibrationImages = 8;

    static void Measure(string name, string? weightsPath, BenchSettings s, BenchReport report, TextWriter log, EnergyBench.Session? energy)
    {
        bool snp = SnpModels.TryGetValue(name, out var snpSpec);
        bool lpvit = LpvitBench.Models.TryGetValue(name, out var lpvitSpec);
        string denseName = snp ? snpSpec.Dense : lpvit ? lpvitSpec.Dense : name;
        BlockPruneResult? lpvitResult = null;
        VitConfig config;
        ITensorSource weights;
        string source;
        SafeTensorsFile? file = null;
        if (weightsPath != null)
        {
            file = new SafeTensorsFile(weightsPath);
            config = VitModel.ReadConfig(file, Architectures.TryGet(denseName, out _) ? denseName : null);
            weights = new SafeTensorsSource(file);
            source = Path.GetFileName(weightsPath);
        }
        else
        {
            config = Architectures.Get(denseName);
            weights = new SeededWeights(config);
            source = "seeded synthetic";
        }
        var variants = new List<Variant>();
        try
        {
            if (s.Sparsify is { } spec)
            {
                if (snp || lpvit) throw new InputException("--sparsify", "applies to a dense architecture, not to an SNP or LPViT model");
                log.WriteLine($"{name}: zeroing {spec.Label} of every block linear by magnitude (a structure for kernel benchmarks, not a pruning method)…");
                var masked = spec.Apply(weights, config);
                string? maskedFile = null;
                if (s.Peers.Length > 0)
                {
                    maskedFile = Path.Combine(ArtifactsDir(), $"{name}-{spec.Label.Replace(' ', '_').Replace("%", "pct")}-{Hash(source)}.safetensors");
                    VitModel.Save(maskedFile, config, masked);
                }
                variants.Add(new Variant($"{denseName} dense", VitModel.FromSource(masked, config, new LoadOptions { Sparse = SparseMode.Off }), masked, maskedFile, Peers: false));
                variants.Add(new Variant($"{denseName} {spec.Label}", VitModel.FromSource(masked, config, new LoadOptions { Sparse = s.Sparse == SparseMode.Off ? SparseMode.Auto : s.Sparse }), masked, maskedFile));
            }
            else if (lpvit)
            {
                // Prune for real (LPViT on seeded calibration images); dense and block-sparse alternate in this run.
                lpvitResult = LpvitBench.Prune(name, weights, config, s.Threads, log);
                variants.Add(new Variant($"{denseName} dense", VitModel.FromSource(weights, config, new LoadOptions { Warn = log.WriteLine, Sparse = SparseMode.Off }), weights, weightsPath, Peers: false));
                variants.Add(new Variant(name, VitModel.FromSource(lpvitResult.Pruned, config, new LoadOptions { Sparse = s.Sparse == SparseMode.Off ? SparseMode.Auto : s.Sparse }), lpvitResult.Pruned, null, Peers: false));
            }
            else if (!snp && s.Sparse != SparseMode.Off && VitModel.FromSource(weights, config, new LoadOptions { Warn = log.WriteLine, Sparse = s.Sparse }) is { } sparseModel
                && sparseModel.LinearLayers.Any(l => l.Format != WeightFormat.Dense))
            {
                // Weights with zeros (or stored sparse): the same model densified runs alongside.
                variants.Add(new Variant($"{denseName} dense", VitModel.FromSource(weights, config, new LoadOptions { Warn = log.WriteLine, Sparse = SparseMode.Off }), weights, weightsPath, Peers: false));
                variants.Add(new Variant($"{denseName} sparse", sparseModel, weights, weightsPath));
            }
            else variants.Add(new Variant(denseName, VitModel.FromSource(weights, config, new LoadOptions { Warn = log.WriteLine, Sparse = SparseMode.Off }), weights, weightsPath));
            if (snp)
            {
                // Prune for real: SNP scores on (seeded) calibration images, released widths, surgery.
                var dense = DenseTensors.From(weights, config);
                var calib = new float[SnpCalibrationImages * config.ImageElements];
                for (int i = 0; i < SnpCalibrationImages; i++) SeededWeights.FillInput(calib.AsSpan(i * config.ImageElements, config.ImageElements), (ulong)i + 1);
                log.WriteLine($"{name}: pruning {denseName} with SNP ({SnpCalibrationImages} seeded calibration images) to {snpSpec.Target}…");
                var qk = Pruner.CalibrateSnp(dense, calib, SnpCalibrationImages, threads: s.Threads);
                var (pruned, rep) = Pruner.Prune(dense, new PruneTarget.Structure(Architectures.Get(snpSpec.Target)), Criterion.Snp, qk, SnpCalibrationImages);
                string? prunedFile = null;
                if (s.Peers.Length > 0)
                {
                    prunedFile = Path.Combine(ArtifactsDir(), $"{rep.Target.Replace(' ', '_')}-{Hash(source + pruned.Config.ToJson())}.safetensors");
                    VitModel.Save(prunedFile, pruned.Config, pruned);
                }
                variants.Add(new Variant(pruned.Config.Name, VitModel.FromSource(pruned, pruned.Config), pruned, prunedFile));
            }
        }
        finally
        {
            file?.Dispose();
        }

        var c = config;
        var input = new float[(long)s.Batch * c.ImageElements];
        for (int i = 0; i < s.Batch; i++) SeededWeights.FillInput(input.AsSpan(i * c.ImageElements, c.ImageElements));
        var contenders = new List<(Variant Variant, Contender Contender)>();
        var sessions = new List<InferenceSession>();
        var disposables = new List<IDisposable>();
        try
        {
            foreach (var v in variants)
            {
                var logits = new float[(long)s.Batch * c.NumClasses];
                var session = new InferenceSession(v.Model, s.Device, s.Threads, s.Fp16Weights);
                sessions.Add(session);
                session.Run(input, s.Batch, logits);
                if (s.Device != "cpu")
                {
                    using var cpu = new InferenceSession(v.Model, s.Threads);
                    var expected = new float[logits.Length];
                    cpu.Run(input, s.Batch, expected);
                    report.DeviceVsCpuMaxAbsDiff[v.Label] = MaxAbsDiff(expected, logits);
                }
                contenders.Add((v, new Contender("VitSparse", count => Time(count, () => session.Run(input, s.Batch, logits)), logits.ToArray())));
                foreach (var peer in v.Peers ? s.Peers : [])
                {
                    var contender = peer == "ort" ? StartOrt(v.Label, v.Model.Config, v.WeightsFile, s, input, report, disposables, log)
                        : StartTorch(v.Label, v.Model.Config, v.WeightsFile, s, report, disposables, log);
                    if (contender != null) contenders.Add((v, contender));
                }
            }

            // The busy neighbours run from warm-up to the end of the breakdown, and are killed in the finally below.
            if (s.Load > 0)
            {
                var busy = LoadProcesses.Start(s.Load);
                disposables.Add(busy);
                log.WriteLine($"{name}: {s.Load} busy process{(s.Load == 1 ? "" : "es")} started (PID {string.Join(", ", busy.Pids)})");
            }
            log.WriteLine($"{name}: {source} weights; warming up {string.Join(", ", contenders.Select(x => $"{x.Contender.Name} on {x.Variant.Label}"))} ({s.Warmup} runs each)…");
            Alternate(contenders.Select(x => x.Contender).ToList(), s.Warmup, s.Iterations);
            if (energy != null)
                EnergyBench.Measure(energy, contenders.Select(x => (x.Variant.Label, x.Variant.Model, x.Contender.Name, Median(x.Contender.Times), (Action<int>)x.Contender.Untimed)).ToList(), s.Batch, log);

            for (int i = 0; i < variants.Count; i++)
            {
                var session = sessions[i];
                var logits = new float[(long)s.Batch * c.NumClasses];
                session.Timings = new OpTimings();
                int runs = Math.Max(5, s.Iterations / 3);
                long launches = session.Backend.Launches;
                for (int r = 0; r < runs; r++) session.Run(input, s.Batch, logits);
                if (s.Device != "cpu") report.LaunchesPerInference[variants[i].Label] = (session.Backend.Launches - launches) / runs;
                report.BreakdownMs[variants[i].Label] = Enum.GetValues<Op>().ToDictionary(op => op.ToString(), op => session.Timings.MeanMs(op));
            }
        }
        finally
        {
            foreach (var d in disposables) d.Dispose();
            foreach (var x in sessions) x.Dispose();
        }

        foreach (var v in variants)
        {
            var mine = contenders.Where(x => x.Variant == v).Select(x => x.Contender).ToList();
            var ours = mine[0];
            double gmac = v.Model.KernelMacs() / 1e9;
            foreach (var x in mine)
            {
                report.Results.Add(Result(v.Label, x, ours, source, s, gmac, ModelStats.Params(v.Model.Config)));
            }
        }
        if (variants.Count == 2)
            foreach (var runtime in report.Results.Where(r => r.Model == variants[0].Label).Select(r => r.Runtime).Distinct().ToList())
            {
                var d = report.Results.LastOrDefault(r => r.Model == variants[0].Label && r.Runtime == runtime);
                var p = report.Results.LastOrDefault(r => r.Model == variants[1].Label && r.Runtime == runtime);
                if (d == null || p == null) continue;
                var (measuredEnergy, modelledEnergy) = EnergyBench.Ratios(report.Energy, variants[0].Label, variants[1].Label, runtime);
                report.Speedups.Add(new Speedup(variants[1].Label, runtime, d.MedianMs, p.MedianMs, d.MedianMs / p.MedianMs, d.Gmac / p.Gmac, d.Params, p.Params)
                    { MeasuredEnergyRatio = measuredEnergy, ModelledEnergyRatio = modelledEnergy });
                if (lpvitResult != null && runtime == "VitSparse") LpvitBench.LayerTable(name, lpvitResult, variants[0].Model, variants[1].Model, measuredEnergy);
            }
    }

    static string ArtifactsDir()
    {
        string dir = Path.Combine(RepoRoot(), "artifacts", "peers");
        Directory.CreateDirectory(dir);
        return dir;
    }

    static Contender? StartOrt(string name, IImageModelConfig c, string? weights, BenchSettings s, float[] input, BenchReport report, List<IDisposable> owned, TextWriter log)
    {
        string? noTorch = s.OrtExport == "vitsparse" ? null : TorchPeer.TorchMissing();
        if (s.OrtExport == "torch" && noTorch != null)
        {
            report.Skipped.Add(new(name, "onnxruntime", $"--ort-export torch needs PyTorch: {noTorch}; install with: apt-get install python3-torch, or use --ort-export vitsparse"));
            return null;
        }
        string exporter = s.OrtExport == "vitsparse" || noTorch != null ? "vitsparse" : "torch";
        string onnx = ExportOnnx(RepoRoot(), c, weights, s.Batch, exporter, log);
        var logits = new float[s.Batch * c.NumClasses];
        OnnxRuntimePeer ort;
        try { ort = new OnnxRuntimePeer(onnx, s.Threads, input, [s.Batch, c.InChannels, c.ImageSize, c.ImageSize], logits, [s.Batch, c.NumClasses]); }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException)
        {
            report.Skipped.Add(new(name, "onnxruntime", $"ONNX Runtime (NuGet Microsoft.ML.OnnxRuntime) could not run {onnx}: {e.Message}"));
            return null;
        }
        owned.Add(ort);
        ort.Run();
        return new Contender($"onnxruntime {OnnxRuntimePeer.Version}{(exporter == "torch" ? "" : " (vitsparse export)")}", count => Time(count, ort.Run), logits.ToArray());
    }

    static Contender? StartTorch(string name, IImageModelConfig c, string? weights, BenchSettings s, BenchReport report, List<IDisposable> owned, TextWriter log)
    {
        if (TorchPeer.Unavailable() is { } why)
        {
            report.Skipped.Add(new(name, "pytorch", $"{why}; install with: apt-get install python3-torch libopenblas0-pthread"));
            return null;
        }
        string root = RepoRoot();
        var torch = new TorchPeer(root, WriteConfig(root, c), weights, s.Threads, s.Batch);
        owned.Add(torch);
        var logits = torch.Logits();
        return new Contender("pytorch 1.13 (OpenBLAS)", torch.Run, logits);
    }

    static string WriteConfig(string root, IImageModelConfig c)
    {
        string json = c.ToJson();
        string path = Path.Combine(ArtifactsDir(), $"{c.Name}-{Hash(json)}.json");
        if (!File.Exists(path)) File.WriteAllText(path, json);
        return path;
    }

    /// <summary>
    /// The peer's ONNX model: torch.onnx.export of the plain-PyTorch reference (tools/peers/export_onnx.py, an
    /// implementation independent of ours, DeiT or Swin), or VitSparse's own exporter (<paramref name="exporter"/>, DeiT
    /// only). Exported once per (config, weights, batch, exporter) into artifacts/peers; later runs reuse the file.
    /// </summary>
    static string ExportOnnx(string root, IImageModelConfig c, string? weights, int batch, string exporter, TextWriter log)
    {
        string config = WriteConfig(root, c);
        string key = Hash($"{File.ReadAllText(config)}|{weights}|{(weights != null ? File.GetLastWriteTimeUtc(weights).Ticks : 0)}|{batch}|{exporter}");
        string path = Path.Combine(root, "artifacts", "peers", $"{c.Name}-b{batch}-{key}.onnx");
        if (File.Exists(path)) return path;
        if (exporter == "vitsparse")
        {
            if (c is not VitConfig vit)
                throw new InputException("--ort-export", $"vitsparse's ONNX exporter writes DeiT models only, not '{c.Name}'; use --ort-export torch (needs python3-torch)");
            log.WriteLine($"exporting {c.Name} to ONNX with vitsparse's exporter for the onnxruntime peer…");
            if (weights == null) OnnxExporter.Write(path, vit, new SeededWeights(vit), new OnnxExportOptions { Batch = batch });
            else
            {
                using var file = new SafeTensorsFile(weights);
                OnnxExporter.Write(path, vit, new SafeTensorsSource(file), new OnnxExportOptions { Batch = batch });
            }
            return path;
        }
        log.WriteLine($"exporting {c.Name} to ONNX with torch.onnx.export for the onnxruntime peer…");
        var psi = new ProcessStartInfo(TorchPeer.Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(root, "tools", "peers", "export_onnx.py"), config, path, "--batch", batch.ToString(CultureInfo.InvariantCulture) })
            psi.ArgumentList.Add(a);
        if (weights != null) { psi.ArgumentList.Add("--weights"); psi.ArgumentList.Add(Path.GetFullPath(weights)); }
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0 || !File.Exists(path)) throw new IOException($"ONNX export failed: {err.Trim()}");
        return path;
    }

    static string Hash(string s) => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(s)))[..12].ToLowerInvariant();

    /// <summary>The checkout bench runs from (it holds tools/ for the peers).</summary>
    static string RepoRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Runtime.sln"))) return d.FullName;
        throw new IOException("cannot find the VitSparse checkout (Runtime.sln) above the working directory; run bench from the repository");
    }

    static double[] Time(int count, Action run)
    {
        var times = new double[count];
        for (int i = 0; i < count; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            run();
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        return times;
    }

    static double Median(IReadOnlyList<double> values)
    {
        var t = values.Order().ToArray();
        return t.Length % 2 == 1 ? t[t.Length / 2] : 0.5 * (t[t.Length / 2 - 1] + t[t.Length / 2]);
    }

    /// <summary>The q-quantile of sorted values, interpolating linearly between neighbours (numpy's default; q = 0.5 is the median).</summary>
    /// <summary>One runtime's row: percentiles of its times, throughput, and its speed and logits against ours.</summary>
    static BenchResult Result(string label, Contender x, Contender ours, string source, BenchSettings s, double gmac, long parameters)
    {
        var t = x.Times.Order().ToArray();
        double median = Median(t);
        return new BenchResult(label, x.Name, source, s.Threads, s.Batch, t.Length, median, t[0], t[^1],
            s.Batch * 1000.0 / median, gmac, 2 * gmac * s.Batch / (median / 1000.0), parameters,
            x == ours ? null : Median(ours.Times) / median, x == ours || x.Logits == null ? null : MaxAbsDiff(ours.Logits!, x.Logits))
            { P90Ms = Percentile(t, 0.90), P99Ms = Percentile(t, 0.99) };
    }

    public static double Percentile(IReadOnlyList<double> sorted, double q)
    {
        if (sorted.Count == 0) throw new ArgumentException("no values", nameof(sorted));
        double pos = q * (sorted.Count - 1);
        int lo = (int)Math.Floor(pos), hi = Math.Min(lo + 1, sorted.Count - 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }

    static string? ReadLoadAverage()
    {
        try { return File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : null; }
        catch (IOException) { return null; }
    }

    static double MaxAbsDiff(float[] a, float[] b) => a.Length != b.Length ? double.NaN : a.Zip(b).Max(p => Math.Abs((double)p.First - p.Second));

    public static string Table(IEnumerable<BenchResult> results)
    {
        var inv = CultureInfo.InvariantCulture;
        var t = new MarkdownTable("model", "runtime", "weights", "threads", "batch", "p50 ms", "p90 ms", "p99 ms", "max ms", "min ms", "images/s", "GMAC", "GFLOP/s", "VitSparse/peer", "max |Δlogit|")
            .RightAlign(3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14);
        foreach (var r in results)
            t.Add(r.Model, r.Runtime, r.Weights, r.Threads, r.Batch, r.MedianMs.ToString("0.00", inv), r.P90Ms.ToString("0.00", inv), r.P99Ms.ToString("0.00", inv),
                r.MaxMs.ToString("0.00", inv), r.MinMs.ToString("0.00", inv),
                r.ImagesPerSecond.ToString("0.0", inv), r.Gmac.ToString("0.000", inv), r.Gflops.ToString("0.0", inv),
                r.VitSparseOverPeer?.ToString("0.00×", inv) ?? "", r.MaxAbsLogitDiff?.ToString("0.0e+0", inv) ?? "");
        return t.ToString();
    }

    static string SpeedupTable(List<Speedup> speedups)
    {
        var inv = CultureInfo.InvariantCulture;
        // Energy ratios sit beside the speedup, measured and modelled in columns of their own.
        bool measured = speedups.Any(x => x.MeasuredEnergyRatio != null), modelled = speedups.Any(x => x.ModelledEnergyRatio != null);
        var t = new MarkdownTable(["pruned model", "runtime", "dense ms", "pruned ms", "speedup", .. measured ? ["energy ratio (measured)"] : Array.Empty<string>(),
            .. modelled ? ["energy ratio (modelled)"] : Array.Empty<string>(), "MAC ratio", "speedup ÷ MAC ratio", "params"]);
        t.RightAlign([.. Enumerable.Range(2, 5 + (measured ? 1 : 0) + (modelled ? 1 : 0))]);
        foreach (var x in speedups)
            t.Add([x.Model, x.Runtime, x.DenseMs.ToString("0.00", inv), x.PrunedMs.ToString("0.00", inv), x.MeasuredSpeedup.ToString("0.00×", inv),
                .. measured ? [x.MeasuredEnergyRatio?.ToString("0.00×", inv) ?? ""] : Array.Empty<string>(),
                .. modelled ? [x.ModelledEnergyRatio?.ToString("0.00×", inv) ?? ""] : Array.Empty<string>(),
                x.MacRatio.ToString("0.00×", inv), x.SpeedupOverMacRatio.ToString("0.00", inv), $"{x.DenseParams / 1e6:0.00} M → {x.PrunedParams / 1e6:0.00} M"]);
        return Environment.NewLine + "Dense vs pruned (same run, alternating):" + Environment.NewLine + Environment.NewLine + t;
    }

    static string BreakdownTable(Dictionary<string, Dictionary<string, double>> breakdown)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringWriter(inv);
        var models = breakdown.Keys.ToList();
        sb.WriteLine();
        sb.WriteLine("VitSparse time per operation (mean ms per inference, all blocks; share of the model's total):");
        sb.WriteLine();
        var t = new MarkdownTable(["operation", .. models]);
        t.RightAlign(Enumerable.Range(1, models.Count).ToArray());
        var totals = models.ToDictionary(m => m, m => breakdown[m].Values.Sum());
        foreach (var op in breakdown[models[0]].Keys)
            t.Add([op, .. models.Select(m => $"{breakdown[m][op].ToString("0.00", inv)} ({(breakdown[m][op] / totals[m]).ToString("0%", inv)})")]);
        t.Add(["total", .. models.Select(m => totals[m].ToString("0.00", inv))]);
        sb.Write(t);
        return sb.ToString();
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(BenchReport))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower)]
internal partial class BenchJson : System.Text.Json.Serialization.JsonSerializerContext;
