using System.Text.Json;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;

namespace VitSparse.Pruning;

/// <summary>Fractions removed per block, as in SNP's ratio JSONs: kept = width − round(ratio·width), per head for Q/K and V.</summary>
public sealed record BlockRatio(double Qk, double V, double Mlp);

/// <summary>A per-layer ratio file: {"embed": r, "blocks": [{"qk": r, "v": r, "mlp": r}, …]} or {"embed": r, "default": {…}}.</summary>
public sealed record RatioSpec(double Embed, BlockRatio[] Blocks)
{
    /// <summary>Largest ratio file read: 1 MiB (one entry per block is a few KB).</summary>
    public const long MaxFileBytes = 1L << 20;

    /// <summary>Reads and parses a ratio file (at most <see cref="MaxFileBytes"/>) for a model of <paramref name="depth"/> blocks.</summary>
    public static RatioSpec Read(string path, int depth) => Parse(TextFile.Read(path, MaxFileBytes, "ratio file"), path, depth);

    /// <summary>Parses a ratio file's JSON (<paramref name="file"/> names it in errors) for a model of <paramref name="depth"/> blocks; every ratio must be in [0, 1).</summary>
    public static RatioSpec Parse(string json, string file, int depth)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new FileFormatException(file, $"not valid JSON: {e.Message}"); }
        using (doc)
        {
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object) throw new FileFormatException(file, "must be a JSON object");
            double Ratio(JsonElement e, string name, string field)
            {
                if (!e.TryGetProperty(name, out var v)) return 0;
                if (v.ValueKind != JsonValueKind.Number) throw new FileFormatException(file, $"field '{field}' must be a number");
                // TryGetDouble, never a FormatException; a number too large for a double reads as Infinity and fails the range check.
                if (!v.TryGetDouble(out double x)) throw new FileFormatException(file, $"field '{field}' = {v.GetRawText()} is not a finite number");
                if (!(x >= 0 && x < 1)) throw new FileFormatException(file, $"field '{field}' = {x} is outside [0, 1): it is the fraction removed");
                return x;
            }
            BlockRatio Block(JsonElement e, string field)
            {
                if (e.ValueKind != JsonValueKind.Object) throw new FileFormatException(file, $"field '{field}' must be an object");
                foreach (var p in e.EnumerateObject())
                    if (p.Name is not ("qk" or "v" or "mlp")) throw new FileFormatException(file, $"unknown field '{field}.{p.Name}' (known: qk, v, mlp)");
                return new BlockRatio(Ratio(e, "qk", field + ".qk"), Ratio(e, "v", field + ".v"), Ratio(e, "mlp", field + ".mlp"));
            }
            foreach (var p in r.EnumerateObject())
                if (p.Name is not ("embed" or "blocks" or "default")) throw new FileFormatException(file, $"unknown field '{p.Name}' (known: embed, blocks, default)");
            double embed = Ratio(r, "embed", "embed");
            if (r.TryGetProperty("blocks", out var blocks))
            {
                if (blocks.ValueKind != JsonValueKind.Array) throw new FileFormatException(file, "field 'blocks' must be an array");
                var list = blocks.EnumerateArray().Select((b, i) => Block(b, $"blocks[{i}]")).ToArray();
                if (list.Length != depth) throw new FileFormatException(file, $"field 'blocks' has {list.Length} entries, the model has {depth} blocks");
                return new RatioSpec(embed, list);
            }
            if (r.TryGetProperty("default", out var def))
                return new RatioSpec(embed, Enumerable.Repeat(Block(def, "default"), depth).ToArray());
            throw new FileFormatException(file, "needs 'blocks' (one entry per block) or 'default'");
        }
    }
}

/// <summary>
/// Turns scores into a <see cref="PruningPlan"/>: to a named structure (e.g. the released SNP widths), by
/// per-layer ratios, or down to a MAC budget by global ranking.
/// </summary>
public static class Allocation
{
    /// <summary>Indices of the k highest scores, ascending (ties keep the lower index).</summary>
    public static int[] TopK(float[] scores, int k) =>
        Enumerable.Range(0, scores.Length).OrderByDescending(i => scores[i]).ThenBy(i => i).Take(k).Order().ToArray();

