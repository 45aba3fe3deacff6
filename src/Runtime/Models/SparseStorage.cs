using System.Globalization;
using System.Text.Json;
using VitSparse.Kernels;
using VitSparse.Runtime.Formats;

namespace VitSparse.Runtime.Models;

/// <summary>How a linear layer's weight is stored and run.</summary>
public enum WeightFormat
{
    /// <summary>Every weight, zeros included (the packed dense GEMM).</summary>
    Dense,
    /// <summary>Block-sparse rows (BSR): only the blocks of bh×bw that hold a non-zero.</summary>
    Bsr,
    /// <summary>Row-compressed single weights (CSR with 16-bit columns in the kernel).</summary>
    Unstructured,
}

/// <summary>How one linear weight is stored in our compact safetensors (README, "Sparse weights").</summary>
public sealed record StoredLayout(WeightFormat Format, int BlockHeight, int BlockWidth, long Rows, long Cols, double Density)
{
    /// <summary>"dense", "bsr 32×32" or "unstructured", as `inspect` prints it.</summary>
    public string Describe() => Describe(Format, BlockHeight, BlockWidth);

    internal static string Describe(WeightFormat format, int blockHeight, int blockWidth) => format switch
    {
        WeightFormat.Bsr => $"bsr {blockHeight}×{blockWidth}",
        WeightFormat.Unstructured => "unstructured",
        _ => "dense",
    };
}

/// <summary>
/// Sparse weights in a safetensors file. A weight `W` stored sparse has no `W` tensor but
/// `W.bsr_values` [kept, bh, bw] (F32/F16/BF16), `W.bsr_col_indices` [kept] and `W.bsr_row_ptr`
/// [⌈rows/bh⌉+1] (I32), or `W.csr_values` [nnz], `W.csr_col_indices` [nnz], `W.csr_row_ptr` [rows+1];
/// the metadata entry <see cref="MetadataKey"/> maps each such W to its format, block shape, dense shape
/// and density. Everything is checked before a kernel sees it; errors name the tensor.
/// </summary>
public static class SparseStorage
{
    /// <summary>The `__metadata__` key mapping each sparse-stored weight to its <see cref="StoredLayout"/> (JSON).</summary>
    public const string MetadataKey = "vitsparse.sparse";
    static readonly string[] Suffixes = [".bsr_values", ".bsr_col_indices", ".bsr_row_ptr", ".csr_values", ".csr_col_indices", ".csr_row_ptr"];
    /// <summary>Largest block side accepted from a file (far past any useful block; keeps block arithmetic small).</summary>
    public const int MaxBlockSide = 4096;
    /// <summary>
    /// Largest dense size of a weight stored sparse (1 GiB of F32; ViT-22B's largest is 151 M). A dense weight's
    /// bytes must be in the file; a sparse one's need not, so without this a few-KB file could make the loader
    /// expand an 8 GiB matrix.
    /// </summary>
    public const long MaxDenseElements = 1L << 28;

