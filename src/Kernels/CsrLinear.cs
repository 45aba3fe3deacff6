using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace VitSparse.Kernels;

/// <summary>
/// A linear layer with an unstructured sparse weight: per output row, its non-zeros (values and 16-bit
/// column indices), compressed by row (CSR) and cut into segments per K block (128 or 256 features, by
/// density), each padded with zero weights to an even length. Runs feature-major like XNNPACK's f32-spmm on
/// an Xᵀ transposed once per call into 64-byte aligned per-chunk panels [K][64 tokens]: each non-zero is one
/// broadcast times 64 tokens (4 zmm or 8 ymm FMAs, each with its load folded in), so a weight costs 2 scalar
/// loads besides the vector loads; at 4 vectors, even and odd non-zeros go to two accumulator sets (8 chains).
/// Column indices are 16-bit because the index stream is the only per-non-zero traffic besides the value:
/// 6 bytes per weight instead of 8, and every ViT width fits (K ≤ 65536; wider layers stay dense).
/// </summary>
public sealed class CsrLinear : ILinear
{
    public int N { get; }
    public int K { get; }
    public SimdWidth Width { get; }
    public int NonZeros { get; }
    public double Density => NonZeros / ((double)N * K);
    public long MacsPerRow => NonZeros;

    /// <summary>Largest K a 16-bit column index addresses.</summary>
    public const int MaxK = ushort.MaxValue + 1;
    const int RowsPerItem = 16;
    /// <summary>
    /// Bytes of padded values and indices per band of row groups. Going chunk-major over all N rows re-read
    /// every weight from L3 or memory once per chunk (DeiT-B: 5–7 MB per layer at half density, 0.75× of dense);
    /// within a band the chunks reuse them from L2 (measured: 128–512 KB bands alike, ~1.05×).
    /// </summary>
    const int WeightBandBytes = 128 * 1024;
    /// <summary>Row groups per band: as many as have their values and indices in <see cref="WeightBandBytes"/>.</summary>
    readonly int _bandGroups;
    /// <summary>Features of K per pass over a chunk's panel (see <see cref="KBlockFor"/>).</summary>
    internal int KBlock { get; }
    /// <summary>Every segment's length is a multiple of this (padded with zero weights), so the kernel's 2-way unrolled loop needs no remainder.</summary>
    const int Quantum = 2;
    readonly int _kBlocks;
    readonly int[] _segPtr;     // [N][kBlocks + 1]: row i's non-zeros in K block kb are [segPtr[i][kb], segPtr[i][kb + 1])
    readonly ushort[] _cols;    // per segment, sorted and unique, then padding that repeats the last column
    readonly float[] _values;   // per segment, then padding zeros
    readonly float[] _bias;     // [N]

    CsrLinear(int n, int k, SimdWidth width, ReadOnlySpan<int> rowPtr, ReadOnlySpan<int> cols, ReadOnlySpan<float> values, float[] bias)
    {
        N = n; K = k; Width = width; _bias = bias; NonZeros = values.Length;
        KBlock = KBlockFor(values.Length / ((double)n * k));
        _kBlocks = (k + KBlock - 1) / KBlock;
        _segPtr = new int[checked(n * (_kBlocks + 1))];
        // First pass: segment bounds in the real data and the padded length.
        var bounds = new int[n * (_kBlocks + 1)];
        long padded = 0;
        for (int i = 0; i < n; i++)
        {
            int p = rowPtr[i];
            for (int kb = 0; kb < _kBlocks; kb++)
            {
                bounds[i * (_kBlocks + 1) + kb] = p;
                int q = p;
                while (q < rowPtr[i + 1] && cols[q] < (kb + 1) * KBlock) q++;
                padded += (q - p + Quantum - 1) / Quantum * Quantum;
                p = q;
            }
            bounds[i * (_kBlocks + 1) + _kBlocks] = rowPtr[i + 1];
        }
        _cols = new ushort[padded];
        _values = new float[padded];
        int o = 0;
        for (int i = 0; i < n; i++)
        {
            for (int kb = 0; kb < _kBlocks; kb++)
            {
                int p0 = bounds[i * (_kBlocks + 1) + kb], p1 = bounds[i * (_kBlocks + 1) + kb + 1];
                _segPtr[i * (_kBlocks + 1) + kb] = o;
                for (int p = p0; p < p1; p++, o++) { _cols[o] = (ushort)cols[p]; _values[o] = values[p]; }
                for (int pad = (p1 - p0) % Quantum; pad != 0 && pad < Quantum; pad++, o++) _cols[o] = (ushort)cols[p1 - 1];
            }
            _segPtr[i * (_kBlocks + 1) + _kBlocks] = o;
        }
        long bytesPerGroup = Math.Max(1, padded * 6 * RowsPerItem / n);
        _bandGroups = (int)Math.Clamp(WeightBandBytes / bytesPerGroup, 1, (n + RowsPerItem - 1) / RowsPerItem);
    }