    /// <summary>Keeps, per block and head, the widths of <paramref name="target"/>, choosing units by score.</summary>
    public static PruningPlan ToStructure(VitConfig dense, VitConfig target, UnitScores s)
    {
        if (target.Depth != dense.Depth) throw new InputException("--target", $"'{target.Name}' has {target.Depth} blocks, the model {dense.Depth}");
        if (target.EmbedDim > dense.EmbedDim) throw new InputException("--target", $"'{target.Name}' is wider ({target.EmbedDim}) than the model ({dense.EmbedDim})");
        var blocks = new BlockPlan[dense.Depth];
        for (int i = 0; i < dense.Depth; i++)
        {
            var d = dense.Blocks[i];
            var t = target.Blocks[i];
            if (t.Heads != d.Heads) throw new InputException("--target", $"block {i} of '{target.Name}' has {t.Heads} heads, the model {d.Heads}");
            for (int h = 0; h < d.Heads; h++)
                if (t.QkWidths[h] > d.QkWidths[h] || t.VWidths[h] > d.VWidths[h])
                    throw new InputException("--target", $"block {i} head {h} of '{target.Name}' is wider than the model's");
            if (t.MlpHidden > d.MlpHidden) throw new InputException("--target", $"block {i} FFN of '{target.Name}' is wider than the model's");
            blocks[i] = new BlockPlan(
                Enumerable.Range(0, d.Heads).Select(h => TopK(s.Qk[i][h], t.QkWidths[h])).ToArray(),
                Enumerable.Range(0, d.Heads).Select(h => TopK(s.V[i][h], t.VWidths[h])).ToArray(),
                TopK(s.Ffn[i], t.MlpHidden));
        }
        return new PruningPlan(TopK(s.Residual, target.EmbedDim), blocks);
    }

    static int Kept(int width, double ratio, string what)
    {
        int kept = width - (int)Math.Round(ratio * width, MidpointRounding.ToEven);
        if (kept < 1) throw new InputException("--ratios", $"{what}: ratio {ratio} removes all {width} units");
        return kept;
    }

    /// <summary>Widths from per-layer ratios (kept = width − round(r·width) per head), the kept units chosen by score.</summary>
    public static PruningPlan FromRatios(VitConfig dense, RatioSpec r, UnitScores s)
    {
        var blocks = new BlockPlan[dense.Depth];
        for (int i = 0; i < dense.Depth; i++)
        {
            var d = dense.Blocks[i];
            var br = r.Blocks[i];
            blocks[i] = new BlockPlan(
                Enumerable.Range(0, d.Heads).Select(h => TopK(s.Qk[i][h], Kept(d.QkWidths[h], br.Qk, $"blocks[{i}].qk"))).ToArray(),
                Enumerable.Range(0, d.Heads).Select(h => TopK(s.V[i][h], Kept(d.VWidths[h], br.V, $"blocks[{i}].v"))).ToArray(),
                TopK(s.Ffn[i], Kept(d.MlpHidden, br.Mlp, $"blocks[{i}].mlp")));
        }
        return new PruningPlan(TopK(s.Residual, Kept(dense.EmbedDim, r.Embed, "embed")), blocks);
    }

