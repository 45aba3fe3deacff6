using System.Text.Json;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;

namespace VitSparse.Pruning.Lpvit;

/// <summary>
/// `prune --export-curves FILE`: every pruned layer's curves and what the allocation needs to be redone from them
/// (tools/lpvit/allocate.py does, from the formulas alone), with the C# result to compare. JSON:
/// {"model", "block": [h, w], "points", "h", "target_flops", "min_sp", "tolerance", "dense_flops", "power_weight",
/// "power_sign", "layers": [{"name", "rows", "cols", "rows_per_image", "bias_flops", "blocks", "kept_weights_by_blocks"
/// (k = 0…blocks), "amounts", "distortion", "power", "combined"}], "result": {"amounts", "kept_blocks", "log2_slope", "flops_ratio"}}.
/// </summary>
public static class CurveFile
{
    /// <summary>Writes the curves and the allocation atomically.</summary>
    public static void Write(string path, string model, BlockPruneOptions o, IReadOnlyList<LayerCurve> curves, long denseFlops, AllocationResult r, double beta)
    {
        AtomicFile.Write(path, stream =>
        {
            using var j = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false });
            j.WriteStartObject();
            j.WriteString("model", model);
            j.WriteStartArray("block"); j.WriteNumberValue(o.BlockHeight); j.WriteNumberValue(o.BlockWidth); j.WriteEndArray();
            j.WriteNumber("points", o.Points);
            j.WriteNumber("h", o.H);
            j.WriteNumber("target_flops", o.Flops);
            j.WriteNumber("min_sp", Slopes.MinSparsity(o.Flops));
            j.WriteNumber("tolerance", o.Tolerance);
            j.WriteNumber("dense_flops", denseFlops);
            j.WriteNumber("power_weight", beta);
            j.WriteString("power_sign", o.PowerSign == PowerSign.Coded ? "coded" : "saving");
            j.WriteStartArray("layers");
            foreach (var c in curves)
            {
                j.WriteStartObject();
                j.WriteString("name", c.Layer.Name);
                j.WriteNumber("rows", c.Layer.Rows);
                j.WriteNumber("cols", c.Layer.Cols);
                j.WriteNumber("rows_per_image", c.Layer.RowsPerImage);
                j.WriteNumber("power_width", c.Layer.PowerWidth);
                j.WriteNumber("bias_flops", c.Layer.BiasFlops);
                j.WriteBoolean("has_bias", c.Layer.HasBias);
                j.WriteNumber("blocks", c.Grid.Count);
                Array(j, "kept_weights_by_blocks", c.KeptWeightsByBlocks);
                Array(j, "amounts", c.Amounts);
                if (c.Distortion != null) Array(j, "distortion", c.Distortion);
                if (c.Power != null) Array(j, "power", c.Power);
                if (c.Combined != null) Array(j, "combined", c.Combined);
                j.WriteEndObject();
            }
            j.WriteEndArray();
            j.WriteStartObject("result");
            Array(j, "amounts", r.Amounts);
            Array(j, "kept_blocks", r.KeptBlocks.Select(k => (long)k).ToArray());
            if (double.IsNaN(r.Log2Slope)) j.WriteNull("log2_slope"); else j.WriteNumber("log2_slope", r.Log2Slope);
            j.WriteNumber("flops_ratio", r.FlopsRatio);
            j.WriteEndObject();
            j.WriteEndObject();
        });
    }

    static void Array(Utf8JsonWriter j, string name, IReadOnlyList<double> values)
    {
        j.WriteStartArray(name);
        foreach (double v in values)
        {
            if (double.IsFinite(v)) j.WriteNumberValue(v); else j.WriteStringValue(double.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
        }
        j.WriteEndArray();
    }

    static void Array(Utf8JsonWriter j, string name, IReadOnlyList<long> values)
    {
        j.WriteStartArray(name);
        foreach (long v in values) j.WriteNumberValue(v);
        j.WriteEndArray();
    }

    /// <summary>What an exported file holds: its settings, curves and the allocation it recorded.</summary>
    /// <param name="Options">Block shape, target, h, points, tolerance.</param>
    /// <param name="MinSp">min_sp of the cap.</param>
    /// <param name="DenseFlops">Dense linear+conv FLOPs of the whole model.</param>
    /// <param name="Curves">The curves (allocation data only).</param>
    /// <param name="Recorded">The kept blocks per layer the run chose.</param>
    public sealed record Contents(BlockPruneOptions Options, double MinSp, long DenseFlops, List<LayerCurve> Curves, int[] Recorded);

    /// <summary>Reads an exported file back (errors name the file and the layer).</summary>
    public static Contents Read(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = doc.RootElement;
        try
        {
            var block = root.GetProperty("block");
            var o = new BlockPruneOptions
            {
                BlockHeight = block[0].GetInt32(), BlockWidth = block[1].GetInt32(), Points = root.GetProperty("points").GetInt32(),
                H = root.GetProperty("h").GetInt32(), Flops = root.GetProperty("target_flops").GetDouble(), Tolerance = root.GetProperty("tolerance").GetDouble(),
            };
            var curves = new List<LayerCurve>();
            foreach (var l in root.GetProperty("layers").EnumerateArray())
            {
                var layer = new PrunableLayer(l.GetProperty("name").GetString()!, l.GetProperty("rows").GetInt32(), l.GetProperty("cols").GetInt32(),
                    l.GetProperty("rows_per_image").GetInt64(), l.GetProperty("power_width").GetInt32(),
                    !l.TryGetProperty("has_bias", out var hasBias) || hasBias.GetBoolean());
                double[]? Values(string name) => l.TryGetProperty(name, out var a)
                    ? a.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.String ? double.Parse(v.GetString()!, System.Globalization.CultureInfo.InvariantCulture) : v.GetDouble()).ToArray() : null;
                var kept = l.GetProperty("kept_weights_by_blocks").EnumerateArray().Select(v => v.GetInt64()).ToArray();
                curves.Add(new LayerCurve(layer, new BlockGrid(layer.Rows, layer.Cols, o.BlockHeight, o.BlockWidth), kept, Values("amounts")!,
                    Values("distortion"), Values("power"), Values("combined")));
            }
            var recorded = root.GetProperty("result").GetProperty("kept_blocks").EnumerateArray().Select(v => v.GetInt32()).ToArray();
            return new Contents(o, root.GetProperty("min_sp").GetDouble(), root.GetProperty("dense_flops").GetInt64(), curves, recorded);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException or IndexOutOfRangeException)
        {
            throw new ModelException($"{path}: not a curve file written by prune --export-curves ({e.Message})");
        }
    }
}
