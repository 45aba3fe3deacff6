using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>
/// Memory safety checked, not hoped for. (1) Every unsafe kernel runs on buffers exactly as long as its
/// checks demand, with guard zones on both sides: a write outside them fails here, at the call, not at a
/// later garbage collection. (2) Whole models of random ragged widths run with a full, compacting GC after
/// every forward; test.sh reruns this class with DOTNET_HeapVerify=1, so the GC also verifies every
/// object of the heap on each collection and a corrupted heap stops the run.
/// </summary>
[Trait("Category", "Checked")]
public class CheckedModeTests
{
    const int Guard = 64;
    const float Sentinel = -123.25f;

    /// <summary>A span of exactly <paramref name="length"/> floats with sentinel zones on both sides.</summary>
    sealed class Guarded
    {
        readonly float[] _all;
        public int Length { get; }
        public Guarded(int length, int seed = 0)
        {
            Length = length;
            _all = Enumerable.Repeat(Sentinel, length + 2 * Guard).ToArray();
            Fixtures.Random(length, seed).CopyTo(_all, Guard);
        }
        public Span<float> Span => _all.AsSpan(Guard, Length);
        public void AssertIntact(string what)
        {
            for (int i = 0; i < Guard; i++)
            {
                Assert.True(_all[i] == Sentinel, $"{what}: wrote {Guard - i} floats before the buffer");
                Assert.True(_all[Guard + Length + i] == Sentinel, $"{what}: wrote {i + 1} floats past the buffer");
            }
        }
    }

    [Fact]
    public void The_guard_catches_a_write_one_past_the_end()
    {
        var g = new Guarded(10);
        unsafe
        {
            fixed (float* p = g.Span) p[10] = 0f;   // what a kernel with an off-by-one would do
        }
        Assert.Throws<Xunit.Sdk.TrueException>(() => g.AssertIntact("deliberate overrun"));
    }

    [Theory, MemberData(nameof(KernelTests.WidthData), MemberType = typeof(KernelTests))]
    public void Linear_stays_inside_minimal_buffers(SimdWidth width)
    {
        var rng = new Random(11);
        for (int trial = 0; trial < 60; trial++)
        {
            int m = rng.Next(1, 40), n = rng.Next(1, 90), k = rng.Next(1, 600), ldx = k + rng.Next(0, 3), ldy = n + rng.Next(0, 3);
            var packed = PackedLinear.Pack(Fixtures.Random(n * k, trial), n, k, Fixtures.Random(n, trial + 1), width);
            var x = new Guarded((m - 1) * ldx + k, trial);
            foreach (var ep in new[] { Epilogue.Bias, Epilogue.BiasGelu, Epilogue.BiasAccumulate })
            {
                var y = new Guarded((m - 1) * ldy + n, trial + 2);
                using var team = new ThreadTeam(1 + trial % 3);
                packed.Forward(x.Span, m, ldx, y.Span, ldy, ep, team);
                y.AssertIntact($"linear {m}×{n}×{k} ld {ldx}/{ldy} {ep}");
            }
            x.AssertIntact("linear input");
        }
    }

    [Theory, MemberData(nameof(KernelTests.WidthData), MemberType = typeof(KernelTests))]
    public void Sparse_linears_stay_inside_minimal_buffers(SimdWidth width)
    {
        var rng = new Random(15);
        var shapes = SparseKernelTests.BlockShapes;
        for (int trial = 0; trial < 60; trial++)
        {
            int m = rng.Next(1, 70), n = rng.Next(1, 90), k = rng.Next(1, 300), ldx = k + rng.Next(0, 3), ldy = n + rng.Next(0, 3);
            var (bh, bw) = shapes[trial % shapes.Length];
            var bias = Fixtures.Random(n, trial + 1);
            ILinear layer = trial % 2 == 0
                ? BsrLinear.FromDense(SparseKernelTests.BlockMasked(n, k, bh, bw, 0.6, trial), n, k, bh, bw, bias, width)
                : CsrLinear.FromDense(SparseKernelTests.Masked(n, k, 0.4, trial), n, k, bias, width);
            var x = new Guarded((m - 1) * ldx + k, trial);
            foreach (var ep in new[] { Epilogue.Bias, Epilogue.BiasGelu, Epilogue.BiasAccumulate })
            {
                var y = new Guarded((m - 1) * ldy + n, trial + 2);
                using var team = new ThreadTeam(1 + trial % 3);
                layer.Forward(x.Span, m, ldx, y.Span, ldy, ep, team);
                y.AssertIntact($"{layer.GetType().Name} {m}×{n}×{k} ld {ldx}/{ldy} {ep}");
            }
            x.AssertIntact("sparse linear input");
        }
    }

