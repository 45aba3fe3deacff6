using System.Runtime.InteropServices;
using Google.Protobuf;
using VitSparse.Interop.Onnx.Proto;

namespace VitSparse.Interop.Onnx;

/// <summary>
/// Builds one ONNX graph node by node: each call adds a node (or an initializer) and returns the name of the
/// value it produces, so the exporter reads like the forward pass it writes. Names are unique by construction
/// (a caller-given stem plus, where needed, a counter).
/// </summary>
internal sealed class OnnxGraphBuilder
{
    readonly GraphProto _graph;
    readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>Bytes of initializer data so far (the protobuf file's size is bounded by 2 GiB).</summary>
    public long InitializerBytes { get; private set; }

    public OnnxGraphBuilder(GraphProto graph) => _graph = graph;

    public int NodeCount => _graph.Node.Count;

    /// <summary>A fresh value name from <paramref name="stem"/>.</summary>
    string Fresh(string stem)
    {
        if (_names.Add(stem)) return stem;
        for (int i = 1; ; i++)
            if (_names.Add($"{stem}_{i}")) return $"{stem}_{i}";
    }

    /// <summary>Adds a node with one output called after <paramref name="output"/>; returns the output's name.</summary>
    public string Node(string op, string output, string[] inputs, params AttributeProto[] attributes)
    {
        string name = Fresh(output);
        var node = new NodeProto { OpType = op, Name = name };
        node.Input.AddRange(inputs);
        node.Output.Add(name);
        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
        return name;
    }

    /// <summary>A float32 initializer of shape <paramref name="dims"/>, stored little-endian in raw_data.</summary>
    public string Floats(string name, ReadOnlySpan<float> values, params long[] dims) => Raw(name, MemoryMarshal.AsBytes(values).ToArray(), dims);

    /// <summary>A float32 initializer whose little-endian bytes are <paramref name="bytes"/> (kept, not copied).</summary>
    string Raw(string name, byte[] bytes, long[] dims)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw_data is little-endian; this exporter runs on little-endian machines only");
        var t = new TensorProto { Name = Fresh(name), DataType = (int)TensorProto.Types.DataType.Float, RawData = UnsafeByteOperations.UnsafeWrap(bytes) };
        t.Dims.AddRange(dims);
        _graph.Initializer.Add(t);
        InitializerBytes += bytes.Length;
        return t.Name;
    }

    /// <summary>A float32 scalar (rank 0) initializer.</summary>
    public string Scalar(string name, float value) => Floats(name, [value]);

    /// <summary>An int64 vector initializer (shapes, axes, slice bounds).</summary>
    public string Int64s(string name, params long[] values)
    {
        var t = new TensorProto { Name = Fresh(name), DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.Add(values.Length);
        t.Int64Data.AddRange(values);
        _graph.Initializer.Add(t);
        InitializerBytes += 8L * values.Length;
        return t.Name;
    }

    /// <summary>An int64 scalar (rank 0) initializer (a Gather index that drops its axis).</summary>
    public string Int64Scalar(string name, long value)
    {
        var t = new TensorProto { Name = Fresh(name), DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Int64Data.Add(value);
        _graph.Initializer.Add(t);
        InitializerBytes += 8;
        return t.Name;
    }

    /// <summary>The transpose of a row-major [rows, cols] matrix as a [cols, rows] initializer (the B of MatMul(x, B)).</summary>
    public string Transposed(string name, ReadOnlySpan<float> w, int rows, int cols)
    {
        if ((long)rows * cols != w.Length) throw new ArgumentException($"{name}: {w.Length} values for [{rows},{cols}]");
        var bytes = new byte[4L * w.Length];
        var t = MemoryMarshal.Cast<byte, float>(bytes.AsSpan());
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
        return Raw(name, bytes, [cols, rows]);
    }

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };
    public static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };
    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    /// <summary>A float tensor value of the graph's interface; a null dimension is symbolic (<paramref name="symbol"/>).</summary>
    public static ValueInfoProto FloatValue(string name, string symbol, params long?[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is { } v ? new TensorShapeProto.Types.Dimension { DimValue = v } : new TensorShapeProto.Types.Dimension { DimParam = symbol });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }
}
