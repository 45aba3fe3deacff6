using BenchmarkDotNet.Attributes;
using VitSparse.Kernels;

namespace VitSparse.Bench.Suites;

/// <summary>Single-thread GEMM Y = X·Wᵀ + b on the DeiT-S shapes and the ragged SNP shapes, per vector width.</summary>
public class GemmBenchmarks
{
    public static readonly (string Name, int M, int K, int N)[] Shapes =
    [
        ("qkv 197×384→1152", 197, 384, 1152), ("proj 197×384→384", 197, 384, 384), ("fc1 197×384→1536", 197, 384, 1536),
        ("fc2 197×1536→384", 197, 1536, 384), ("snp fc1 197×307→1228", 197, 307, 1228), ("snp qk 197×307→150", 197, 307, 150),
        ("snp fc2 197×1228→307", 197, 1228, 307),
    ];

    [ParamsSource(nameof(ShapeNames))] public string Shape { get; set; } = "";
    [ParamsSource(nameof(WidthValues))] public SimdWidth Width { get; set; }

    public static IEnumerable<string> ShapeNames => Shapes.Select(s => s.Name);
    public static IEnumerable<SimdWidth> WidthValues => [SimdWidth.V512, SimdWidth.V256, SimdWidth.V128];

    PackedLinear _w = null!;
    float[] _x = [], _y = [];
    int _m, _k, _n;

    [GlobalSetup]
    public void Setup()
    {
        (_, _m, _k, _n) = Shapes.Single(s => s.Name == Shape);
        var r = new Random(1);
        _x = Enumerable.Range(0, _m * _k).Select(_ => (float)r.NextDouble() - 0.5f).ToArray();
        var w = Enumerable.Range(0, _n * _k).Select(_ => (float)r.NextDouble() - 0.5f).ToArray();
        _w = PackedLinear.Pack(w, _n, _k, new float[_n], Width);
        _y = new float[_m * _n];
    }

    [Benchmark] public void Linear() => _w.Forward(_x, _m, _k, _y, _n, Epilogue.Bias, ThreadTeam.Single);

    public static double Flops(string shape) { var s = Shapes.Single(x => x.Name == shape); return 2.0 * s.M * s.K * s.N; }
}

/// <summary>Single-thread ragged attention: DeiT-S's uniform 6×64 heads and SNP's 6 heads of Q/K 25, V 38 (N = 197).</summary>
public class AttentionBenchmarks
{
    [Params("uniform 6×(64,64)", "snp 6×(25,38)")] public string Heads { get; set; } = "";

    HeadLayout _layout = null!;
    RaggedAttention _attention = null!;
    float[] _qkv = [], _out = [];
    const int Tokens = 197;

    [GlobalSetup]
    public void Setup()
    {
        bool snp = Heads.StartsWith("snp", StringComparison.Ordinal);
        _layout = new HeadLayout(Enumerable.Repeat(snp ? 25 : 64, 6).ToArray(), Enumerable.Repeat(snp ? 38 : 64, 6).ToArray());
        var r = new Random(2);
        _qkv = Enumerable.Range(0, Tokens * _layout.RowWidth).Select(_ => (float)r.NextDouble() - 0.5f).ToArray();
        _out = new float[Tokens * _layout.VTotal];
        _attention = new RaggedAttention(Tokens, _layout.MaxQk, _layout.MaxV, 1);
    }

    [Benchmark] public void Attention() => _attention.Forward(_layout, _qkv, 1, _layout.RowWidth, 0.125f, _out, _layout.VTotal, ThreadTeam.Single);

    public static double Flops(string heads)
    {
        bool snp = heads.StartsWith("snp", StringComparison.Ordinal);
        return 2.0 * Tokens * Tokens * 6 * ((snp ? 25 : 64) + (snp ? 38 : 64));
    }
}

/// <summary>LayerNorm and GELU on a DeiT-S activation (197×384 and 197×1536), single thread.</summary>
public class ElementwiseBenchmarks
{
    float[] _x = [], _y = [], _g = [], _b = [], _h = [];

    [GlobalSetup]
    public void Setup()
    {
        var r = new Random(3);
        _x = Enumerable.Range(0, 197 * 384).Select(_ => (float)r.NextDouble()).ToArray();
        _y = new float[_x.Length];
        _g = Enumerable.Repeat(1f, 384).ToArray();
        _b = new float[384];
        _h = Enumerable.Range(0, 197 * 1536).Select(_ => (float)r.NextDouble() * 6 - 3).ToArray();
    }

    [Benchmark] public void LayerNorm197x384() => LayerNorm.Forward(_x, 197, 384, 384, _g, _b, 1e-6f, _y, 384, ThreadTeam.Single);
    [Benchmark] public void Gelu197x1536() => Gelu.InPlace(_h);
}
