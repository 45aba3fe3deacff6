namespace VitSparse.Pruning;

/// <summary>What one block keeps. Indices are into the block's current (unpruned) units, ascending.</summary>
public sealed record BlockPlan(int[][] QkKeep, int[][] VKeep, int[] FfnKeep)
{
    /// <summary>A block whose every head is gone contributes nothing but its residual additions; removing the block removes those too.</summary>
    public bool Removed { get; init; }
}

/// <summary>
/// The units a pruned model keeps: residual channels (one index set for the whole network), and per
/// block the Q/K pairs and V neurons per head and the FFN neurons. A head with no pairs and no V neurons
/// is removed; a head that keeps one but not the other is refused.
/// </summary>
public sealed record PruningPlan(int[] ResidualKeep, BlockPlan[] Blocks);
