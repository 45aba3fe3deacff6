using System.IO.Compression;
using System.Text.RegularExpressions;
using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Images;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// What ./test.sh builds for edge deployment before the tests run: the NativeAOT `vitsparse` at the instruction-set
/// levels we ship (tools/publish-aot.sh), the NuGet packages (tools/pack.sh) and samples/EdgeCamera, published as
/// NativeAOT against those packages from the local feed.
/// </summary>
public class EdgeDeploymentTests
{
    static string Artifact(params string[] parts)
    {
        string path = Path.Combine([Processes.RepoRoot, "artifacts", .. parts]);
        Assert.True(File.Exists(path), $"{path} is missing: tools/publish-aot.sh and tools/pack.sh build it (./test.sh runs both)");
        return path;
    }

    static string AotLauncher => Artifact("vitsparse-aot", "vitsparse");
    static string AotLevel(string level) => Artifact("vitsparse-aot", level, "vitsparse");
    static string EdgeCamera => Artifact("edgecamera", "edgecamera");

    static bool CpuHasX86_64_V4 => System.Runtime.Intrinsics.X86.Avx512F.IsSupported && System.Runtime.Intrinsics.X86.Avx512BW.IsSupported
        && System.Runtime.Intrinsics.X86.Avx512CD.IsSupported && System.Runtime.Intrinsics.X86.Avx512DQ.IsSupported;

    static float[] AotLogits(string command, string weights, string input)
    {
        string output = Path.Combine(Fixtures.TempDir(), "logits.npy");
        var (code, _, stderr, _) = Processes.Run(command, ["infer", "--weights", Fixtures.Path_(weights), "--input", Fixtures.Path_(input), "--output", output]);
        Assert.True(code == 0, stderr);
        return Npy.Read(output).Data;
    }

    static float[] InProcessLogits(string name, SimdWidth width)
    {
        var model = VitModel.Load(Fixtures.Path_(name + ".safetensors"), new LoadOptions { Simd = width });
        var input = Fixtures.Npy_(name + ".input.npy");
        var logits = new float[input.Shape[0] * model.Config.NumClasses];
        using var session = new InferenceSession(model, 0);
        session.Run(input.Data, input.Shape[0], logits);
        return logits;
    }

    [Theory]
    [InlineData("x86-64-v3", SimdWidth.V256, "Vector256 (AVX2)")]
    [InlineData("x86-64-v4", SimdWidth.V512, "Vector512 (AVX-512)")]
    public void Aot_binary_of_each_level_runs_its_width_and_matches_pytorch_and_the_jit(string level, SimdWidth width, string isa)
    {
        string command = AotLevel(level);
        if (level == "x86-64-v4" && !CpuHasX86_64_V4) return;   // this CPU cannot run it; the launcher test covers the choice
        var (code, stdout, stderr, _) = Processes.Run(command, ["inspect", "seeded:deit_t"]);
        Assert.True(code == 0, stderr);
        Assert.Contains($"kernels {isa}", stdout);
        foreach (var name in new[] { "ragged_tiny", "ragged_distilled_bf16" })
        {
            var aot = AotLogits(command, name + ".safetensors", name + ".input.npy");
            Fixtures.AssertClose(Fixtures.Npy_(name + ".logits.npy").Data, aot, 1e-4, $"{level} {name}");
            // The same kernels at the same width as the JIT build: bit-identical logits.
            Assert.Equal(InProcessLogits(name, width), aot);
        }
    }

    [Fact]
    public void Aot_launcher_runs_the_widest_level_this_cpu_supports()
    {
        var (code, stdout, stderr, _) = Processes.Run(AotLauncher, ["inspect", "seeded:deit_t"]);
        Assert.True(code == 0, stderr);
        Assert.Contains($"kernels {(CpuHasX86_64_V4 ? "Vector512 (AVX-512)" : "Vector256 (AVX2)")}", stdout);
        Fixtures.AssertClose(Fixtures.Npy_("deit_fmnist.sample.logits.npy").Data, AotLogits(AotLauncher, "deit_fmnist.safetensors", "deit_fmnist.sample.input.npy"), 1e-4, "deit_fmnist");
    }

    [Theory]
    [InlineData("VitSparse.Kernels")]
    [InlineData("VitSparse.Runtime")]
    [InlineData("VitSparse.Pruning")]
    public void Packages_hold_the_library_its_xml_docs_and_the_readme(string id)
    {
        string version = System.Xml.Linq.XDocument.Load(Path.Combine(Processes.RepoRoot, "Directory.Build.props")).Descendants("VitSparseVersion").Single().Value;
        using var package = ZipFile.OpenRead(Artifact("packages", $"{id}.{version}.nupkg"));
        var entries = package.Entries.Select(e => e.FullName).ToHashSet();
        Assert.Contains($"lib/net10.0/{id}.dll", entries);
        Assert.Contains($"lib/net10.0/{id}.xml", entries);
        Assert.Contains("README.md", entries);
        using var nuspec = new StreamReader(package.Entries.Single(e => e.FullName.EndsWith(".nuspec")).Open());
        string text = nuspec.ReadToEnd();
        Assert.Contains($"<version>{version}</version>", text);
        Assert.Contains("<readme>README.md</readme>", text);
    }

