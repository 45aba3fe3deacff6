using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

public class ClassNamesTests
{
    static readonly string[] FashionNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>A 1000-class model small enough to save per test: 32×32 images, one block of width 8.</summary>
    static string ThousandClassModel(string dir)
    {
        var config = VitConfig.Uniform("tiny_1k", 8, 1, 1, classes: 1000, imageSize: 32, patchSize: 16);
        string path = Path.Combine(dir, "tiny_1k.safetensors");
        VitModel.Save(path, config, new SeededWeights(config));
        return path;
    }

    static string HalfQk()
    {
        string path = Path.Combine(Fixtures.TempDir(), "ratios.json");
        File.WriteAllText(path, """{"default": {"qk": 0.5}}""");
        return path;
    }

    [Fact]
    public void Names_file_is_one_class_per_line_and_keeps_the_first_wordnet_name()
    {
        string dir = Fixtures.TempDir(), file = Path.Combine(dir, "names.txt");
        File.WriteAllLines(file, ["tench, Tinca tinca", "  goldfish ", "great white shark, white shark", "", ""]);
        Assert.Equal(["tench", "goldfish", "great white shark"], ClassNames.FromFile(file, 3));

        var e = Assert.Throws<FileFormatException>(() => ClassNames.FromFile(file, 4));
        Assert.Equal(file, e.File);
        Assert.Contains("has 3 class names, the model 4 classes", e.Message);
        File.WriteAllLines(file, ["tench", " , x", "goldfish"]);
        Assert.Contains("line 2 is empty", Assert.Throws<FileFormatException>(() => ClassNames.FromFile(file, 3)).Message);
        Assert.Contains("not found", Assert.Throws<FileFormatException>(() => ClassNames.FromFile(Path.Combine(dir, "none.txt"), 3)).Message);
    }

    [Fact]
    public void A_thousand_class_model_without_names_gets_the_imagenet_list()
    {
        string dir = Fixtures.TempDir();
        string model = ThousandClassModel(dir), list = Path.Combine(dir, "ilsvrc.txt");
        File.WriteAllLines(list, Enumerable.Range(0, 1000).Select(i => $"class{i}, synonym{i}"));
        var (names, origin) = ClassNames.Resolve(model, 1000, imageNetList: list);
        Assert.Equal(list, origin);
        Assert.Equal("class0", names[0]);
        Assert.Equal("class999", names[999]);
        // No list installed: indices, never a guess.
        (names, origin) = ClassNames.Resolve(model, 1000, imageNetList: Path.Combine(dir, "absent.txt"));
        Assert.Equal("class indices", origin);
        Assert.Equal("999", names[999]);
        // The list only applies to 1000 outputs; a 10-class model without metadata shows indices.
        Assert.Equal("class indices", ClassNames.Resolve(Fixtures.Path_("ragged_tiny.safetensors"), 10, imageNetList: list).Origin);
    }

    [Fact]
    public void Debian_opencv_doc_list_when_installed_is_the_imagenet_order()
    {
        // opencv-doc (95 MB) is not a test dependency; where it is installed, its list must parse as ImageNet-1k.
        if (!File.Exists(ClassNames.DebianImageNetList)) return;
        var names = ClassNames.FromFile(ClassNames.DebianImageNetList, 1000);
        Assert.Equal("tench", names[0]);
        Assert.Equal("goldfish", names[1]);
        Assert.Equal("toilet tissue", names[999]);
    }

    [Fact]
    public void Infer_takes_a_names_file_and_refuses_one_of_the_wrong_length()
    {
        string dir = Fixtures.TempDir();
        string model = ThousandClassModel(dir), names = Path.Combine(dir, "names.txt");
        File.WriteAllLines(names, Enumerable.Range(0, 1000).Select(i => $"thing {i}"));
        var (code, stdout, err) = Fixtures.Cli("infer", "--weights", model, "--input", Fixtures.Path_("photo_chicky.png"), "--classes", names);
        Assert.True(code == 0, err);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal($"class names: {names}", lines[0]);
        Assert.All(lines[2..7], l => Assert.Matches(@"%  thing \d+$", l));

        File.WriteAllLines(names, ["one", "two"]);
        (code, _, err) = Fixtures.Cli("infer", "--weights", model, "--input", Fixtures.Path_("photo_chicky.png"), "--classes", names);
        Assert.Equal(2, code);
        Assert.Contains($"{names}: has 2 class names, the model 1000 classes", err);
    }

