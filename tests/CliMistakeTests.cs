using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using VitSparse.Runtime.Formats;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// The mistakes a newcomer makes (issue 20): each is one line on stderr, exit code 2, before any work, and
/// leaves no output file.
/// </summary>
public class CliMistakeTests
{
    static readonly string Tiny = Fixtures.Path_("ragged_tiny.safetensors"), TinyInput = Fixtures.Path_("ragged_tiny.input.npy");

    /// <summary>Runs the command and checks the error contract: exit 2, exactly one line, "error: " first; returns that line.</summary>
    static string Fails(params string[] args)
    {
        var (code, _, err) = Fixtures.Cli(args);
        Assert.True(code == 2, $"exit {code}: {err}");
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, err);
        Assert.StartsWith("error: ", lines[0]);
        return lines[0];
    }

    [Theory]
    [InlineData("eval", "0")]
    [InlineData("eval", "-1")]
    [InlineData("prune", "0")]
    [InlineData("prune", "-1")]
    [InlineData("fidelity", "0")]
    [InlineData("infer", "-1")]
    public void Thread_counts_below_one_are_refused_by_every_command(string command, string threads)
    {
        string dir = Fixtures.TempDir();
        string[] args = command switch
        {
            "eval" => ["eval", "--weights", Tiny, "--npy", TinyInput, TinyInput],
            "prune" => ["prune", "--weights", Tiny, "--macs", "0.001G", "--calib", "seeded", "-o", Path.Combine(dir, "p.safetensors")],
            "fidelity" => ["fidelity", "--weights", Tiny, "--calib", "seeded"],
            _ => ["infer", "--weights", Tiny, "--input", TinyInput, "--output", Path.Combine(dir, "y.npy")],
        };
        Assert.Equal($"error: --threads: must be at least 1, got {threads}", Fails([.. args, "--threads", threads]));
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public void Parse_errors_are_one_line_naming_the_option_with_a_suggestion()
    {
        Assert.Equal("error: --thread: unknown option of 'vitsparse eval' (did you mean --threads?); see 'vitsparse eval --help'",
            Fails("eval", "--weights", Tiny, "--npy", TinyInput, TinyInput, "--thread", "2"));
        // --input takes several values, so a misspelt option after it is caught too.
        Assert.Contains("--outptu: unknown option of 'vitsparse infer' (did you mean --output?)", Fails("infer", "--weights", Tiny, "--input", TinyInput, "--outptu", "y.npy"));
        Assert.Contains("'infr' is not a command (did you mean infer?)", Fails("infr"));
        Assert.Equal("error: --threads: 'two' is not a whole number", Fails("infer", "--weights", Tiny, "--input", TinyInput, "--threads", "two"));
        Assert.StartsWith("error: --input: is required", Fails("infer", "--weights", Tiny));
        Assert.Equal("error: --weights: needs a value", Fails("infer", "--input", TinyInput, "--weights"));
        Assert.StartsWith("error: give a command: infer, inspect", Fails());
        Assert.Equal("error: weights: is required; see 'vitsparse inspect --help'", Fails("inspect"));
        Assert.Equal("error: 'extra': unexpected argument of 'vitsparse inspect'; see 'vitsparse inspect --help'", Fails("inspect", Tiny, "extra"));
        var (code, help, _) = Fixtures.Cli("infer", "--help");
        Assert.Equal(0, code);
        Assert.Contains("--threads", help);
    }

    [Fact]
    public void Output_paths_are_checked_before_the_work_and_outputs_are_written_together()
    {
        string dir = Fixtures.TempDir();
        string model = Path.Combine(dir, "p.safetensors");
        // A deit_s prune with SNP calibration takes tens of seconds; a bad path must fail before it starts.
        var sw = Stopwatch.StartNew();
        Assert.Equal($"error: --output: {Path.Combine(dir, "missing", "p.safetensors")}: directory '{Path.Combine(dir, "missing")}' does not exist",
            Fails("prune", "--weights", "seeded:deit_s", "--target", "deit_s_2.0g", "--calib", "seeded", "-o", Path.Combine(dir, "missing", "p.safetensors")));
        Assert.Contains("/proc' is not writable", Fails("prune", "--weights", "seeded:deit_s", "--target", "deit_s_2.0g", "--calib", "seeded", "-o", "/proc/p.safetensors"));
        Assert.True(sw.Elapsed.TotalSeconds < 4, $"{sw.Elapsed.TotalSeconds:0.0} s");
        // The report's directory is missing: neither the model nor the report is written.
        Assert.StartsWith("error: --report: ", Fails("prune", "--weights", Tiny, "--macs", "0.001G", "--criterion", "l2", "-o", model, "--report", Path.Combine(dir, "missing", "r.json")));
        Assert.Contains("is also given to --output", Fails("prune", "--weights", Tiny, "--macs", "0.001G", "--criterion", "l2", "-o", model, "--report", model));
        Assert.Contains("is a directory; give a file name", Fails("infer", "--weights", Tiny, "--input", TinyInput, "--output", dir));
        Assert.StartsWith("error: --json: ", Fails("eval", "--weights", Tiny, "--npy", TinyInput, TinyInput, "--json", Path.Combine(dir, "no", "e.json")));
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    [Fact]
    public void Names_are_checked_against_what_the_option_takes()
    {
        string dir = Fixtures.TempDir(), output = Path.Combine(dir, "y.npy");
        // Ignored before, because the file carries its architecture.
        Assert.StartsWith("error: --arch: unknown architecture 'bogus'", Fails("infer", "--weights", Tiny, "--input", TinyInput, "--output", output, "--arch", "bogus"));
        Assert.StartsWith("error: --target: unknown architecture 'deit_s_2.0gg' (did you mean deit_s_2.0g?)",
            Fails("prune", "--weights", Tiny, "--target", "deit_s_2.0gg", "--criterion", "l2", "-o", Path.Combine(dir, "p.safetensors")));
        Assert.StartsWith("error: --criterion: 'l3' is not one of snp, l2, gm, random, reverse (did you mean l2?)",
            Fails("prune", "--weights", Tiny, "--macs", "1G", "--criterion", "l3", "-o", Path.Combine(dir, "p.safetensors")));
        Assert.Equal("error: --nonfinite: 'refuze' is not one of refuse, warn, allow (did you mean refuse?)",
            Fails("infer", "--weights", Tiny, "--input", TinyInput, "--output", output, "--nonfinite", "refuze"));
        Assert.Equal("error: --uneven-heads: only applies with --macs",
            Fails("prune", "--weights", Tiny, "--ratios", TinyInput, "--uneven-heads", "--criterion", "l2", "-o", Path.Combine(dir, "p.safetensors")));
        Assert.Equal("error: --arch: seeded weights take their architecture from --weights seeded:deit_t; leave out --arch",
            Fails("infer", "--weights", "seeded:deit_t", "--arch", "deit_s", "--input", TinyInput, "--output", output));
        Assert.StartsWith("error: weights: unknown architecture 'deit_q'", Fails("inspect", "seeded:deit_q"));
        Assert.Equal("error: --labels: only applies with --data", Fails("eval", "--weights", Tiny, "--npy", TinyInput, TinyInput, "--labels", TinyInput));
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public void Input_paths_say_what_is_wrong_with_them()
    {
        string dir = Fixtures.TempDir();
        Assert.Equal($"error: --weights: {dir} is a directory, not a file", Fails("infer", "--weights", dir, "--input", TinyInput, "--output", Path.Combine(dir, "y.npy")));
        Assert.Equal($"error: --input: {dir}/none.png: file not found", Fails("infer", "--weights", Tiny, "--input", Path.Combine(dir, "none.png")));
        Assert.Equal($"error: --calib: {dir}/none.npy: no such file or directory",
            Fails("prune", "--weights", Tiny, "--macs", "1G", "--calib", Path.Combine(dir, "none.npy"), "-o", Path.Combine(dir, "p.safetensors")));
        Assert.Equal($"error: --data: {dir}/none: directory not found", Fails("eval", "--weights", Tiny, "--data", Path.Combine(dir, "none")));
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public void A_write_error_names_the_users_path_not_a_temporary_file()
    {
        string dir = Fixtures.TempDir(), target = Path.Combine(dir, "y.npy");
        var e = Assert.Throws<VitSparse.Runtime.OutputException>(() => AtomicFile.Write(target, _ => throw new IOException("No space left on device")));
        Assert.Equal($"{target}: cannot write: No space left on device", e.Message);
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public void Non_finite_inputs_are_refused_by_default_with_no_output()
    {
        string dir = Fixtures.TempDir(), input = Path.Combine(dir, "x.npy"), output = Path.Combine(dir, "y.npy");
        var x = Fixtures.Npy_("ragged_tiny.input.npy");
        x.Data[3 * 32 * 32 + 5] = float.NaN;
        x.Data[7] = float.PositiveInfinity;
        Npy.Write(input, x.Shape, x.Data);
        Assert.Equal($"error: --input: {input} has 2 NaN/Inf values (first at flat index 7); refusing to run on it (allow with --nonfinite warn or allow)",
            Fails("infer", "--weights", Tiny, "--input", input, "--output", output));
        Assert.False(File.Exists(output));
        Assert.StartsWith("error: --npy: ", Fails("eval", "--weights", Tiny, "--npy", input, TinyInput));
        Assert.StartsWith("error: --calib: ", Fails("prune", "--weights", Tiny, "--macs", "0.001G", "--calib", input, "-o", Path.Combine(dir, "p.safetensors")));
        Assert.Equal(new[] { "x.npy" }, Directory.GetFiles(dir).Select(Path.GetFileName));
        var (code, _, err) = Fixtures.Cli("infer", "--weights", Tiny, "--input", input, "--output", output, "--nonfinite", "warn");
        Assert.Equal(0, code);
        Assert.StartsWith("warning: --input: ", err);
        Assert.True(File.Exists(output));
    }

    /// <summary>A 1-D .npy of integers in the given little-endian dtype, as NumPy writes it.</summary>
    internal static void WriteIntegers(string path, string descr, long[] values)
    {
        int size = descr[^1] - '0';
        string dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({values.Length},), }}";
        string header = dict + new string(' ', (64 - (10 + dict.Length + 1) % 64) % 64) + "\n";
        var bytes = new byte[10 + header.Length + size * values.Length];
        new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y' }.CopyTo(bytes, 0);
        bytes[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), (ushort)header.Length);
        Encoding.Latin1.GetBytes(header, bytes.AsSpan(10));
        for (int i = 0; i < values.Length; i++)
        {
            var d = bytes.AsSpan(10 + header.Length + i * size);
            if (size == 8) BinaryPrimitives.WriteInt64LittleEndian(d, values[i]);
            else if (size == 4) BinaryPrimitives.WriteInt32LittleEndian(d, (int)values[i]);
            else d[0] = (byte)values[i];
        }
        File.WriteAllBytes(path, bytes);
    }

    [Theory]
    [InlineData("<i8")]
    [InlineData("<i4")]
    [InlineData("|u1")]
    public void Eval_takes_integer_labels_as_numpy_saves_them(string dtype)
    {
        string dir = Fixtures.TempDir(), y = Path.Combine(dir, "y.npy");
        var golden = Fixtures.Npy_("ragged_tiny.logits.npy").Data;
        var labels = Enumerable.Range(0, 3).Select(i => (long)(Array.IndexOf(golden, golden.AsSpan(i * 10, 10).ToArray().Max(), i * 10) % 10)).ToArray();
        WriteIntegers(y, dtype, labels);
        var (code, stdout, err) = Fixtures.Cli("eval", "--weights", Tiny, "--npy", TinyInput, y);
        Assert.True(code == 0, err);
        Assert.Contains("3 images, top-1 100.00%", stdout);
        // A wrong label costs accuracy: the labels are really read.
        labels[0] = (labels[0] + 1) % 10;
        WriteIntegers(y, dtype, labels);
        Assert.Contains("3 images, top-1 66.67%", Fixtures.Cli("eval", "--weights", Tiny, "--npy", TinyInput, y).Out);
        WriteIntegers(y, dtype, [1, 2, 10]);
        Assert.Equal($"error: {y}: label 10 at 2 is not a class index below 10", Fails("eval", "--weights", Tiny, "--npy", TinyInput, y));
    }

    [Fact]
    public void Outputs_of_one_command_are_written_together_or_not_at_all()
    {
        string dir = Fixtures.TempDir(), model = Path.Combine(dir, "m.safetensors"), report = Path.Combine(dir, "r.json");
        using (var outputs = new VitSparse.Cli.Outputs())
        {
            outputs.Add("--output", model);
            outputs.Add("--report", report);
            outputs.Stage(model, path => File.WriteAllText(path, "model"));
            var e = Assert.Throws<VitSparse.Runtime.OutputException>(() =>
                outputs.Stage(report, path => AtomicFile.Write(path, _ => throw new IOException($"disk full writing {path}"))));
            Assert.StartsWith($"{report}: cannot write: disk full writing ", e.Message);
            Assert.DoesNotContain(".tmp", e.Message);
        }
        Assert.Empty(Directory.GetFileSystemEntries(dir));   // the staged model is gone with the failed report
        using (var outputs = new VitSparse.Cli.Outputs())
        {
            outputs.Stage(model, path => File.WriteAllText(path, "model"));
            outputs.Stage(report, path => File.WriteAllText(path, "report"));
            Assert.Equal(2, Directory.GetFiles(dir).Length);
            Assert.False(File.Exists(model));
            outputs.Commit();
        }
        Assert.Equal("model", File.ReadAllText(model));
        Assert.Equal("report", File.ReadAllText(report));
        Assert.Equal(2, Directory.GetFileSystemEntries(dir).Length);
    }
}
