using System.Diagnostics;
using System.Globalization;

namespace VitSparse.Bench.Peers;

/// <summary>
/// PyTorch (Debian python3-torch) in a child process running tools/peers/torch_peer.py, driven line by
/// line so its runs can alternate with the other runtimes'. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are
/// removed from its environment only (the machine's setting forces AVX2 kernels). Debian's OpenBLAS 0.3.21
/// does not recognise Zen 5 or Sapphire/Emerald Rapids and autodetects a slow generic kernel there, so on
/// an AVX-512 machine the peer gets the SkylakeX kernel, its fastest (measured: 0.75 ms vs 2.9 ms for the
/// 197×384→1152 linear), so that the comparison is against PyTorch at its best.
/// </summary>
public sealed class TorchPeer : IDisposable
{
    public const string Python = "/usr/bin/python3";
    readonly Process _process;

    /// <summary>Why `import torch` fails (enough for torch.onnx.export), or null when it works.</summary>
    public static string? TorchMissing()
    {
        if (!File.Exists(Python)) return $"{Python} not found";
        var p = Process.Start(new ProcessStartInfo(Python, ["-c", "import torch"]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        p.WaitForExit();
        return p.ExitCode != 0 ? "python3-torch is not installed" : null;
    }

    /// <summary>Why the PyTorch peer cannot run fairly here, or null when it can.</summary>
    public static string? Unavailable()
    {
        if (TorchMissing() is { } missing) return missing;
        // Without OpenBLAS, Debian's torch runs its linears on the reference BLAS (~3 GFLOP/s): not a fair peer.
        return File.Exists("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3") || File.Exists("/usr/lib/aarch64-linux-gnu/openblas-pthread/libblas.so.3")
            ? null : "libopenblas0-pthread is not installed (torch would use the reference BLAS)";
    }

    public TorchPeer(string repoRoot, string configPath, string? weights, int threads, int batch)
    {
        var psi = new ProcessStartInfo(Python)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(repoRoot, "tools", "peers", "torch_peer.py"));
        psi.ArgumentList.Add(configPath);
        if (weights != null) { psi.ArgumentList.Add("--weights"); psi.ArgumentList.Add(weights); }
        psi.ArgumentList.Add("--batch"); psi.ArgumentList.Add(batch.ToString(CultureInfo.InvariantCulture));
        psi.Environment.Remove("OPENBLAS_CORETYPE");
        psi.Environment.Remove("OPENBLAS_L2_SIZE");
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported) psi.Environment["OPENBLAS_CORETYPE"] = "SkylakeX";
        psi.Environment["OPENBLAS_NUM_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
        psi.Environment["OMP_NUM_THREADS"] = "1";
        _process = Process.Start(psi)!;
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginErrorReadLine();
        string? ready = _process.StandardOutput.ReadLine();
        if (ready != "ready") throw new InvalidOperationException($"PyTorch peer did not start (exit code {(_process.HasExited ? _process.ExitCode : -1)})");
    }

    string Ask(string command)
    {
        _process.StandardInput.WriteLine(command);
        _process.StandardInput.Flush();
        return _process.StandardOutput.ReadLine() ?? throw new InvalidOperationException("PyTorch peer exited");
    }

    public double[] Run(int count) =>
        Ask($"run {count}").Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();

    public float[] Logits() =>
        Ask("logits").Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray();

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