    /// <summary>The stored layouts a file declares, every sparse tensor accounted for.</summary>
    public static Dictionary<string, StoredLayout> Read(SafeTensorsFile file)
    {
        var layouts = new Dictionary<string, StoredLayout>(StringComparer.Ordinal);
        if (file.Metadata.TryGetValue(MetadataKey, out var json))
        {
            JsonDocument doc;
            try { doc = JsonDocument.Parse(json); }
            catch (JsonException e) { throw new ModelException($"{file.Path}: metadata '{MetadataKey}' is not valid JSON: {e.Message}"); }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ModelException($"{file.Path}: metadata '{MetadataKey}' must be a JSON object");
                foreach (var p in doc.RootElement.EnumerateObject()) layouts[p.Name] = Parse(file.Path, p.Name, p.Value);
            }
        }
        foreach (var t in file.Tensors)
            foreach (var s in Suffixes)
                if (t.Name.EndsWith(s, StringComparison.Ordinal))
                {
                    string weight = t.Name[..^s.Length];
                    if (!layouts.TryGetValue(weight, out var l))
                        throw new ModelException($"{file.Path}: sparse tensor '{t.Name}' has no entry for '{weight}' in metadata '{MetadataKey}'", t.Name);
                    if ((l.Format == WeightFormat.Bsr) != s.StartsWith(".bsr", StringComparison.Ordinal))
                        throw new ModelException($"{file.Path}: sparse tensor '{t.Name}' does not match the {l.Describe()} format '{MetadataKey}' gives '{weight}'", t.Name);
                }
        foreach (var (weight, _) in layouts)
            if (file.Contains(weight)) throw new ModelException($"{file.Path}: '{weight}' is stored both dense and sparse", weight);
        return layouts;
    }

    static StoredLayout Parse(string path, string weight, JsonElement e)
    {
        ModelException Bad(string what) => new($"{path}: metadata '{MetadataKey}' for '{weight}': {what}", weight);
        if (e.ValueKind != JsonValueKind.Object) throw Bad("must be an object");
        string format = e.TryGetProperty("format", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString()! : throw Bad("'format' must be \"bsr\" or \"unstructured\"");
        long[] Longs(string name, int count)
        {
            if (!e.TryGetProperty(name, out var a) || a.ValueKind != JsonValueKind.Array || a.GetArrayLength() != count)
                throw Bad($"'{name}' must be an array of {count} integers");
            return a.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long x) ? x : throw Bad($"'{name}' must be an array of {count} integers")).ToArray();
        }
        var shape = Longs("shape", 2);
        if (shape[0] < 1 || shape[1] < 1 || shape[0] > MaxDenseElements || shape[1] > MaxDenseElements || shape[0] * shape[1] > MaxDenseElements)
            throw Bad($"shape [{shape[0]},{shape[1]}] is not a weight shape of at most {MaxDenseElements} elements");
        double density = e.TryGetProperty("density", out var d) && d.ValueKind == JsonValueKind.Number ? d.GetDouble() : throw Bad("'density' must be a number");
        if (!(density >= 0 && density <= 1)) throw Bad($"density {density} is outside [0, 1]");
        switch (format)
        {
            case "bsr":
                var block = Longs("block", 2);
                if (block[0] < 1 || block[1] < 1 || block[0] > MaxBlockSide || block[1] > MaxBlockSide)
                    throw Bad($"block shape {block[0]}×{block[1]} must be positive and at most {MaxBlockSide}");
                return new StoredLayout(WeightFormat.Bsr, (int)block[0], (int)block[1], shape[0], shape[1], density);
            case "unstructured":
                return new StoredLayout(WeightFormat.Unstructured, 1, 1, shape[0], shape[1], density);
            default:
                throw Bad($"unknown format '{format}' (bsr or unstructured)");
        }
    }

    /// <summary>The dense [rows, cols] weight a stored layout encodes, after checking every index and count.</summary>
    public static float[] Densify(SafeTensorsFile file, string weight, StoredLayout l)
    {
        string prefix = weight + (l.Format == WeightFormat.Bsr ? ".bsr" : ".csr");
        string valuesName = prefix + "_values", colsName = prefix + "_col_indices", rowPtrName = prefix + "_row_ptr";
        foreach (var t in new[] { valuesName, colsName, rowPtrName })
            if (!file.Contains(t)) throw new ModelException($"{file.Path}: '{weight}' is stored {l.Describe()} but tensor '{t}' is missing", t);
        int n = (int)l.Rows, k = (int)l.Cols;   // bounded by MaxElements in Parse
        var values = file.GetFloats(valuesName);
        var cols = I32(file, colsName);
        var rowPtr = I32(file, rowPtrName);
        var shape = file.Info(valuesName).Shape;
        string ArrayName(string? param) => param switch { "rowPtr" => rowPtrName, "colIndices" => colsName, _ => valuesName };
        var dense = new float[(long)n * k];
        try
        {
            if (l.Format == WeightFormat.Bsr)
            {
                int bh = l.BlockHeight, bw = l.BlockWidth;
                if (shape.Length != 3 || shape[1] != bh || shape[2] != bw)
                    throw new ModelException($"{file.Path}: tensor '{valuesName}' has shape [{string.Join(",", shape)}], expected [kept, {bh}, {bw}]", valuesName);
                BsrLinear.Validate(values.Length, cols, rowPtr, n, k, bh, bw);
                long blockRows = (n + (long)bh - 1) / bh, blockCols = (k + (long)bw - 1) / bw;
                CheckDensity(file.Path, weight, l, cols.Length / ((double)blockRows * blockCols));
                for (int br = 0; br < blockRows; br++)
                    for (int b = rowPtr[br]; b < rowPtr[br + 1]; b++)
                    {
                        int r0 = br * bh, c0 = cols[b] * bw, w = Math.Min(bw, k - c0);
                        for (int r = 0; r < Math.Min(bh, n - r0); r++)
                            values.Slice((int)(b * (long)bh * bw + r * bw), w).CopyTo(dense.AsSpan((int)((long)(r0 + r) * k + c0), w));
                    }
            }
            else
            {
                if (shape.Length != 1) throw new ModelException($"{file.Path}: tensor '{valuesName}' has shape [{string.Join(",", shape)}], expected [nnz]", valuesName);
                CsrLinear.Validate(values.Length, cols, rowPtr, n, k);
                CheckDensity(file.Path, weight, l, cols.Length / ((double)n * k));
                for (int i = 0; i < n; i++)
                    for (int p = rowPtr[i]; p < rowPtr[i + 1]; p++) dense[(long)i * k + cols[p]] = values[p];
            }
        }
        catch (ArgumentException e)
        {
            string t = ArrayName(e.ParamName);
            throw new ModelException($"{file.Path}: tensor '{t}': {e.Message.Split(" (Parameter")[0]}", t);
        }
        return dense;
    }

    static ReadOnlySpan<int> I32(SafeTensorsFile file, string name)
    {
        var info = file.Info(name);
        if (info.DType != DType.I32) throw new ModelException($"{file.Path}: tensor '{name}' is {info.DType}; sparse index data must be I32", name);
        if (info.Shape.Length != 1) throw new ModelException($"{file.Path}: tensor '{name}' has shape {info.ShapeText}; index data is one-dimensional", name);
        return file.GetI32(name);
    }

    static void CheckDensity(string path, string weight, StoredLayout l, double actual)
    {
        if (Math.Abs(actual - l.Density) > 1e-4)
            throw new ModelException($"{path}: metadata '{MetadataKey}' gives '{weight}' density {l.Density.ToString("0.####", CultureInfo.InvariantCulture)}, but its data keeps {actual.ToString("0.####", CultureInfo.InvariantCulture)}", weight);
    }

    /// <summary>The tensors and the metadata entry that store a dense W[rows, cols] in the given format.</summary>
    public static (List<TensorToWrite> Tensors, StoredLayout Layout) Encode(string weight, ReadOnlySpan<float> w, int rows, int cols, WeightFormat format, int bh, int bw, DType dtype)
    {
        if (format == WeightFormat.Bsr)
        {
            var (values, colIdx, rowPtr) = BsrLinear.ToBlocks(w, rows, cols, bh, bw);
            long total = (long)(rowPtr.Length - 1) * ((cols + bw - 1) / bw);
            return ([
                new TensorToWrite(weight + ".bsr_values", [colIdx.Length, bh, bw], values, dtype),
                TensorToWrite.Int32(weight + ".bsr_col_indices", [colIdx.Length], colIdx),
                TensorToWrite.Int32(weight + ".bsr_row_ptr", [rowPtr.Length], rowPtr),
            ], new StoredLayout(WeightFormat.Bsr, bh, bw, rows, cols, colIdx.Length / (double)total));
        }
        var (v, c, r) = CsrLinear.ToCsr(w, rows, cols);
        return ([
            new TensorToWrite(weight + ".csr_values", [v.Length], v, dtype),
            TensorToWrite.Int32(weight + ".csr_col_indices", [c.Length], c),
            TensorToWrite.Int32(weight + ".csr_row_ptr", [r.Length], r),
        ], new StoredLayout(WeightFormat.Unstructured, 1, 1, rows, cols, v.Length / ((double)rows * cols)));
    }

    /// <summary>The <see cref="MetadataKey"/> entry for these layouts.</summary>
    public static string ToJson(IReadOnlyDictionary<string, StoredLayout> layouts)
    {
        using var ms = new MemoryStream();
        using (var j = new Utf8JsonWriter(ms))
        {
            j.WriteStartObject();
            foreach (var (name, l) in layouts)
            {
                j.WriteStartObject(name);
                j.WriteString("format", l.Format == WeightFormat.Bsr ? "bsr" : "unstructured");
                if (l.Format == WeightFormat.Bsr) { j.WriteStartArray("block"); j.WriteNumberValue(l.BlockHeight); j.WriteNumberValue(l.BlockWidth); j.WriteEndArray(); }
                j.WriteStartArray("shape"); j.WriteNumberValue(l.Rows); j.WriteNumberValue(l.Cols); j.WriteEndArray();
                j.WriteNumber("density", Math.Round(l.Density, 6));
                j.WriteEndObject();
            }
            j.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }
}
