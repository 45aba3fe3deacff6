using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>Logits against PyTorch goldens written by tools/reference/make_fixtures.py.</summary>
public class ParityTests
{
    public static TheoryData<string, SimdWidth, int> Cases()
    {
        var d = new TheoryData<string, SimdWidth, int>();
        foreach (var name in new[] { "ragged_tiny", "ragged_distilled_bf16", "timm_uniform_f16" })
            foreach (var w in new[] { SimdWidth.V512, SimdWidth.V256, SimdWidth.V128 })
                foreach (int t in new[] { 1, 2 })
                    d.Add(name, w, t);
        return d;
    }

    [Theory, MemberData(nameof(Cases))]
    public void Logits_match_pytorch(string name, SimdWidth width, int threads)
    {
        var model = VitModel.Load(Fixtures.Path_(name + ".safetensors"), new LoadOptions { Simd = width });
        var input = Fixtures.Npy_(name + ".input.npy");
        var golden = Fixtures.Npy_(name + ".logits.npy");
        int batch = input.Shape[0];
        var logits = new float[batch * model.Config.NumClasses];
        using var session = new InferenceSession(model, threads);
        session.Run(input.Data, batch, logits);
        Fixtures.AssertClose(golden.Data, logits, 1e-4, name);
    }

    [Fact]
    public void Ragged_fixture_keeps_its_uneven_widths()
    {
        var model = VitModel.Load(Fixtures.Path_("ragged_tiny.safetensors"));
        Assert.Equal(new[] { 5, 9, 13 }, model.Config.Blocks[0].QkWidths);
        Assert.Equal(new[] { 7, 4, 11 }, model.Config.Blocks[0].VWidths);
        Assert.Equal(2, model.Config.Blocks[1].Heads);
        Assert.Equal(0.2f, model.Config.Blocks[1].AttnScale);
    }

    [Fact]
    public void Plain_timm_checkpoint_gets_uniform_widths_inferred()
    {
        var model = VitModel.Load(Fixtures.Path_("timm_uniform_f16.safetensors"));
        var c = model.Config;
        Assert.Equal((128, 32, 8, 5, 2), (c.EmbedDim, c.ImageSize, c.PatchSize, c.NumClasses, c.Depth));
        Assert.All(c.Blocks, b => Assert.Equal(new[] { 64, 64 }, b.QkWidths));
        Assert.All(c.Blocks, b => Assert.Equal(0.125f, b.AttnScale));
    }

    [Fact]
    public void Full_size_deit_small_with_seeded_weights_matches_pytorch()
    {
        var config = Architectures.Get("deit_s");
        var model = VitModel.FromSource(new SeededWeights(config), config);
        var input = new float[config.ImageElements];
        SeededWeights.FillInput(input);
        var logits = new float[config.NumClasses];
        using var session = new InferenceSession(model);
        session.Run(input, 1, logits);
        Fixtures.AssertClose(Fixtures.Npy_("deit_small_seeded.logits.npy").Data, logits, 1e-4, "deit_small");
    }

    [Fact]
    public void Batch_of_images_equals_images_one_by_one()
    {
        var model = VitModel.Load(Fixtures.Path_("ragged_tiny.safetensors"));
        var input = Fixtures.Npy_("ragged_tiny.input.npy");
        int k = model.Config.NumClasses, per = model.Config.ImageElements;
        using var session = new InferenceSession(model, 2);
        var batched = new float[3 * k];
        session.Run(input.Data, 3, batched);
        for (int i = 0; i < 3; i++)
        {
            var one = new float[k];
            session.Run(input.Data.AsSpan(i * per, per), 1, one);
            Assert.Equal(batched.AsSpan(i * k, k).ToArray(), one);
        }
    }

    [Fact]
    public void Results_are_bit_identical_for_every_thread_count()
    {
        var model = VitModel.Load(Fixtures.Path_("ragged_tiny.safetensors"));
        var input = Fixtures.Npy_("ragged_tiny.input.npy");
        float[]? first = null;
        foreach (int t in new[] { 1, 2, 3, 5, 8 })
        {
            using var s = new InferenceSession(model, t);
            var logits = new float[3 * model.Config.NumClasses];
            s.Run(input.Data, 3, logits);
            if (first == null) first = logits;
            else Assert.Equal(first, logits);
        }
    }

    [Fact]
    public void Concurrent_sessions_on_one_model_agree()
    {
        var model = VitModel.Load(Fixtures.Path_("ragged_tiny.safetensors"));
        var input = Fixtures.Npy_("ragged_tiny.input.npy");
        var expected = new float[3 * model.Config.NumClasses];
        using (var s = new InferenceSession(model, 1)) s.Run(input.Data, 3, expected);
        var results = new float[8][];
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            using var s = new InferenceSession(model, 1 + i % 2);
            var r = new float[expected.Length];
            for (int rep = 0; rep < 5; rep++) s.Run(input.Data, 3, r);
            results[i] = r;
        });
        Assert.All(results, r => Assert.Equal(expected, r));
    }
}