    /// <summary>Writes photo_fruits.png as two raw BGR frames (itself and mirrored) and returns the folder, size and expected top-1 names.</summary>
    static (string Folder, int Width, int Height, string[] Top1) RawFrames(VitModel model, string[] names)
    {
        var rgb = ImageFile.Decode(Fixtures.Path_("photo_fruits.png"));
        int w = rgb.Width, h = rgb.Height;
        string folder = Fixtures.TempDir();
        var top1 = new string[2];
        for (int f = 0; f < 2; f++)
        {
            var bgr = new byte[w * h * 3];
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    int sx = f == 0 ? x : w - 1 - x, s = (y * w + sx) * 3, d = (y * w + x) * 3;
                    bgr[d] = rgb.Pixels[s + 2]; bgr[d + 1] = rgb.Pixels[s + 1]; bgr[d + 2] = rgb.Pixels[s];
                }
            File.WriteAllBytes(Path.Combine(folder, $"frame{f}.raw"), bgr);
            var input = new float[model.Config.ImageElements];
            Preprocess.ToTensor(ImageFile.FromPixels(bgr, w, h, w * 3, PixelOrder.Bgr), model.Config, input);
            var logits = new float[model.Config.NumClasses];
            using (var session = new InferenceSession(model, 1)) session.Run(input, 1, logits);
            top1[f] = names[Array.IndexOf(logits, logits.Max())];
        }
        return (folder, w, h, top1);
    }

    [Fact]
    public void EdgeCamera_is_native_and_classifies_raw_frames_from_a_folder_and_from_stdin()
    {
        string app = EdgeCamera, weights = Fixtures.Path_("deit_fmnist.safetensors");
        Assert.False(File.Exists(Path.ChangeExtension(app, ".dll")), "edgecamera should be a NativeAOT binary, not an apphost with a .dll");
        var model = VitModel.Load(weights);
        var names = ClassNames.Resolve(weights, model.Config.NumClasses).Names;
        var (folder, w, h, top1) = RawFrames(model, names);
        var frameLine = new Regex(@"^(.+): ([0-9.]+)% (.+?), .*\| preprocess [0-9.]+ ms, total [0-9.]+ ms$");

        var (code, stdout, stderr, _) = Processes.Run(app, [weights, folder, "--size", $"{w}x{h}", "--threads", "2"]);
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        for (int f = 0; f < 2; f++)
        {
            var m = frameLine.Match(lines[f]);
            Assert.True(m.Success, lines[f]);
            Assert.Equal($"frame{f}.raw", m.Groups[1].Value);
            Assert.Equal(top1[f], m.Groups[3].Value);
            Assert.Equal(5, lines[f].Split('|')[0].Split('%').Length - 1);   // top-5
        }
        Assert.Matches(@"^2 frames, deit_fmnist, 2 threads: median [0-9.]+ ms per frame", lines[2]);

        string raw = Path.Combine(folder, "frame0.raw");
        (code, stdout, stderr, _) = Processes.Run("sh", ["-c", $"cat '{raw}' '{raw}' | '{app}' '{weights}' - --size {w}x{h}"]);
        Assert.True(code == 0, stderr);
        lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith($"stdin frame 0: ", lines[0]);
        Assert.Equal(top1[0], frameLine.Match(lines[1]).Groups[3].Value);
    }

    [Fact]
    public void EdgeCamera_reports_a_short_frame_and_a_missing_size_in_one_line()
    {
        string app = EdgeCamera, weights = Fixtures.Path_("deit_fmnist.safetensors");
        string folder = Fixtures.TempDir();
        File.WriteAllBytes(Path.Combine(folder, "short.raw"), new byte[100]);
        var (code, stdout, stderr, _) = Processes.Run(app, [weights, folder, "--size", "8x8"]);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Equal($"error: {Path.Combine(folder, "short.raw")}: 100 bytes, but a 8x8 BGR frame is 192", stderr.TrimEnd());
        (code, _, stderr, _) = Processes.Run(app, [weights, folder]);
        Assert.Equal(2, code);
        Assert.Equal($"error: {Path.Combine(folder, "short.raw")}: raw BGR frames need --size WxH", stderr.TrimEnd());
    }
}
