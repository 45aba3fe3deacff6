using VitSparse.Runtime.Models;

namespace VitSparse.Runtime.Energy;

/// <summary>
/// Energy constants of one class of hardware, with where they come from. Operation-level constants count only
/// the arithmetic and the data movement themselves: no idle, static, instruction or uncore power.
/// </summary>
public sealed record DeviceClass(string Name, double PicojoulesPerFlop, double PicojoulesPerSramByte, double PicojoulesPerDramByte, string Source);

/// <summary>The modelled energy of one image (weights shared by the batch): never a measurement, and printed only in columns that say so.</summary>
public sealed record ModelledEnergy(string Model, string DeviceClass, int Batch, double Gflop, double WeightMegabytes, double ActivationMegabytes, double JoulesPerImage)
{
    /// <summary>LPViT's block power term summed over the block-sparse layers, or null when the model has none.</summary>
    public LpvitPower? BlockPower { get; init; }
}

/// <summary>
/// LPViT's per-layer power term (methods.md §3.3), P_l = blocks · ⌊D_in/16⌋ in the reference code's unitless
/// units, summed over the BSR layers of a model: as coded it counts the pruned blocks; the kept blocks are the
/// ones that still draw power, so both are reported.
/// </summary>
public sealed record LpvitPower(long PrunedBlockUnits, long KeptBlockUnits, int Layers);

/// <summary>
/// "Modelled, not measured": energy = FLOPs·e_flop + weight bytes·e_dram + activation bytes·e_sram, for machines
/// without a power sensor. Weights (fp32) come from DRAM once per batch; every matmul's inputs and outputs
/// and the attention scores (written, read and rewritten by softmax) move once through on-chip SRAM per image.
/// It shows what pruning removes (arithmetic and traffic) but not a device's total power, which idle and
/// uncore power dominate on CPUs; a sensor's net J/inference is the number to trust.
/// </summary>
public static class EnergyModel
{
    /// <summary>
    /// Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm, 0.9 V, as tabulated
    /// in Han et al., "Learning both Weights and Connections for Efficient Neural Networks", NeurIPS 2015, Table 1:
    /// 32-bit float multiply 3.7 pJ + add 0.9 pJ = 4.6 pJ per multiply-add = 2.3 pJ/FLOP; 32-bit SRAM cache
    /// read 5 pJ = 1.25 pJ/byte; 32-bit DRAM read 640 pJ = 160 pJ/byte. The only class so far: per-device
    /// constants need a measurement or a datasheet we can cite, not a guess.
    /// </summary>
    public static readonly DeviceClass Ops45nm = new("45nm-ops", 2.3, 1.25, 160,
        "Horowitz, ISSCC 2014 (45 nm), via Han et al., NeurIPS 2015, Table 1: fp32 mult 3.7 pJ + add 0.9 pJ, SRAM 5 pJ / 32 bit, DRAM 640 pJ / 32 bit");

    /// <summary>Every device class with constants from a citable source.</summary>
    public static readonly IReadOnlyList<DeviceClass> Classes = [Ops45nm];

    /// <summary>Bytes of fp32 activations one image moves through the matmuls and the softmax.</summary>
    public static long ActivationBytes(VitConfig c)
    {
        long e = c.EmbedDim, n = c.Tokens, elements = (long)c.ImageElements + (long)c.PatchTokens * e;
        foreach (var b in c.Blocks)
        {
            long scores = (long)b.Heads * n * n;
            elements += n * e + n * b.QkvRows;              // qkv: reads x, writes q, k, v
            elements += 2 * n * b.QkTotal + scores;         // q·kᵀ: reads q, k, writes scores
            elements += 2 * scores;                         // softmax: reads and rewrites them
            elements += scores + n * b.VTotal + n * b.VTotal; // a·v: reads scores and v, writes the context
            elements += n * b.VTotal + n * e;               // proj
            elements += n * e + n * b.MlpHidden;            // fc1 (GELU fused)
            elements += n * b.MlpHidden + n * e;            // fc2
        }
        elements += (c.Distilled ? 2 : 1) * (e + c.NumClasses);
        return 4 * elements;
    }

    /// <summary>Modelled (not measured) energy of one inference of <paramref name="batch"/> images: FLOPs and bytes moved times the class's constants.</summary>
    public static ModelledEnergy Estimate(VitConfig c, int batch, DeviceClass d) =>
        Estimate(c, 2.0 * ModelStats.Macs(c), 4.0 * ModelStats.Params(c), batch, d);

    /// <summary>
    /// The same for a loaded model whose linear layers may run sparse kernels: each counts the MACs its kernel
    /// performs and the bytes it stores (values and indices), and block-sparse layers add LPViT's power term.
    /// </summary>
    public static ModelledEnergy Estimate(VitModel model, int batch, DeviceClass d)
    {
        var c = model.Config;
        double flops = 2.0 * ModelStats.Macs(c), weightBytes = 4.0 * ModelStats.Params(c);
        long pruned = 0, kept = 0;
        int bsrLayers = 0;
        foreach (var l in model.LinearLayers)
        {
            flops -= 2.0 * l.RowsPerImage(c) * ((long)l.N * l.K - l.KernelMacsPerRow);
            weightBytes += l.StoredBytes - 4L * l.N * l.K;
            if (l.Format != WeightFormat.Bsr) continue;
            long blocks = (long)((l.N + l.BlockHeight - 1) / l.BlockHeight) * ((l.K + l.BlockWidth - 1) / l.BlockWidth);
            long keptBlocks = l.KernelMacsPerRow / ((long)l.BlockHeight * l.BlockWidth);
            pruned += (blocks - keptBlocks) * (l.K / 16);
            kept += keptBlocks * (l.K / 16);
            bsrLayers++;
        }
        return Estimate(c, flops, weightBytes, batch, d) with { BlockPower = bsrLayers > 0 ? new LpvitPower(pruned, kept, bsrLayers) : null };
    }

    static ModelledEnergy Estimate(VitConfig c, double flops, double weightBytesPerBatch, int batch, DeviceClass d)
    {
        double weightBytes = weightBytesPerBatch / batch;
        double activationBytes = ActivationBytes(c);
        double pj = flops * d.PicojoulesPerFlop + weightBytes * d.PicojoulesPerDramByte + activationBytes * d.PicojoulesPerSramByte;
        return new ModelledEnergy(c.Name, d.Name, batch, flops / 1e9, weightBytes / 1e6, activationBytes / 1e6, pj * 1e-12);
    }
}
