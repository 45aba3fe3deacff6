using System.Globalization;
using VitSparse.Runtime;
using VitSparse.Runtime.Models;

namespace VitSparse.Pruning;

/// <summary>How many units (a prefix of its order) one prunable layer loses, and the weights that removes.</summary>
public sealed record LayerCut(string Layer, DimapModule Module, long Params, long Removed, int Units, int UnitsRemoved)
{
    /// <summary>Fraction of the layer's weights kept.</summary>
    public double Kept => 1 - (double)Removed / Params;
}

/// <summary>
/// What a DIMAP plan removes: per layer, and per group (a module, all prunable layers for the single-module
/// ablation, or one layer for the magnitude baseline) the score threshold it came to.
/// </summary>
public sealed record DimapPlan(DimapMethod Method, Granularity Unit, double ParamsRemoved, long TotalParams, long PrunableParams,
    IReadOnlyList<LayerCut> Layers, IReadOnlyDictionary<string, float> Thresholds)
{
    /// <summary>Weights the plan removes.</summary>
    public long Removed => Layers.Sum(l => l.Removed);
    /// <summary>Parameters left, AUX included (before any zeros the weights already held).</summary>
    public long ParamsAfter => TotalParams - Removed;
}

/// <summary>
/// DIMAP (methods.md §2): data-free, module-aware weight pruning of a Swin. Each prunable layer is ranked once
/// (<see cref="Rank"/>); a plan for any fraction is then a threshold search over the sorted scores
/// (<see cref="Plan"/>), and <see cref="Apply"/> zeros what the plan removes.
///
/// Split rule: the fraction asked for is of all parameters (Table 1's "Para.↓" is, as its counts show), AUX is
/// untouched, so the prunable weights give up r = R·N_all / N_prunable of themselves; with
/// <see cref="DimapMethod.Dimap"/> each module gives up that same fraction r of its own weights, and LAMP with
/// one threshold per module decides which layers of the module give them.
/// </summary>
public sealed class DimapRanking
{
    readonly List<LayerRanking> _layers;
    /// <summary>The method the scores were computed for.</summary>
    public DimapMethod Method { get; }
    /// <summary>Single weights or blocks.</summary>
    public Granularity Unit { get; }
    /// <summary>Every parameter of the tensors given, AUX included.</summary>
    public long TotalParams { get; }
    /// <summary>The weights of QKV-M, PRJ-M and MLP-M.</summary>
    public long PrunableParams { get; }

    DimapRanking(List<LayerRanking> layers, DimapMethod method, Granularity unit, long total)
    {
        _layers = layers;
        Method = method;
        Unit = unit;
        TotalParams = total;
        PrunableParams = layers.Sum(l => l.Params);
    }

    /// <summary>
    /// Ranks every prunable weight of a Swin's tensors (timm keys; every other tensor counts as an AUX parameter).
    /// Refuses tensors with NaN/Inf, prunable weights that are not matrices, and a set with nothing to prune.
    /// </summary>
    public static DimapRanking Rank(IEnumerable<KeyValuePair<string, Tensor>> tensors, DimapMethod method, Granularity unit, string source = "weights")
    {
        long total = 0;
        var prunable = new List<(string Name, DimapModule Module, Tensor T)>();
        foreach (var (name, t) in tensors)
        {
            total += t.Data.Length;
            var module = DimapModules.Of(name);
            if (module == DimapModule.Aux) continue;
            if (t.Shape.Length != 2)
                throw new ModelException($"{source}: '{name}' has shape [{string.Join(",", t.Shape)}]; a {module} weight must be a matrix", name);
            int first = Array.FindIndex(t.Data, v => !float.IsFinite(v));
            if (first >= 0) throw new ModelException($"{source}: tensor '{name}' has NaN/Inf values (first at flat index {first}); DIMAP cannot rank it", name);
            prunable.Add((name, module, t));
        }
        if (prunable.Count == 0)
            throw new ModelException($"{source}: no Swin block weights to prune (layers.*.blocks.*.attn.qkv/attn.proj/mlp.fc1/mlp.fc2 .weight); DIMAP prunes Swin models");
        var ranked = new LayerRanking[prunable.Count];
        // Layers are independent: ranking them in parallel gives the same result as in order.
        Parallel.For(0, prunable.Count, i =>
        {
            var (name, module, t) = prunable[i];
            ranked[i] = LayerRanking.Rank(name, module, t.Data, (int)t.Shape[0], (int)t.Shape[1], unit, lamp: method != DimapMethod.Magnitude);
        });
        return new DimapRanking([.. ranked], method, unit, total);
    }

