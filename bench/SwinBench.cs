using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;

namespace VitSparse.Bench;

/// <summary>`bench --model swin_t|swin_s|swin_b`: a Swin measured like a DeiT, against the same peers in alternating rounds.</summary>
public static partial class BenchApp
{
    sealed record SwinVariant(string Label, SwinModel Model, bool Peers = true);

    /// <summary><paramref name="name"/> null: the architecture and the label come from the file (a Swin given as --weights without --model).</summary>
    static void MeasureSwin(string? name, string? weightsPath, BenchSettings s, BenchReport report, TextWriter log)
    {
        if (s.Sparsify != null) throw new InputException("--sparsify", "is for DeiT models; a Swin is benchmarked dense or as its file stores it");
        SwinConfig config;
        ITensorSource weights;
        string source;
        SafeTensorsFile? file = null;
        var variants = new List<SwinVariant>();
        try
        {
            if (weightsPath != null)
            {
                file = new SafeTensorsFile(weightsPath);
                config = SwinFile.ReadConfig(file, name);
                weights = new SafeTensorsSource(file);
                source = Path.GetFileName(weightsPath);
            }
            else
            {
                config = SwinArchitectures.Get(name!, "--model");
                weights = new SeededSwinWeights(config);
                source = "seeded synthetic";
            }
            string label = name ?? config.Name;
            var dense = SwinModel.FromSource(weights, config, new LoadOptions { Warn = log.WriteLine, Sparse = SparseMode.Off });
            if (s.Sparse != SparseMode.Off && SwinModel.FromSource(weights, config, new LoadOptions { Warn = log.WriteLine, Sparse = s.Sparse }) is { } sparse
                && sparse.LinearLayers.Any(l => l.Format != WeightFormat.Dense))
            {
                variants.Add(new SwinVariant($"{label} dense", dense, Peers: false));
                variants.Add(new SwinVariant($"{label} sparse", sparse));
            }
            else variants.Add(new SwinVariant(label, dense));
        }
        finally { file?.Dispose(); }

        var c = config;
        var input = new float[(long)s.Batch * c.ImageElements];
        for (int i = 0; i < s.Batch; i++) SeededWeights.FillInput(input.AsSpan(i * c.ImageElements, c.ImageElements));
        var contenders = new List<(SwinVariant Variant, Contender Contender)>();
        var sessions = new List<SwinSession>();
        var disposables = new List<IDisposable>();
        try
        {
            foreach (var v in variants)
            {
                var logits = new float[(long)s.Batch * c.NumClasses];
                var session = new SwinSession(v.Model, s.Device, s.Threads, s.Fp16Weights);
                sessions.Add(session);
                session.Run(input, s.Batch, logits);
                if (s.Device != "cpu")
                {
                    using var cpu = new SwinSession(v.Model, s.Threads);
                    var expected = new float[logits.Length];
                    cpu.Run(input, s.Batch, expected);
                    report.DeviceVsCpuMaxAbsDiff[v.Label] = MaxAbsDiff(expected, logits);
                }
                contenders.Add((v, new Contender("VitSparse", count => Time(count, () => session.Run(input, s.Batch, logits)), logits.ToArray())));
                foreach (var peer in v.Peers ? s.Peers : [])
                {
                    var contender = peer == "ort" ? StartOrt(v.Label, c, weightsPath, s, input, report, disposables, log)
                        : StartTorch(v.Label, c, weightsPath, s, report, disposables, log);
                    if (contender != null) contenders.Add((v, contender));
                }
            }
            log.WriteLine($"{config.Name}: {source} weights; warming up {string.Join(", ", contenders.Select(x => $"{x.Contender.Name} on {x.Variant.Label}"))} ({s.Warmup} runs each)…");
            Alternate(contenders.Select(x => x.Contender).ToList(), s.Warmup, s.Iterations);
            for (int i = 0; i < variants.Count; i++)
            {
                var session = sessions[i];
                var logits = new float[(long)s.Batch * c.NumClasses];
                session.Timings = new OpTimings();
                for (int r = 0; r < Math.Max(5, s.Iterations / 3); r++) session.Run(input, s.Batch, logits);
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
                report.Results.Add(Result(v.Label, x, ours, source, s, gmac, SwinLayout.Params(c)));
            }
        }
        if (variants.Count == 2)
        {
            var d = report.Results.LastOrDefault(r => r.Model == variants[0].Label && r.Runtime == "VitSparse");
            var p = report.Results.LastOrDefault(r => r.Model == variants[1].Label && r.Runtime == "VitSparse");
            if (d != null && p != null)
                report.Speedups.Add(new Speedup(variants[1].Label, "VitSparse", d.MedianMs, p.MedianMs, d.MedianMs / p.MedianMs, d.Gmac / p.Gmac, d.Params, p.Params));
        }
    }
}
