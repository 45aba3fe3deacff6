using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Data;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// The trained reference model (tools/fmnist/train_fmnist.py) on the real Fashion-MNIST test set, which
/// test.sh installs (Debian dataset-fashion-mnist).
/// </summary>
public class FashionMnistTests
{
    const string Data = "/usr/share/datasets/fashion-mnist";
    static string Images => Path.Combine(Data, "t10k-images-idx3-ubyte.gz");
    static string Labels => Path.Combine(Data, "t10k-labels-idx1-ubyte.gz");

    static void RequireDataset() =>
        Assert.True(File.Exists(Images), $"{Images} is missing: install Debian's dataset-fashion-mnist (test.sh does when run as root)");

    static EvalResult Evaluate(ITensorSource weights, VitConfig config, int limit = int.MaxValue)
    {
        using var session = new InferenceSession(VitModel.FromSource(weights, config));
        using var set = new IdxImages(Images, Labels, config, limit);
        return Evaluation.Run(session, set, 64);
    }

    [Fact]
    public void Matches_pytorch_logits_on_sample_images()
    {
        var model = VitModel.Load(Fixtures.Path_("deit_fmnist.safetensors"));
        var x = Fixtures.Npy_("deit_fmnist.sample.input.npy");
        var logits = new float[16 * 10];
        using var s = new InferenceSession(model);
        s.Run(x.Data, 16, logits);
        Fixtures.AssertClose(Fixtures.Npy_("deit_fmnist.sample.logits.npy").Data, logits, 1e-4, "deit_fmnist");
    }

    [Fact]
    public void Reproduces_pytorch_predictions_and_accuracy_on_the_test_set()
    {
        RequireDataset();
        using var file = new SafeTensorsFile(Fixtures.Path_("deit_fmnist.safetensors"));
        var config = VitModel.ReadConfig(file, null);
        var r = Evaluate(new SafeTensorsSource(file), config);
        var torch = Fixtures.Npy_("deit_fmnist.test_pred.npy").Data;
        Assert.Equal(10_000, r.Images);
        int agree = Enumerable.Range(0, r.Images).Count(i => r.Predictions[i] == (int)torch[i]);
        Assert.True(agree >= 9_990, $"{agree} of 10000 predictions agree with PyTorch");
        using var labels = new IdxFile(Labels);
        var truth = new byte[10_000];
        labels.Read(10_000, truth);
        double torchTop1 = Enumerable.Range(0, 10_000).Count(i => (int)torch[i] == truth[i]) / 10_000.0;
        Assert.True(Math.Abs(r.Top1 - torchTop1) <= 0.001, $"VitSparse {r.Top1:P2} vs PyTorch {torchTop1:P2}");
        // The committed model (12 epochs, tools/fmnist/train_log.txt) reaches 89.7 %; issue 5 asks for ≥ 88 %.
        Assert.True(r.Top1 >= 0.88, $"top-1 {r.Top1:P2}");
    }

    [Fact]
    public void Eval_command_reads_the_gzipped_idx_test_set()
    {
        RequireDataset();
        var (code, stdout, err) = Fixtures.Cli("eval", "--weights", Fixtures.Path_("deit_fmnist.safetensors"), "--idx", Images, Labels, "--limit", "500");
        Assert.True(code == 0, err);
        var top1 = System.Text.RegularExpressions.Regex.Match(stdout, @"500 images, top-1 (\d+\.\d\d)%");
        Assert.True(top1.Success, stdout);
        Assert.InRange(double.Parse(top1.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 85, 100);
        Assert.Contains("Shirt", stdout); // class names from the model's metadata, in the confusion summary
    }

    /// <summary>
    /// Without fine-tuning, at half of every head's Q/K pairs removed: a criterion's choice must matter. SNP and
    /// L2 stay within half a point of the dense model (89.64 % and 89.54 % against 89.72 %), random pairs lose
    /// over two points and SNP's reverse ranking most of the accuracy.
    /// </summary>
    [Fact]
    public void Informed_criteria_keep_accuracy_where_random_and_reverse_pairs_lose_it()
    {
        RequireDataset();
        DenseTensors dense;
        using (var f = new SafeTensorsFile(Fixtures.Path_("deit_fmnist.safetensors")))
            dense = DenseTensors.From(new SafeTensorsSource(f), VitModel.ReadConfig(f, null));
        var (calib, count) = IdxImages.ReadImages(Path.Combine(Data, "train-images-idx3-ubyte.gz"), dense.Config, 64);
        var qk = Pruner.CalibrateSnp(dense, calib, count);
        var half = new PruneTarget.Ratios(new RatioSpec(0, Enumerable.Repeat(new BlockRatio(0.5, 0, 0), dense.Config.Depth).ToArray()), "50% Q/K");
        double Top1(Criterion c)
        {
            var (pruned, _) = Pruner.Prune(dense, half, c, qk, count);
            return Evaluate(pruned, pruned.Config).Top1;
        }
        double full = Evaluate(dense, dense.Config).Top1;
        double snp = Top1(Criterion.Snp), l2 = Top1(Criterion.L2), random = Top1(Criterion.Random), reverse = Top1(Criterion.ReverseSnp);
        string all = $"top-1 at 50% Q/K removed: dense {full:P2}, SNP {snp:P2}, L2 {l2:P2}, random {random:P2}, reverse {reverse:P2}";
        Assert.True(full - snp <= 0.005 && full - l2 <= 0.005, all);
        Assert.True(snp - random >= 0.02, all);
        Assert.True(random - reverse >= 0.2, all);
    }
}