    /// <summary>
    /// The cut that removes <paramref name="paramsRemoved"/> of all parameters (in [0, 1); at most the prunable
    /// fraction). With blocks, each group removes whole blocks, so it may remove up to one block more than asked.
    /// </summary>
    public DimapPlan Plan(double paramsRemoved, string argument = "--params-removed")
    {
        if (!(paramsRemoved >= 0 && paramsRemoved < 1))
            throw new InputException(argument, $"{paramsRemoved.ToString(CultureInfo.InvariantCulture)} is outside [0, 1): it is the fraction of parameters removed");
        long target = (long)Math.Round(paramsRemoved * TotalParams);
        if (target > PrunableParams)
            throw new InputException(argument, string.Create(CultureInfo.InvariantCulture,
                $"{paramsRemoved} of {TotalParams:N0} parameters is more than the {PrunableParams:N0} ({(double)PrunableParams / TotalParams:P1}) DIMAP may prune; AUX (embedding, norms, merging, head, biases, bias tables) is kept"));
        double r = (double)target / PrunableParams;
        var cut = new int[_layers.Count];
        var thresholds = new Dictionary<string, float>(StringComparer.Ordinal);
        IEnumerable<(string Group, int[] Members)> groups = Method switch
        {
            DimapMethod.Dimap => _layers.Select((l, i) => (l, i)).GroupBy(x => x.l.Module).OrderBy(g => g.Key)
                .Select(g => (g.Key.ToString(), g.Select(x => x.i).ToArray())),
            DimapMethod.SingleModule => [("model", Enumerable.Range(0, _layers.Count).ToArray())],
            _ => _layers.Select((l, i) => (l.Name, new[] { i })),
        };
        foreach (var (group, members) in groups)
        {
            long groupParams = members.Sum(i => _layers[i].Params);
            long want = Method == DimapMethod.Magnitude || Method == DimapMethod.Dimap ? (long)Math.Round(r * groupParams) : target;
            thresholds[group] = Allocate(members, want, cut);
        }
        var layers = _layers.Select((l, i) => new LayerCut(l.Name, l.Module, l.Params, l.WeightsIn(cut[i]), l.Units, cut[i])).ToList();
        return new DimapPlan(Method, Unit, paramsRemoved, TotalParams, PrunableParams, layers, thresholds);
    }

    /// <summary>
    /// Finds the smallest score threshold t at which the units scoring ≤ t hold at least <paramref name="want"/> weights,
    /// removes every unit below t and then units at t, layer by layer, until <paramref name="want"/> is met. Scores are
    /// non-negative floats, whose bit patterns sort like their values: a binary search over 31 bits.
    /// </summary>
    float Allocate(int[] members, long want, int[] cut)
    {
        if (want <= 0) { foreach (int i in members) cut[i] = 0; return 0f; }
        long WeightsAtMost(float t) => members.Sum(i => _layers[i].WeightsIn(_layers[i].CountAtMost(t)));
        int lo = 0, hi = BitConverter.SingleToInt32Bits(float.MaxValue);
        while (lo < hi)
        {
            int mid = lo + (hi - lo) / 2;
            if (WeightsAtMost(BitConverter.Int32BitsToSingle(mid)) >= want) hi = mid; else lo = mid + 1;
        }
        float t = BitConverter.Int32BitsToSingle(lo);
        long removed = 0;
        foreach (int i in members) { cut[i] = _layers[i].CountBelow(t); removed += _layers[i].WeightsIn(cut[i]); }
        foreach (int i in members)
        {
            var l = _layers[i];
            while (removed < want && cut[i] < l.Units && l.Scores[cut[i]] == t)
            {
                removed += l.WeightsIn(cut[i] + 1) - l.WeightsIn(cut[i]);
                cut[i]++;
            }
        }
        return t;
    }

    /// <summary>
    /// The tensors with the plan's units zeroed (prunable weights copied, every other tensor shared), and the
    /// sparse layout each pruned weight should be stored in: CSR for single weights, BSR of the block shape for blocks.
    /// </summary>
    public (Dictionary<string, Tensor> Tensors, Dictionary<string, StoredLayout> Sparse) Apply(IEnumerable<KeyValuePair<string, Tensor>> tensors, DimapPlan plan)
    {
        if (plan.Layers.Count != _layers.Count || plan.Unit != Unit) throw new ArgumentException("the plan was made by another ranking", nameof(plan));
        var byName = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < _layers.Count; i++) byName[_layers[i].Name] = i;
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var sparse = new Dictionary<string, StoredLayout>(StringComparer.Ordinal);
        foreach (var (name, t) in tensors)
        {
            if (!byName.TryGetValue(name, out int i)) { result[name] = t; continue; }
            var l = _layers[i];
            if (t.Shape.Length != 2 || t.Shape[0] != l.Rows || t.Shape[1] != l.Cols)
                throw new ModelException($"'{name}' has shape [{string.Join(",", t.Shape)}], but was ranked as [{l.Rows},{l.Cols}]", name);
            var data = (float[])t.Data.Clone();
            l.Zero(data, plan.Layers[i].UnitsRemoved);
            result[name] = new Tensor(t.Shape, data);
            if (plan.Layers[i].UnitsRemoved == 0) continue;   // nothing cut: stays dense
            var format = Unit.IsUnstructured ? WeightFormat.Unstructured : WeightFormat.Bsr;
            sparse[name] = new StoredLayout(format, Unit.BlockHeight, Unit.BlockWidth, l.Rows, l.Cols, plan.Layers[i].Kept);
        }
        foreach (var l in _layers)
            if (!result.ContainsKey(l.Name)) throw new ModelException($"'{l.Name}' was ranked but is not among the tensors to prune", l.Name);
        return (result, sparse);
    }
}
