using VitSparse.Kernels;
using VitSparse.Runtime;
using VitSparse.Training;
using Xunit;

namespace VitSparse.Tests;

/// <summary>Pruned linears in training: masks come from sparse storage, and AdamW steps leave pruned weights exactly zero.</summary>
public class MaskedTrainingTests
{
    [Fact]
    public void A_sparse_stored_model_loads_its_stored_patterns_as_masks()
    {
        var p = ParameterSet.Load(Fixtures.Path_("grad/masked.safetensors"), null);
        Assert.Equal(6, p.Masks.Count);
        var qkv = p.Masks["blocks.0.attn.qkv.weight"];
        Assert.NotNull(qkv.Stored);
        Assert.Equal(VitSparse.Runtime.Models.WeightFormat.Bsr, qkv.Stored!.Format);
        Assert.InRange(qkv.Kept, 1, qkv.Rows * qkv.Cols - 1);
        // BSR 4×4: kept is a union of whole blocks.
        for (int r = 0; r < qkv.Rows; r++)
            for (int c = 0; c < qkv.Cols; c++) Assert.Equal(qkv.IsKept(r / 4 * 4, c / 4 * 4), qkv.IsKept(r, c));
        Assert.Null(p.MaskOf("blocks.1.attn.qkv.weight"));
    }

    [Fact]
    public void Training_steps_keep_pruned_weights_exactly_zero_and_move_kept_ones()
    {
        using var f = GradParityTests.Load("masked");
        var p = f.Weights;
        var before = p.Names.ToDictionary(n => n, n => p[n].ToArray());
        var opt = new AdamW(p, new AdamWSettings(WeightDecay: 0.05, ClipNorm: 1));
        using var team = new ThreadTeam(2);
        var bp = new DeitBackprop(p, f.Batch, team);
        var logits = new float[f.Batch * 5];
        var dLogits = new float[logits.Length];
        for (int step = 0; step < 3; step++)
        {
            bp.Forward(f.Images, f.Batch, logits);
            f.Loss("ce").Evaluate(logits, f.Batch, 5, f.Labels, f.Teacher, dLogits);
            bp.Backward(dLogits);
            opt.Step(bp.Gradients, 1e-2);
        }
        foreach (var (name, mask) in p.Masks)
        {
            int moved = 0;
            for (int i = 0; i < p[name].Length; i++)
            {
                if (!mask.IsKept(i / mask.Cols, i % mask.Cols)) Assert.True(p[name][i] == 0, $"{name}[{i}] was pruned and is now {p[name][i]}");
                else if (p[name][i] != before[name][i]) moved++;
            }
            Assert.True(moved > 0, $"no kept weight of {name} changed");
        }
    }

    [Fact]
    public void SetMask_zeroes_pruned_weights_and_refuses_a_wrong_shape_or_a_non_linear()
    {
        var p = ParameterSet.Load(Fixtures.Path_("grad/uniform.safetensors"), null);
        var w = p["blocks.0.mlp.fc1.weight"];  // [32, 16]
        var kept = new bool[32 * 16];
        for (int i = 0; i < kept.Length; i += 3) kept[i] = true;
        p.SetMask("blocks.0.mlp.fc1.weight", WeightMask.FromKept(kept, 32, 16));
        for (int i = 0; i < w.Length; i++) if (!kept[i]) Assert.Equal(0f, w[i]);
        Assert.Equal("mask", Assert.Throws<InputException>(() => p.SetMask("blocks.0.mlp.fc1.weight", WeightMask.FromKept(kept, 16, 32))).Argument);
        Assert.Equal("mask", Assert.Throws<InputException>(() => p.SetMask("blocks.0.norm1.weight", WeightMask.FromKept(new bool[16], 1, 16))).Argument);
    }
}
