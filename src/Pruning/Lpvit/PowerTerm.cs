namespace VitSparse.Pruning.Lpvit;

/// <summary>Which blocks LPViT's power term charges (methods.md §3.3, "sign caveat").</summary>
public enum PowerSign
{
    /// <summary>
    /// As the reference codes it: P grows with the amount pruned, a·numel/(bh·bw)·⌊D_in/16⌋, so the term makes
    /// pruning a high-power layer cost more. The default, because it is what the published results ran.
    /// </summary>
    Coded,
    /// <summary>The stated goal: charge the surviving blocks, (1−a)·numel/(bh·bw)·⌊D_in/16⌋, so pruning a high-power layer pays.</summary>
    Saving,
}

/// <summary>LPViT's per-layer power term and its automatic weight β.</summary>
public static class PowerTerm
{
    /// <summary>The reference's unit of power per block: ⌊D_in/16⌋.</summary>
    public static long PerBlock(PrunableLayer layer) => layer.PowerWidth / 16;

    /// <summary>P_l(a) = (a·numel/(bh·bw))·⌊D_in/16⌋ (coded), or with 1−a (saving).</summary>
    public static double At(PrunableLayer layer, BlockGrid grid, double a, PowerSign sign) =>
        (sign == PowerSign.Coded ? a : 1 - a) * layer.Numel / ((double)grid.BlockHeight * grid.BlockWidth) * PerBlock(layer);

    /// <summary>Power units the kept blocks of a layer draw: kept blocks × ⌊D_in/16⌋ (what the report shows).</summary>
    public static long KeptUnits(PrunableLayer layer, int keptBlocks) => keptBlocks * PerBlock(layer);

    /// <summary>
    /// β = mean over layers of max dδ/da ÷ mean over layers of max |dP/da|, both by the reference's stencil with
    /// h = 10 (its β code fixes h at 10, whatever --h says). Magnitudes for P, so that β stays positive under
    /// either sign. Zero when P is zero everywhere (every D_in below 16).
    /// </summary>
    public static double AutoWeight(IReadOnlyList<LayerCurve> curves)
    {
        double dist = curves.Average(c => Slopes.Derivative(c.Amounts, c.Distortion!, 10).Max());
        double power = curves.Average(c => Slopes.Derivative(c.Amounts, c.Power!, 10).Select(Math.Abs).Max());
        return power > 0 ? dist / power : 0;
    }

    /// <summary>Fills each curve's power term and the combined curve δ + β·P; returns β (auto when <paramref name="weight"/> is null).</summary>
    public static double Apply(IReadOnlyList<LayerCurve> curves, double? weight, PowerSign sign)
    {
        foreach (var c in curves) c.Power = c.Amounts.Select(a => At(c.Layer, c.Grid, a, sign)).ToArray();
        double beta = weight ?? AutoWeight(curves);
        foreach (var c in curves) c.Combined = c.Distortion!.Select((d, i) => d + beta * c.Power![i]).ToArray();
        return beta;
    }
}
