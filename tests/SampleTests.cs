using System.Globalization;
using VitSparse.Runtime;
using VitSparse.Runtime.Images;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>samples/Classify (built with the solution) runs, and answers what the library answers.</summary>
public class SampleTests
{
    static string Sample => Path.Combine(Processes.RepoRoot, "samples", "Classify", "bin", Processes.Configuration, "net10.0", "classify.dll");

    [Fact]
    public void Classify_sample_prints_the_libraries_top5_and_its_timings()
    {
        string model = Fixtures.Path_("deit_fmnist.safetensors"), image = Fixtures.Path_("photo_fruits.png");
        Assert.True(File.Exists(Sample), $"{Sample} is missing: build Runtime.sln");
        var (code, stdout, stderr, _) = Processes.Run("dotnet", [Sample, model, image, "3"]);
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(7, lines.Length);
        Assert.Equal($"{image} (deit_fmnist, class names: model metadata)", lines[0]);
        Assert.Matches(@"^load [0-9.]+ ms, preprocess [0-9.]+ ms, inference median [0-9.]+ ms \(min [0-9.]+, 3 runs, [0-9]+ threads\)$", lines[6]);

        // The same top class and probability as the library computes here.
        var m = VitModel.Load(model);
        var x = new float[m.Config.ImageElements];
        ImageFile.ToTensor(image, m.Config, x);
        var logits = new float[m.Config.NumClasses];
        using (var s = new InferenceSession(m, 1)) s.Run(x, 1, logits);
        System.Numerics.Tensors.TensorPrimitives.SoftMax(logits, logits);
        int top = Array.IndexOf(logits, logits.Max());
        var names = ClassNames.Resolve(model, m.Config.NumClasses).Names;
        Assert.Equal($"  {(logits[top] * 100).ToString("0.00", CultureInfo.InvariantCulture),6}%  {names[top]}", lines[1]);
    }

    [Fact]
    public void Classify_sample_reports_a_bad_input_as_one_line()
    {
        Assert.True(File.Exists(Sample), $"{Sample} is missing: build Runtime.sln");
        var (code, _, stderr, _) = Processes.Run("dotnet", [Sample, Fixtures.Path_("deit_fmnist.safetensors"), Fixtures.Path_("nothing.png")]);
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", stderr);
        Assert.Contains("nothing.png", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [Theory]
    [InlineData("VitSparse.Runtime", "M:VitSparse.Runtime.InferenceSession.Run(")]
    [InlineData("VitSparse.Runtime", "M:VitSparse.Runtime.Images.ImageFile.FromPixels(")]
    [InlineData("VitSparse.Pruning", "M:VitSparse.Pruning.Pruner.Prune(")]
    public void The_public_api_ships_its_xml_documentation(string assembly, string member)
    {
        string xml = Path.Combine(AppContext.BaseDirectory, assembly + ".xml");
        Assert.True(File.Exists(xml), $"{xml} is missing: GenerateDocumentationFile is off");
        var doc = System.Xml.Linq.XDocument.Load(xml);
        // Every overload of the member is documented.
        var overloads = doc.Descendants("member").Where(m => ((string)m.Attribute("name")!).StartsWith(member, StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(overloads);
        foreach (var m in overloads)
            Assert.False(string.IsNullOrWhiteSpace(m.Element("summary")?.Value), (string)m.Attribute("name")!);
    }
}