    [Fact]
    public void Pruned_model_keeps_the_class_names_of_the_dense_one()
    {
        string output = Path.Combine(Fixtures.TempDir(), "pruned.safetensors");
        var (code, _, err) = Fixtures.Cli("prune", "--weights", Fixtures.Path_("deit_fmnist.safetensors"), "--ratios", HalfQk(),
            "--criterion", "l2", "-o", output);
        Assert.True(code == 0, err);
        using (var f = new SafeTensorsFile(output))
            Assert.Equal(FashionNames, ClassNames.FromMetadata(f, 10));
        (code, var stdout, err) = Fixtures.Cli("infer", "--weights", output, "--input", Fixtures.Path_("photo_chicky.png"));
        Assert.True(code == 0, err);
        Assert.Contains("class names: model metadata", stdout);
    }

    [Fact]
    public void Broken_names_metadata_is_an_error_naming_the_file()
    {
        var config = VitConfig.Uniform("tiny", 8, 1, 1, classes: 3, imageSize: 32, patchSize: 16);
        Assert.Throws<InputException>(() => VitModel.Save(Path.Combine(Fixtures.TempDir(), "x.safetensors"), config, new SeededWeights(config), classNames: ["a"]));
        string path = Path.Combine(Fixtures.TempDir(), "m.safetensors");
        var tensors = VitLayout.ExpectedShapes(config).Select(kv => new TensorToWrite(kv.Key, kv.Value, new SeededWeights(config).Floats(kv.Key).ToArray(), DType.F32)).ToList();
        SafeTensorsWriter.Write(path, tensors, new Dictionary<string, string> { [VitConfig.MetadataKey] = config.ToJson(), [ClassNames.MetadataKey] = "[\"a\", 3" });
        var e = Assert.Throws<FileFormatException>(() => ClassNames.Resolve(path, 3));
        Assert.Equal(path, e.File);
        Assert.Contains("'classes'", e.Message);
    }

    [Fact]
    public void Image_size_limit_is_a_cli_option_for_infer_eval_and_prune()
    {
        string photo = Fixtures.Path_("photo_baboon.png"); // 150×240
        var (code, _, err) = Fixtures.Cli("infer", "--weights", Fixtures.Path_("deit_fmnist.safetensors"), "--input", photo, "--max-image-side", "200");
        Assert.Equal(2, code);
        Assert.Contains($"{photo}: PNG is 150×240, above the 200×200 limit", err);
        (code, _, err) = Fixtures.Cli("infer", "--weights", Fixtures.Path_("deit_fmnist.safetensors"), "--input", photo, "--max-image-side", "240");
        Assert.True(code == 0, err);
        (code, _, err) = Fixtures.Cli("infer", "--weights", Fixtures.Path_("deit_fmnist.safetensors"), "--input", photo, "--max-image-side", "0");
        Assert.Equal(2, code);
        Assert.Contains("--max-image-side: must be at least 1, got 0", err);

        string dir = Fixtures.TempDir();
        Directory.CreateDirectory(Path.Combine(dir, "a"));
        File.Copy(photo, Path.Combine(dir, "a", "big.png"));
        File.Copy(Fixtures.Path_("photo_chicky.png"), Path.Combine(dir, "a", "small.png"));
        (code, var stdout, err) = Fixtures.Cli("eval", "--weights", Fixtures.Path_("deit_fmnist.safetensors"), "--data", dir, "--max-image-side", "100", "--skip-bad");
        Assert.True(code == 0, err);
        Assert.Contains("big.png: PNG is 150×240, above the 100×100 limit", err);
        Assert.Contains(": 1 images, top-1", stdout);
        (code, _, err) = Fixtures.Cli("prune", "--weights", Fixtures.Path_("deit_fmnist.safetensors"), "--ratios", HalfQk(),
            "--calib", dir, "--max-image-side", "100", "-o", Path.Combine(dir, "p.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("big.png: PNG is 150×240, above the 100×100 limit", err);
    }
}
