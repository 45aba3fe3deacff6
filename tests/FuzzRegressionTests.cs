using VitSparse.Fuzz;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// Every input the fuzzer found (tests/fixtures/fuzz/found/TARGET__what-it-does.EXT, minimised) stays fixed:
/// refused with our error (or accepted), within 1 s and the target's allocation budget.
/// </summary>
[Trait("Category", "Fuzz")]
public class FuzzRegressionTests
{
    static string FoundDir => Fixtures.Path_(Path.Combine("fuzz", "found"));

    public static TheoryData<string> Found => new(Directory.Exists(FoundDir)
        ? Directory.GetFiles(FoundDir).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal)
        : []);

    [Theory]
    [MemberData(nameof(Found))]
    public void A_found_input_is_handled(string file)
    {
        string target = file[..file.IndexOf("__", StringComparison.Ordinal)];
        var (signature, problem, _, _, _) = Campaign.Try(Targets.Get(target), Path.Combine(FoundDir, file), Fixtures.TempDir());
        Assert.True(signature == null, $"{file}: {signature}\n{problem}");
    }
}