    /// <summary>From CSR arrays: values [nnz], colIndices [nnz] sorted and unique per row, rowPtr [n + 1]; all checked here.</summary>
    public static CsrLinear FromCsr(ReadOnlySpan<float> values, ReadOnlySpan<int> colIndices, ReadOnlySpan<int> rowPtr, int n, int k, ReadOnlySpan<float> bias, SimdWidth width = 0)
    {
        if (k > MaxK) throw new ArgumentOutOfRangeException(nameof(k), k, $"input width must be in [1, {MaxK}] for 16-bit column indices");
        Validate(values.Length, colIndices, rowPtr, n, k);
        if (!bias.IsEmpty && bias.Length != n) throw new ArgumentException($"bias has {bias.Length} elements, expected {n}", nameof(bias));
        if (width == 0) width = Isa.Best == SimdWidth.Scalar ? SimdWidth.V128 : Isa.Best;
        var b = new float[n];
        bias.CopyTo(b);
        return new CsrLinear(n, k, width, rowPtr, colIndices, values, b);
    }

    /// <summary>Checks CSR index data against an n×k weight; the exception's ParamName says which array is wrong.</summary>
    public static void Validate(int valueCount, ReadOnlySpan<int> colIndices, ReadOnlySpan<int> rowPtr, int n, int k)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "output width must be positive");
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "input width must be positive");
        if (rowPtr.Length != (long)n + 1) throw new ArgumentException($"row pointers have {rowPtr.Length} entries, expected {(long)n + 1}", nameof(rowPtr));
        if (rowPtr[0] != 0) throw new ArgumentException($"row pointers start at {rowPtr[0]}, not 0", nameof(rowPtr));
        for (int i = 0; i < n; i++)
            if (rowPtr[i + 1] < rowPtr[i]) throw new ArgumentException($"row pointers decrease at row {i} ({rowPtr[i]} → {rowPtr[i + 1]})", nameof(rowPtr));
        int nnz = colIndices.Length;
        if (rowPtr[n] != nnz) throw new ArgumentException($"row pointers end at {rowPtr[n]}, but there are {nnz} column indices", nameof(rowPtr));
        if (valueCount != nnz) throw new ArgumentException($"values hold {valueCount} floats, expected one per column index ({nnz})", "values");
        for (int i = 0; i < n; i++)
            for (int p = rowPtr[i]; p < rowPtr[i + 1]; p++)
            {
                int c = colIndices[p];
                if (c < 0 || c >= k) throw new ArgumentException($"column index {c} (non-zero {p}, row {i}) is outside [0, {k})", nameof(colIndices));
                if (p > rowPtr[i] && c <= colIndices[p - 1])
                    throw new ArgumentException($"column indices of row {i} are {(c == colIndices[p - 1] ? "duplicated" : "unsorted")} at non-zero {p} ({colIndices[p - 1]} then {c})", nameof(colIndices));
            }
    }

    /// <summary>Keeps the non-zeros of a dense W[n,k] (−0 counts as zero).</summary>
    public static CsrLinear FromDense(ReadOnlySpan<float> weight, int n, int k, ReadOnlySpan<float> bias, SimdWidth width = 0)
    {
        var (values, cols, rowPtr) = ToCsr(weight, n, k);
        return FromCsr(values, cols, rowPtr, n, k, bias, width);
    }

    /// <summary>Dense W[n,k] → CSR arrays.</summary>
    public static (float[] Values, int[] ColIndices, int[] RowPtr) ToCsr(ReadOnlySpan<float> weight, int n, int k)
    {
        if (weight.Length != (long)n * k) throw new ArgumentException($"weight has {weight.Length} elements, expected {n}×{k}", nameof(weight));
        int nnz = 0;
        foreach (float v in weight) if (v != 0f) nnz++;
        var values = new float[nnz];
        var cols = new int[nnz];
        var rowPtr = new int[n + 1];
        int p = 0;
        for (int i = 0; i < n; i++)
        {
            var row = weight.Slice(i * k, k);
            for (int j = 0; j < k; j++)
                if (row[j] != 0f) { values[p] = row[j]; cols[p] = j; p++; }
            rowPtr[i + 1] = p;
        }
        return (values, cols, rowPtr);
    }

    /// <summary>The weight as dense W [N,K] row-major and the bias [N] again.</summary>
    public void CopyDense(Span<float> weight, Span<float> bias)
    {
        if (weight.Length < (long)N * K || bias.Length < N) throw new ArgumentException($"needs {N}×{K} weights and {N} biases");
        weight[..(N * K)].Clear();
        for (int i = 0; i < N; i++)
            for (int p = _segPtr[i * (_kBlocks + 1)]; p < _segPtr[i * (_kBlocks + 1) + _kBlocks]; p++)
                if (_values[p] != 0f) weight[i * K + _cols[p]] = _values[p]; // padding repeats a column with a zero
        _bias.AsSpan(0, N).CopyTo(bias);
    }

    /// <summary>Token vectors per chunk: 64 tokens at 256 and 512 bits (4 zmm or 8 ymm per non-zero), 16 at 128.</summary>
    static int ChunkVectorsOf(SimdWidth w) => w switch { SimdWidth.V512 => 4, SimdWidth.V256 => 8, _ => 4 };

    /// <summary>
    /// K block by density, measured on Zen 4 (README "Sparse linears"): 128 features × 64 tokens × 4 bytes =
    /// 32 KB, the L1, is the largest block whose rows stay there; every (row, block) segment costs a loop
    /// exit (a mispredicted branch) and a tile round trip, so below ~0.375 density, where a 128-wide segment
    /// holds fewer than 48 non-zeros, blocks of 256 (fewer, longer segments, rows partly from L2) win.
    /// </summary>
    internal static int KBlockFor(double density) => density * 128 >= 48 ? 128 : 256;

    public void Forward(ReadOnlySpan<float> x, int m, int ldx, Span<float> y, int ldy, Epilogue epilogue, ThreadTeam team)
    {
        if (m <= 0) return;
        FeatureMajor.CheckArguments(N, K, x, m, ldx, y, ldy);
        int lanes = Isa.LanesOf(Width), chunkVectors = ChunkVectorsOf(Width);
        int vectors = (m + lanes - 1) / lanes, chunks = (vectors + chunkVectors - 1) / chunkVectors;
        // One Xᵀ for the team, or one per worker (see FeatureMajor.PerWorkerThreads), with a done flag per (copy, chunk).
        long copyFloats = (FeatureMajor.TransposedLength(K, vectors * lanes) + 15L) / 16 * 16;
        var xt = FeatureMajor.TransposeBuffer(team, copyFloats, chunks, out int copies);
        unsafe
        {
            fixed (float* px = x)
            fixed (float* py = y)
            fixed (float* pxt = xt)
            fixed (float* values = _values)
            fixed (ushort* cols = _cols)
            fixed (float* bias = _bias)
            fixed (int* segPtr = _segPtr)
            {
                // Panels start on 64-byte lines and their rows on vector boundaries, so no vector load splits a line.
                float* panels = FeatureMajor.AlignUp(pxt);
                int* done = FeatureMajor.DoneFlags(panels, copyFloats, copies, chunks);
                var transpose = new PanelTranspose(px, m, ldx, K, panels, lanes, vectors, chunks);
                if (done == null)   // one shared Xᵀ, transposed up front; else each worker transposes what its items need
                {
                    if ((long)vectors * lanes * K <= ThreadTeam.CallerFloats) team.OnCaller(chunks, transpose);
                    else team.For(chunks, transpose);
                }
                int rowGroups = (N + RowsPerItem - 1) / RowsPerItem;
                team.For(rowGroups * chunks, new Body(this, transpose, done, copyFloats, m, py, ldy, epilogue, chunks, vectors, chunkVectors * lanes,
                    values, cols, bias, segPtr, team));
            }
        }
    }

    /// <summary>Token vectors [v0, v0 + vecs) of chunk c: the vectors split evenly (13 → 4,3,3,3), so threads get equal work.</summary>
    static (int V0, int Vecs) ChunkVectors(int c, int vectors, int chunks)
    {
        int v0 = (int)((long)c * vectors / chunks);
        return (v0, (int)((long)(c + 1) * vectors / chunks) - v0);
    }

    /// <summary>
    /// Xᵀ in one panel per chunk: chunk c (tokens t0.., ct of them) lives at xt + K·t0 as [K][ct], so the
    /// rows of a K block that a work item touches are one contiguous stretch of memory (no L1 set conflicts,
    /// sequential lines) and row kk of the panel is kk·ct floats in. Tokens past m are zero.
    /// </summary>
    readonly unsafe struct PanelTranspose(float* x, int m, int ldx, int k, float* xt, int lanes, int vectors, int chunks) : IRangeBody
    {
        /// <summary>The shared Xᵀ (the first worker's copy when each has its own).</summary>
        public float* Xt => xt;

        public void Run(int start, int end, int worker)
        {
            for (int c = start; c < end; c++) Chunk(c, xt);
        }

        /// <summary>Chunk c into the Xᵀ at <paramref name="into"/> (the shared one or a worker's own copy).</summary>
        public void Chunk(int c, float* into)
        {
            var (v0, vecs) = ChunkVectors(c, vectors, chunks);
            int t0 = v0 * lanes, ct = vecs * lanes, tokens = Math.Min(ct, m - t0);
            float* panel = into + (long)k * t0;
            // Whole 8×8 blocks with AVX shuffles; the ragged rest (and the zero tokens past m) element by element.
            int full = Transpose8x8.IsSupported ? tokens / 8 * 8 : 0, k8 = Transpose8x8.IsSupported ? k / 8 * 8 : 0;
            for (int j0 = 0; j0 < full; j0 += 8)
            {
                float* src = x + (long)(t0 + j0) * ldx;
                for (int kk = 0; kk < k8; kk += 8) Transpose8x8.Block(src + kk, ldx, panel + (long)kk * ct + j0, ct);
                for (int kk = k8; kk < k; kk++)
                    for (int j = 0; j < 8; j++) panel[(long)kk * ct + j0 + j] = src[(long)j * ldx + kk];
            }
            // 16 tokens at a time: 16 source rows read side by side stay in L1 while kk walks along them.
            for (int j0 = full; j0 < ct; j0 += 16)
            {
                int jEnd = Math.Min(j0 + 16, ct), jReal = Math.Min(jEnd, tokens);
                float* dst = panel + j0;
                for (int kk = 0; kk < k; kk++, dst += ct)
                {
                    float* src = x + (long)(t0 + j0) * ldx + kk;
                    int j = j0;
                    for (; j < jReal; j++) dst[j - j0] = src[(long)(j - j0) * ldx];
                    for (; j < jEnd; j++) dst[j - j0] = 0f;
                }
            }
        }
    }

    /// <summary>
    /// One work item = 16 output rows × one chunk of tokens, chunk-major within a band of row groups. Within an item, K goes in blocks of
    /// <see cref="KBlock"/> features: the block of the panel serves all 16 rows from L1, where the whole
    /// panel (K rows) would stream from L2 for every row; partial sums wait in the tile.
    /// </summary>
    unsafe readonly struct Body(CsrLinear w, PanelTranspose transpose, int* done, long copyFloats, int m, float* y, int ldy, Epilogue ep, int chunks, int vectors,
        int chunkTokens, float* values, ushort* cols, float* bias, int* segPtr, ThreadTeam team) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            switch (w.Width)
            {
                case SimdWidth.V512: Loop<V512, Vector512<float>>(start, end, worker); break;
                case SimdWidth.V256: Loop<V256, Vector256<float>>(start, end, worker); break;
                default: Loop<V128, Vector128<float>>(start, end, worker); break;
            }
        }

        void Loop<TOps, TV>(int start, int end, int worker) where TOps : struct, IVec<TV> where TV : struct
        {
            int vc = TOps.Count, kBlocks = w._kBlocks, rowGroups = (w.N + RowsPerItem - 1) / RowsPerItem;
            int bandGroups = w._bandGroups, perBand = bandGroups * chunks;
            fixed (float* tileBase = team.Scratch(worker, RowsPerItem * chunkTokens + FeatureMajor.AlignFloats))
            {
                float* tile = FeatureMajor.AlignUp(tileBase);
                for (int item = start; item < end; item++)
                {
                    // Items go chunk-major within a band of row groups whose weights fit L2 (see WeightBandBytes).
                    int band = item / perBand, rem = item % perBand, g0 = band * bandGroups, groups = Math.Min(bandGroups, rowGroups - g0);
                    int c = rem / groups, n0 = (g0 + rem % groups) * RowsPerItem, rows = Math.Min(RowsPerItem, w.N - n0);
                    var (v0, vecs) = ChunkVectors(c, vectors, chunks);
                    int m0 = v0 * vc, ct = vecs * vc, tokens = Math.Min(ct, m - m0);
                    float* xt = transpose.Xt;
                    if (done != null)
                    {
                        // This worker's own Xᵀ: each chunk transposed the first time one of its items needs it.
                        xt += worker * copyFloats;
                        if (done[worker * chunks + c] == 0) { transpose.Chunk(c, xt); done[worker * chunks + c] = 1; }
                    }
                    float* panel = xt + (long)w.K * m0;
                    for (int kb = 0; kb < kBlocks; kb++)
                    {
                        int* seg = segPtr + (long)n0 * (kBlocks + 1) + kb;
                        bool first = kb == 0;
                        switch (vecs)
                        {
                            case 8: Block<TOps, TV, Vecs8>(seg, kBlocks + 1, rows, panel, ct, tile, chunkTokens, first); break;
                            case 7: Block<TOps, TV, Vecs7>(seg, kBlocks + 1, rows, panel, ct, tile, chunkTokens, first); break;
                            case 6: Block<TOps, TV, Vecs6>(seg, kBlocks + 1, rows, panel, ct, tile, chunkTokens, first); break;
                            case 5: Block<TOps, TV, Vecs5>(seg, kBlocks + 1, rows, panel, ct, tile, chunkTokens, first); break;
                            case 4: Block<TOps, TV, Vecs4>(seg, kBlocks + 1, rows, panel, ct, tile, chunkTokens, first); break;
                            case 3: Block<TOps, TV, Vecs3>(seg, kBlocks + 1, rows, panel, ct, tile, chunkTokens, first); break;
                            case 2: Block<TOps, TV, Vecs2>(seg, kBlocks + 1, rows, panel, ct, tile, chunkTokens, first); break;
                            default: Block<TOps, TV, Vecs1>(seg, kBlocks + 1, rows, panel, ct, tile, chunkTokens, first); break;
                        }
                    }
                    FeatureMajor.FinishTile<TOps, TV>(tile, chunkTokens, rows, vecs, bias + n0, ep);
                    FeatureMajor.WriteOut(tile, chunkTokens, rows, tokens, y + (long)m0 * ldy + n0, ldy, ep);
                }
            }
        }

        /// <summary>
        /// tileRow (=, or += after the first K block) Σ over non-zeros [p0, p1) of value × panel row, for TC
        /// token vectors. Up to 4 vectors, even and odd non-zeros go to separate accumulators (8 FMA chains);
        /// 5 to 8 vectors are enough chains by themselves.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Block<TOps, TV, TC>(int* seg, int segStride, int rows, float* panel, nint ld, float* tile, int tileStride, bool first) where TOps : struct, IVec<TV> where TV : struct where TC : struct, IRows
        {
          int vc = TOps.Count;
          float* vals = values;
          ushort* idx = cols;
          for (int r = 0; r < rows; r++, seg += segStride)
          {
            int p0 = seg[0], p1 = seg[1];
            float* tileRow = tile + r * tileStride;
            TV a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero, a4 = TOps.Zero, a5 = TOps.Zero, a6 = TOps.Zero, a7 = TOps.Zero;
            TV b0 = TOps.Zero, b1 = TOps.Zero, b2 = TOps.Zero, b3 = TOps.Zero;
            if (!first)
            {
                a0 = TOps.Load(ref *tileRow);
                if (TC.Value > 1) a1 = TOps.Load(ref *(tileRow + vc));
                if (TC.Value > 2) a2 = TOps.Load(ref *(tileRow + 2 * vc));
                if (TC.Value > 3) a3 = TOps.Load(ref *(tileRow + 3 * vc));
                if (TC.Value > 4) a4 = TOps.Load(ref *(tileRow + 4 * vc));
                if (TC.Value > 5) a5 = TOps.Load(ref *(tileRow + 5 * vc));
                if (TC.Value > 6) a6 = TOps.Load(ref *(tileRow + 6 * vc));
                if (TC.Value > 7) a7 = TOps.Load(ref *(tileRow + 7 * vc));
            }
            // Segments hold an even number of entries (zero-weight padding), so no remainder loop and one loop exit per segment.
            if (TC.Value <= 4)
            {
                for (int p = p0; p < p1; p += 2)
                {
                    float* xa = panel + idx[p] * ld, xb = panel + idx[p + 1] * ld;
                    TV s = TOps.Broadcast(vals[p]), u = TOps.Broadcast(vals[p + 1]);
                    a0 = Mac<TOps, TV>(a0, s, xa);
                    b0 = Mac<TOps, TV>(b0, u, xb);
                    if (TC.Value > 1) { a1 = Mac<TOps, TV>(a1, s, xa + vc); b1 = Mac<TOps, TV>(b1, u, xb + vc); }
                    if (TC.Value > 2) { a2 = Mac<TOps, TV>(a2, s, xa + 2 * vc); b2 = Mac<TOps, TV>(b2, u, xb + 2 * vc); }
                    if (TC.Value > 3) { a3 = Mac<TOps, TV>(a3, s, xa + 3 * vc); b3 = Mac<TOps, TV>(b3, u, xb + 3 * vc); }
                }
            }
            else
            {
                for (int p = p0; p < p1; p++)
                {
                    float* xa = panel + idx[p] * ld;
                    TV s = TOps.Broadcast(vals[p]);
                    a0 = Mac<TOps, TV>(a0, s, xa);
                    a1 = Mac<TOps, TV>(a1, s, xa + vc);
                    a2 = Mac<TOps, TV>(a2, s, xa + 2 * vc);
                    a3 = Mac<TOps, TV>(a3, s, xa + 3 * vc);
                    a4 = Mac<TOps, TV>(a4, s, xa + 4 * vc);
                    if (TC.Value > 5) a5 = Mac<TOps, TV>(a5, s, xa + 5 * vc);
                    if (TC.Value > 6) a6 = Mac<TOps, TV>(a6, s, xa + 6 * vc);
                    if (TC.Value > 7) a7 = Mac<TOps, TV>(a7, s, xa + 7 * vc);
                }
            }
            if (TC.Value <= 4) { a0 = TOps.Add(a0, b0); a1 = TOps.Add(a1, b1); a2 = TOps.Add(a2, b2); a3 = TOps.Add(a3, b3); }
            TOps.Store(ref *tileRow, a0);
            if (TC.Value > 1) TOps.Store(ref *(tileRow + vc), a1);
            if (TC.Value > 2) TOps.Store(ref *(tileRow + 2 * vc), a2);
            if (TC.Value > 3) TOps.Store(ref *(tileRow + 3 * vc), a3);
            if (TC.Value > 4) TOps.Store(ref *(tileRow + 4 * vc), a4);
            if (TC.Value > 5) TOps.Store(ref *(tileRow + 5 * vc), a5);
            if (TC.Value > 6) TOps.Store(ref *(tileRow + 6 * vc), a6);
            if (TC.Value > 7) TOps.Store(ref *(tileRow + 7 * vc), a7);
          }
        }
    }

    /// <summary>
    /// acc + s × the vector at x. On x86 with FMA it calls the fused instruction directly, which lets the JIT
    /// fold the load into vfmadd231ps (through the generic Fma it emitted load, fma213 and a register move).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe TV Mac<TOps, TV>(TV acc, TV s, float* x) where TOps : struct, IVec<TV> where TV : struct
    {
        if (typeof(TV) == typeof(Vector512<float>) && Avx512F.IsSupported)
            return Unsafe.BitCast<Vector512<float>, TV>(Avx512F.FusedMultiplyAdd(Unsafe.BitCast<TV, Vector512<float>>(s), Avx512F.LoadVector512(x), Unsafe.BitCast<TV, Vector512<float>>(acc)));
        if (typeof(TV) == typeof(Vector256<float>) && Fma.IsSupported)
            return Unsafe.BitCast<Vector256<float>, TV>(Fma.MultiplyAdd(Unsafe.BitCast<TV, Vector256<float>>(s), Avx.LoadVector256(x), Unsafe.BitCast<TV, Vector256<float>>(acc)));
        if (typeof(TV) == typeof(Vector128<float>) && Fma.IsSupported)
            return Unsafe.BitCast<Vector128<float>, TV>(Fma.MultiplyAdd(Unsafe.BitCast<TV, Vector128<float>>(s), Sse.LoadVector128(x), Unsafe.BitCast<TV, Vector128<float>>(acc)));
        return TOps.Fma(s, TOps.Load(ref *x), acc);
    }

    // Token-vector counts of a chunk, as type arguments so the JIT unrolls each case (named apart from the dense kernel's row tags).
    struct Vecs1 : IRows { public static int Value => 1; }
    struct Vecs2 : IRows { public static int Value => 2; }
    struct Vecs3 : IRows { public static int Value => 3; }
    struct Vecs4 : IRows { public static int Value => 4; }
    struct Vecs5 : IRows { public static int Value => 5; }
    struct Vecs6 : IRows { public static int Value => 6; }
    struct Vecs7 : IRows { public static int Value => 7; }
    struct Vecs8 : IRows { public static int Value => 8; }
}