    [Theory, MemberData(nameof(KernelTests.WidthData), MemberType = typeof(KernelTests))]
    public void Attention_stays_inside_minimal_buffers(SimdWidth width)
    {
        var rng = new Random(12);
        for (int trial = 0; trial < 40; trial++)
        {
            int heads = rng.Next(1, 5), tokens = rng.Next(1, 70), images = rng.Next(1, 3);
            var qk = Enumerable.Range(0, heads).Select(_ => rng.Next(1, 70)).ToArray();
            var v = Enumerable.Range(0, heads).Select(_ => rng.Next(1, 70)).ToArray();
            var layout = new HeadLayout(qk, v);
            int ldq = layout.RowWidth + rng.Next(0, 3), ldo = layout.VTotal + rng.Next(0, 3), rows = images * tokens;
            var qkv = new Guarded((rows - 1) * ldq + layout.RowWidth, trial);
            var output = new Guarded((rows - 1) * ldo + layout.VTotal, trial + 1);
            var attention = new RaggedAttention(tokens, layout.MaxQk, layout.MaxV, 2, width);
            using var team = new ThreadTeam(2);
            attention.Forward(layout, qkv.Span, images, ldq, 0.125f, output.Span, ldo, team);
            output.AssertIntact($"attention qk [{string.Join(",", qk)}] v [{string.Join(",", v)}] tokens {tokens}");
            qkv.AssertIntact("attention input");
        }
    }

    [Theory, MemberData(nameof(KernelTests.WidthData), MemberType = typeof(KernelTests))]
    public void LayerNorm_and_patches_stay_inside_minimal_buffers(SimdWidth width)
    {
        var rng = new Random(13);
        for (int trial = 0; trial < 40; trial++)
        {
            int rows = rng.Next(1, 30), w = rng.Next(1, 200), ldx = w + rng.Next(0, 3), ldy = w + rng.Next(0, 3);
            var x = new Guarded((rows - 1) * ldx + w, trial);
            var y = new Guarded((rows - 1) * ldy + w, trial + 1);
            LayerNorm.Forward(x.Span, rows, w, ldx, Fixtures.Random(w, 1), Fixtures.Random(w, 2), 1e-6f, y.Span, ldy, ThreadTeam.Single, width);
            y.AssertIntact($"layernorm {rows}×{w}");

            int patch = rng.Next(1, 6), grid = rng.Next(1, 5), channels = rng.Next(1, 4), batch = rng.Next(1, 3), size = patch * grid;
            var images = new Guarded(batch * channels * size * size, trial);
            var patches = new Guarded(batch * grid * grid * channels * patch * patch);
            Patches.Extract(images.Span, batch, channels, size, patch, patches.Span);
            patches.AssertIntact($"patches {batch}×{channels}×{size}² patch {patch}");
        }
    }

    /// <summary>Random ragged configs within the limits, a full compacting GC after every forward.</summary>
    [Fact]
    public void Random_ragged_models_run_with_a_full_gc_after_every_forward()
    {
        var rng = new Random(14);
        for (int trial = 0; trial < 12; trial++)
        {
            int heads = rng.Next(1, 4), embed = rng.Next(1, 40), patch = rng.Next(1, 5), grid = rng.Next(1, 5);
            var blocks = Enumerable.Range(0, rng.Next(1, 3)).Select(_ => new BlockConfig(
                Enumerable.Range(0, heads).Select(_ => rng.Next(1, 20)).ToArray(),
                Enumerable.Range(0, heads).Select(_ => rng.Next(1, 20)).ToArray(), rng.Next(1, 50), 0.25f)).ToArray();
            var c = VitConfig.Uniform($"random{trial}", embed, 1, 1, classes: rng.Next(1, 12), distilled: trial % 2 == 1,
                imageSize: patch * grid, patchSize: patch, inChannels: rng.Next(1, 4)) with { Blocks = blocks };
            c = c with { Mean = new float[c.InChannels], Std = Enumerable.Repeat(1f, c.InChannels).ToArray() };
            var model = VitModel.FromSource(new SeededWeights(c, (ulong)trial), c.Validate());
            int batch = rng.Next(1, 4);
            var x = new float[batch * c.ImageElements];
            SeededWeights.FillInput(x, (ulong)trial);
            float[]? first = null;
            foreach (int threads in new[] { 1, 2 })
            {
                using var session = new InferenceSession(model, threads);
                var logits = new float[batch * c.NumClasses];
                for (int run = 0; run < 2; run++)
                {
                    session.Run(x, batch, logits);
                    GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                    GC.WaitForPendingFinalizers();
                }
                Assert.All(logits, v => Assert.True(float.IsFinite(v), $"{c.Name}: non-finite logit"));
                if (first == null) first = logits;
                else Assert.True(first.AsSpan().SequenceEqual(logits), $"{c.Name}: 2 threads differ from 1");
            }
        }
    }
}