    /// <summary>
    /// Removes the least important units, ranked globally, until the model is within <paramref name="targetMacs"/>.
    /// Scores are compared across layers after dividing each layer's scores by their mean (so a wide FFN and a
    /// 64-pair head compete on equal terms). With <paramref name="unevenHeads"/> false, Q/K pairs and V neurons
    /// go one from every head of a block at a time (equal widths per head, as SNP's released models); with true,
    /// each head loses its own least important units and heads end up with different widths. Every head keeps
    /// at least one pair and one V neuron, every FFN one neuron; the residual width is not changed here.
    /// </summary>
    public static PruningPlan ToMacs(VitConfig dense, long targetMacs, UnitScores s, bool unevenHeads)
    {
        long macs = ModelStats.Macs(dense);
        long floor = ModelStats.Macs(dense with { Blocks = dense.Blocks.Select(b => new BlockConfig(b.QkWidths.Select(_ => 1).ToArray(), b.VWidths.Select(_ => 1).ToArray(), 1, b.AttnScale)).ToArray() });
        if (targetMacs >= macs) throw new InputException("--macs", $"target {targetMacs / 1e9:0.###} GMAC is not below the model's {macs / 1e9:0.###} GMAC");
        if (targetMacs < floor) throw new InputException("--macs", $"target {targetMacs / 1e9:0.###} GMAC is below {floor / 1e9:0.###} GMAC, the least this model can have with one unit per head and FFN (prune blocks or the residual width for more)");
        long n = dense.Tokens, e = dense.EmbedDim;

        // A "layer" is a queue of removable units in ascending order of normalised score.
        var layers = new List<Layer>();
        for (int i = 0; i < dense.Depth; i++)
        {
            var b = dense.Blocks[i];
            var heads = Enumerable.Range(0, b.Heads).ToArray();
            if (unevenHeads)
                foreach (int h in heads)
                {
                    layers.Add(new Layer(i, Kind.Qk, [h], Normalise(s.Qk[i]), 2 * n * e + n * n));
                    layers.Add(new Layer(i, Kind.V, [h], Normalise(s.V[i]), 2 * n * e + n * n));
                }
            else
            {
                layers.Add(new Layer(i, Kind.Qk, heads, Normalise(s.Qk[i]), b.Heads * (2 * n * e + n * n)));
                layers.Add(new Layer(i, Kind.V, heads, Normalise(s.V[i]), b.Heads * (2 * n * e + n * n)));
            }
            layers.Add(new Layer(i, Kind.Ffn, [0], [Normalise([s.Ffn[i]])[0]], 2 * n * e));
        }
        while (macs > targetMacs)
        {
            Layer? best = null;
            double bestScore = double.MaxValue;
            foreach (var l in layers)
                if (l.CanRemove && l.NextScore < bestScore) { best = l; bestScore = l.NextScore; }
            if (best == null) break;
            best.RemoveNext();
            macs -= best.MacsPerStep;
        }
        var blocks = new BlockPlan[dense.Depth];
        for (int i = 0; i < dense.Depth; i++)
        {
            var b = dense.Blocks[i];
            var qk = Enumerable.Range(0, b.Heads).Select(h => Enumerable.Range(0, b.QkWidths[h]).ToHashSet()).ToArray();
            var v = Enumerable.Range(0, b.Heads).Select(h => Enumerable.Range(0, b.VWidths[h]).ToHashSet()).ToArray();
            var ffn = Enumerable.Range(0, b.MlpHidden).ToHashSet();
            foreach (var l in layers.Where(l => l.Block == i))
                foreach (var (h, unit) in l.Removed)
                    (l.Kind == Kind.Qk ? qk[h] : l.Kind == Kind.V ? v[h] : ffn).Remove(unit);
            blocks[i] = new BlockPlan(qk.Select(x => x.Order().ToArray()).ToArray(), v.Select(x => x.Order().ToArray()).ToArray(), ffn.Order().ToArray());
        }
        return new PruningPlan(Enumerable.Range(0, dense.EmbedDim).ToArray(), blocks);
    }

    enum Kind { Qk, V, Ffn }

    static float[][] Normalise(float[][] heads)
    {
        double mean = heads.SelectMany(h => h).Select(x => (double)x).DefaultIfEmpty(0).Average();
        double scale = Math.Abs(mean) > 1e-30 ? 1 / Math.Abs(mean) : 1;
        return heads.Select(h => h.Select(x => (float)(x * scale)).ToArray()).ToArray();
    }

    /// <summary>Per head, units in ascending score; a step removes the next unit of every head in Heads.</summary>
    sealed class Layer(int block, Kind kind, int[] heads, float[][] scores, long macsPerStep)
    {
        readonly int[][] _order = heads.Select(h => Enumerable.Range(0, scores[h].Length).OrderBy(i => scores[h][i]).ThenByDescending(i => i).ToArray()).ToArray();
        int _next;
        public int Block { get; } = block;
        public Kind Kind { get; } = kind;
        public long MacsPerStep { get; } = macsPerStep;
        public List<(int Head, int Unit)> Removed { get; } = [];
        public bool CanRemove => _order.All(o => _next < o.Length - 1);
        public double NextScore => heads.Select((h, j) => (double)scores[h][_order[j][_next]]).Average();
        public void RemoveNext()
        {
            for (int j = 0; j < heads.Length; j++) Removed.Add((heads[j], _order[j][_next]));
            _next++;
        }
    }
}
