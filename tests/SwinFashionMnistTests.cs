using VitSparse.Pruning;
using VitSparse.Runtime;
using VitSparse.Runtime.Data;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// The trained small Swin (tools/swin_fmnist/swin_fmnist.py, log in tools/swin_fmnist/train_log.txt) on the real
/// Fashion-MNIST test set, which test.sh installs (Debian dataset-fashion-mnist). Accuracy is checked on the first
/// <see cref="Subset"/> test images to keep the run short; the script's reference predictions cover all 10 000.
/// </summary>
public class SwinFashionMnistTests
{
    const string Data = "/usr/share/datasets/fashion-mnist";
    const int Subset = 2000;
    /// <summary>PyTorch's top-1 of the stored F16 fixture on all 10 000 test images (train_log.txt, last line).</summary>
    const double TrainedTop1 = 0.8842;
    /// <summary>PyTorch's top-1 of the stored F16 fixture on the first <see cref="Subset"/> (swin_fmnist.py reference).</summary>
    const double SubsetTop1 = 0.8880;
    static string Images => Path.Combine(Data, "t10k-images-idx3-ubyte.gz");
    static string Labels => Path.Combine(Data, "t10k-labels-idx1-ubyte.gz");
    static string Model => Fixtures.Path_("swin_fmnist.safetensors");

    static void RequireDataset() =>
        Assert.True(File.Exists(Images), $"{Images} is missing: install Debian's dataset-fashion-mnist (test.sh does when run as root)");

    static EvalResult Evaluate(SwinModel model, int limit = Subset)
    {
        using var session = new SwinSession(model);
        using var set = new IdxImages(Images, Labels, model.Config, limit);
        return Evaluation.Run(session, set, 100);
    }

    static byte[] TrueLabels(int count)
    {
        using var labels = new IdxFile(Labels);
        var truth = new byte[count];
        labels.Read(count, truth);
        return truth;
    }

    /// <summary>
    /// Top-1 on the first <paramref name="limit"/> test images after pruning <paramref name="prunableFraction"/> of the
    /// prunable weights (QKV-M, PRJ-M, MLP-M) without fine-tuning; the plan takes a fraction of all parameters.
    /// </summary>
    static double PrunedTop1(DimapMethod method, double prunableFraction, int limit)
    {
        SwinTensors dense;
        using (var f = new SafeTensorsFile(Model))
            dense = SwinTensors.From(new SafeTensorsSource(f), SwinFile.ReadConfig(f, null));
        var ranking = DimapRanking.Rank(dense.Tensors, method, Granularity.Unstructured);
        var plan = ranking.Plan(prunableFraction * ranking.PrunableParams / ranking.TotalParams);
        Assert.Equal((long)Math.Round(prunableFraction * ranking.PrunableParams), plan.Removed);
        var (pruned, _) = ranking.Apply(dense.Tensors, plan);
        return Evaluate(SwinModel.FromSource(new SwinTensors(dense.Config, pruned), dense.Config), limit).Top1;
    }

    [Fact]
    public void Matches_pytorch_logits_on_sample_images()
    {
        var x = Fixtures.Npy_("swin_fmnist.sample.input.npy");
        var logits = new float[16 * 10];
        using var s = new SwinSession(SwinModel.Load(Model));
        s.Run(x.Data, 16, logits);
        Fixtures.AssertClose(Fixtures.Npy_("swin_fmnist.sample.logits.npy").Data, logits, 1e-4, "swin_fmnist");
    }

    [Fact]
    public void Reproduces_pytorch_predictions_and_accuracy_on_a_test_subset()
    {
        RequireDataset();
        var r = Evaluate(SwinModel.Load(Model));
        var torch = Fixtures.Npy_("swin_fmnist.test_pred.npy").Data;
        var truth = TrueLabels(10_000);
        Assert.Equal(Subset, r.Images);
        int agree = Enumerable.Range(0, Subset).Count(i => r.Predictions[i] == (int)torch[i]);
        Assert.True(agree >= Subset - 4, $"{agree} of {Subset} predictions agree with PyTorch");
        double torchSubset = Enumerable.Range(0, Subset).Count(i => (int)torch[i] == truth[i]) / (double)Subset;
        double torchAll = Enumerable.Range(0, 10_000).Count(i => (int)torch[i] == truth[i]) / 10_000.0;
        Assert.True(Math.Abs(r.Top1 - torchSubset) <= 0.002, $"VitSparse {r.Top1:P2} vs PyTorch {torchSubset:P2} on the first {Subset}");
        // The committed model's 10k top-1 as the script measured it (train_log.txt); issue 12 asks for ≥ 88 %.
        Assert.True(torchAll >= TrainedTop1 - 0.0005, $"PyTorch's predictions of the fixture: {torchAll:P2}, the training log says {TrainedTop1:P2}");
        Assert.True(r.Top1 >= SubsetTop1 - 0.002, $"top-1 on the first {Subset}: {r.Top1:P2}, PyTorch measured {SubsetTop1:P2}");
    }

    /// <summary>
    /// DIMAP without fine-tuning at 30 % of the prunable weights removed: the plan removes exactly that many, and the
    /// model keeps its accuracy (10k images: 88.22 % against 88.42 % dense; tools/swin_fmnist/prune_accuracy.sh).
    /// Magnitude (88.33 %) and the single-module variant (88.21 %) are within 12 images of it there, so their order
    /// is not asserted; README "DIMAP accuracy" has the table.
    /// </summary>
    [Fact]
    public void Dimap_at_30_percent_of_prunable_weights_keeps_accuracy()
    {
        RequireDataset();
        double top1 = PrunedTop1(DimapMethod.Dimap, 0.3, Subset);
        Assert.True(top1 >= SubsetTop1 - 0.01, $"DIMAP 30 %: top-1 {top1:P2} on the first {Subset}, dense {SubsetTop1:P2}");
    }
}
