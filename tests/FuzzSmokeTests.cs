using VitSparse.Fuzz;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// The CI smoke of issue 17: every parser gets a bounded number of seeded mutations of its seed corpus
/// (tests/fixtures/fuzz/seeds and small fixtures). An exception that is not ours, an input over 1 s or an
/// allocation over the target's budget fails the test, naming the reproducer written to the temp folder.
/// VITSPARSE_FUZZ_EXECS and VITSPARSE_FUZZ_SEED change the count and the seed (longer campaigns: the
/// `fuzz` console, see fuzz/Program.cs).
/// </summary>
[Trait("Category", "Fuzz")]
public class FuzzSmokeTests
{
    const int DefaultExecutions = 3000, DefaultSeed = 17;

    public static TheoryData<string> TargetNames => new(Targets.All.Select(t => t.Name));

    static int Env(string name, int fallback) => int.TryParse(Environment.GetEnvironmentVariable(name), out int v) ? v : fallback;

    [Theory]
    [MemberData(nameof(TargetNames))]
    public void Seeded_mutations_are_refused_with_our_errors_quickly_and_in_bounded_memory(string target)
    {
        string outDir = Path.Combine(Path.GetTempPath(), "vitsparse-fuzz", "smoke");
        var result = Campaign.Run(Targets.Get(target), Fixtures.Dir, Env("VITSPARSE_FUZZ_EXECS", DefaultExecutions), Env("VITSPARSE_FUZZ_SEED", DefaultSeed), outDir);
        Assert.True(result.Failures.Count == 0,
            $"{result.Summary}\n{string.Join("\n", result.Failures)}\nreplay one with: dotnet fuzz/bin/Release/net10.0/fuzz.dll --replay {target} FILE");
    }

    [Fact]
    public void The_harness_reports_an_exception_that_is_not_ours_with_its_reproducer()
    {
        var crashing = new FuzzTarget("crash", ".bin", InputKind.Binary, [Path.Combine("fuzz", "seeds", "idx_labels.idx")],
            (path, _) => { if (File.ReadAllBytes(path).Length != 11) throw new IndexOutOfRangeException("boom"); });
        var result = Campaign.Run(crashing, Fixtures.Dir, 50, 1, Fixtures.TempDir());
        var failure = Assert.Single(result.Failures);
        Assert.StartsWith("IndexOutOfRangeException", failure.Signature);
        Assert.True(File.Exists(failure.Reproducer));
        Assert.NotEqual(11, File.ReadAllBytes(failure.Reproducer).Length);
    }

    [Fact]
    public void The_harness_reports_slow_inputs_and_allocations_over_budget()
    {
        string seed = Path.Combine("fuzz", "seeds", "idx_labels.idx");
        var slow = new FuzzTarget("slow", ".bin", InputKind.Binary, [seed], (_, _) => Thread.Sleep(1100));
        Assert.Equal("slow", Assert.Single(Campaign.Run(slow, Fixtures.Dir, 1, 1, Fixtures.TempDir()).Failures).Signature);
        var hungry = new FuzzTarget("hungry", ".bin", InputKind.Binary, [seed], (_, _) => GC.KeepAlive(new byte[2 << 20])) { AllocationBudget = 1 << 20 };
        Assert.Equal("memory", Assert.Single(Campaign.Run(hungry, Fixtures.Dir, 1, 1, Fixtures.TempDir()).Failures).Signature);
    }

    [Fact]
    public void A_seed_that_is_refused_fails_the_campaign()
    {
        var refusing = new FuzzTarget("refusing", ".bin", InputKind.Binary, [Path.Combine("fuzz", "seeds", "idx_labels.idx")],
            (path, _) => throw new VitSparse.Runtime.FileFormatException(path, "refused"));
        var failure = Assert.Single(Campaign.Run(refusing, Fixtures.Dir, 20, 1, Fixtures.TempDir()).Failures);
        Assert.Equal("seed refused: fuzz/seeds/idx_labels.idx", failure.Signature);
    }

    [Fact]
    public void Mutations_are_deterministic_for_a_seed()
    {
        var input = File.ReadAllBytes(Fixtures.Path_("writer_sample.safetensors"));
        byte[][] Run(int seed)
        {
            var m = new Mutator(new Random(seed));
            return Enumerable.Range(0, 50).Select(_ => m.Mutate(input, InputKind.SafeTensors, [input])).ToArray();
        }
        Assert.Equal(Run(5), Run(5));
        Assert.NotEqual(Run(5), Run(6));
    }
}
