using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using VitSparse.Kernels;

namespace VitSparse.Training;

/// <summary>
/// The register-tiled product behind <see cref="DenseLinear"/>: C[rows, cols] = A·B (+ bias per column), with
/// A(r, i) = a[r·aRow + i·aInner] (so Aᵀ reads in place) and B row-major [inner, ldb]. One work item is a tile
/// of <see cref="Rows"/> rows × one panel of two vectors of columns (the machine's best width), computed in a
/// 12-accumulator micro-kernel; the last columns of a panel take a one-vector kernel and then a scalar loop.
/// The inner index runs in blocks (outermost); partial sums wait in C between blocks, so every element still
/// sums in plain inner order. The tiling depends on the vector width only, never on the team, so results are
/// bit-identical for any thread count.
/// </summary>
public static unsafe class TiledProduct
{
    /// <summary>Rows per tile: 6 rows × 2 vectors is 12 accumulators, leaving registers for B and A's broadcast even with 16 vector registers.</summary>
    public const int Rows = 6;

    /// <summary>Columns per panel at the width the kernels run on.</summary>
    public static int Panel { get; } = 2 * Isa.LanesOf(Isa.Best);

    /// <summary>Work items (tiles) for a rows × cols product.</summary>
    public static int Items(int rows, int cols) => (rows + Rows - 1) / Rows * ((cols + Panel - 1) / Panel);

    /// <summary>
    /// Runs C = A·B (+ bias) on <paramref name="team"/>. With <paramref name="keep"/> (a [rows, cols] mask,
    /// 1 kept, with row stride ldc), tiles holding no kept element are zeroed without computing, and every
    /// unkept element of C is exactly zero.
    /// </summary>
    /// <remarks>
    /// B's rows are often 576 or 768 floats apart, a stride that maps a block of B onto a few L1 sets, so B is
    /// read from contiguous panel copies. With <paramref name="packed"/> (scratch of <see cref="PackedFloats"/>
    /// floats; for a small B, a weight) all of B is copied once and tiles run panel by panel within a row tile,
    /// so a row tile's block of A stays in L1 while B's panels stream from L2. Without it (B as large as A, as
    /// in dW = dYᵀ·X) tiles run row tile by row tile within a panel and each worker copies the block of the
    /// panel it is on. With <paramref name="bTransposed"/>, B(i, j) = b[j·ldb + i] (a PyTorch-layout weight
    /// read as Wᵀ), which needs <paramref name="packed"/>; the copy does the transposing.
    /// </remarks>
    public static void Run(float* a, long aRow, long aInner, float* b, int ldb, bool bTransposed, float* c, int ldc, int rows, int cols, int inner, float* bias, ThreadTeam team,
        float* packed = null, byte* keep = null)
    {
        if (bTransposed && packed == null) throw new ArgumentException("a transposed B is read through the packed copy", nameof(packed));
        if (packed != null) team.For((cols + Panel - 1) / Panel, new PackBody(b, ldb, bTransposed, cols, inner, packed));
        team.For(Items(rows, cols), new Body(a, aRow, aInner, b, ldb, packed, c, ldc, rows, cols, inner, bias, keep, Isa.Best));
    }

    /// <summary>
    /// C = A·B where B is as large as A (dW = dYᵀ·X: inner is batch·tokens): the inner index in blocks, each
    /// block of B copied once into <paramref name="blockScratch"/> (<see cref="BlockFloats"/>) by the team and
    /// then all tiles run on it, panels fastest, so a row tile's block of A stays in L1 across all panels.
    /// Sums run in the same order as <see cref="Run"/>'s: each element over inner blocks in order.
    /// </summary>
    public static void RunBlocked(float* a, long aRow, long aInner, float* b, int ldb, float* c, int ldc, int rows, int cols, int inner, ThreadTeam team, float* blockScratch, byte* keep = null)
    {
        for (int i0 = 0; i0 < inner; i0 += InnerBlock)
        {
            int i1 = Math.Min(inner, i0 + InnerBlock);
            team.For((cols + Panel - 1) / Panel, new PackBody(b + (long)i0 * ldb, ldb, false, cols, i1 - i0, blockScratch));
            team.For(Items(rows, cols), new Body(a, aRow, aInner, b, ldb, blockScratch, c, ldc, rows, cols, inner, null, keep, Isa.Best, from: i0, to: i1));
        }
    }

    /// <summary>Floats of scratch that <see cref="RunBlocked"/> needs for cols columns.</summary>
    public static long BlockFloats(int cols) => PackedFloats(InnerBlock, cols);

    /// <summary>Floats of scratch that <see cref="Run"/> needs to copy all of an inner × cols B: whole panels.</summary>
    public static long PackedFloats(int inner, int cols) => (long)inner * ((cols + Panel - 1) / Panel * Panel);

    /// <summary>C = A·B (+ bias) on the calling thread alone, B row-major and read in place (a small product inside another kernel's work item).</summary>
    public static void RunSerial(float* a, long aRow, long aInner, float* b, int ldb, float* c, int ldc, int rows, int cols, int inner, float* bias) =>
        new Body(a, aRow, aInner, b, ldb, null, c, ldc, rows, cols, inner, bias, null, Isa.Best).Run(0, Items(rows, cols), 0);

    /// <summary>Copies B's rows [i0, i1) of columns [c0, c0 + cc) to dst[(i − i0)·panel + j].</summary>
    static void Pack(float* b, long ldb, bool bTransposed, float* dst, int panel, int c0, int cc, int i0, int i1)
    {
        if (bTransposed)
            for (int j = 0; j < cc; j++)
            {
                float* src = b + (long)(c0 + j) * ldb;
                for (int i = i0; i < i1; i++) dst[(long)(i - i0) * panel + j] = src[i];
            }
        else
            for (int i = i0; i < i1; i++)
                Buffer.MemoryCopy(b + (long)i * ldb + c0, dst + (long)(i - i0) * panel, cc * sizeof(float), cc * sizeof(float));
    }

    /// <summary>All of B as panels: panel p at packed + p·inner·Panel, row i of it at + i·Panel. One item per panel.</summary>
    readonly struct PackBody(float* b, int ldb, bool bTransposed, int cols, int inner, float* packed) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            for (int p = start; p < end; p++)
                Pack(b, ldb, bTransposed, packed + (long)p * inner * Panel, Panel, p * Panel, Math.Min(Panel, cols - p * Panel), 0, inner);
        }
    }

    /// <summary>Inner elements per block: a block of one panel of B is 16 KiB, half of L1.</summary>
    static int InnerBlock => 4096 / Panel;

    /// <summary>
    /// The tiles over inner [from, to) (to = 0: all of it); B is read from <paramref name="packed"/> (B's rows
    /// [from, to) in panels, tiles panel-fastest), else in place (tiles row-tile-fastest).
    /// </summary>
    readonly struct Body(float* a, long aRow, long aInner, float* b, int ldb, float* packed, float* c, int ldc, int rows, int cols, int inner, float* bias, byte* keep, SimdWidth width,
        int from = 0, int to = 0) : IRangeBody
    {
        public void Run(int start, int end, int worker)
        {
            switch (width)
            {
                case SimdWidth.V512: Run<V512, Vector512<float>>(start, end); break;
                case SimdWidth.V256: Run<V256, Vector256<float>>(start, end); break;
                default: Run<V128, Vector128<float>>(start, end); break;
            }
        }

        void Run<TOps, TV>(int start, int end) where TOps : struct, IVec<TV> where TV : struct
        {
            int rowTiles = (rows + Rows - 1) / Rows, panels = (cols + Panel - 1) / Panel, vc = TOps.Count, panel = 2 * vc, block = InnerBlock;
            int end1 = to == 0 ? inner : to, packedRows = end1 - from;
            for (int i0 = from; i0 < end1; i0 += block)
            {
                int i1 = Math.Min(end1, i0 + block);
                bool last = i1 == inner;
                for (int item = start; item < end; item++)
                {
                    // With all of B packed, panels run fastest (A's rows stay in L1); else row tiles (B's block stays).
                    int r0 = (packed != null ? item / panels : item % rowTiles) * Rows, c0 = (packed != null ? item % panels : item / rowTiles) * panel;
                    int rr = Math.Min(Rows, rows - r0), cc = Math.Min(panel, cols - c0);
                    if (keep != null && !AnyKept(r0, c0, rr, cc))
                    {
                        if (i0 == 0) Zero(r0, c0, rr, cc);   // a fully pruned tile: nothing to compute
                        continue;
                    }
                    float* ar = a + r0 * aRow, cr = c + (long)r0 * ldc;
                    float* biasAt = last && bias != null ? bias + c0 : null;
                    // B's panel as the kernels read it: row i at bp + i·ldp (the packed copy holds rows [from, to) only).
                    float* bp = b + c0;
                    long ldp = ldb;
                    if (packed != null)
                    {
                        bp = packed + (long)c0 * packedRows - (long)from * panel;
                        ldp = panel;
                    }
                    int j = 0;
                    if (cc == panel) { Tile2<TOps, TV>(ar, aRow, aInner, bp, ldp, cr + c0, ldc, rr, i0, i1, biasAt); j = panel; }
                    else if (cc >= vc) { Tile1<TOps, TV>(ar, aRow, aInner, bp, ldp, cr + c0, ldc, rr, i0, i1, biasAt); j = vc; }
                    if (j < cc) Edge(r0, c0, j, rr, cc, i0, i1, last, bp, ldp);
                    if (keep != null && last) ApplyMask(r0, c0, rr, cc);
                }
            }
        }

        bool AnyKept(int r0, int c0, int rr, int cc)
        {
            for (int r = r0; r < r0 + rr; r++)
                for (int j = c0; j < c0 + cc; j++) if (keep[(long)r * ldc + j] != 0) return true;
            return false;
        }

        void Zero(int r0, int c0, int rr, int cc)
        {
            for (int r = r0; r < r0 + rr; r++) new Span<float>(c + (long)r * ldc + c0, cc).Clear();
        }

        void ApplyMask(int r0, int c0, int rr, int cc)
        {
            for (int r = r0; r < r0 + rr; r++)
                for (int j = c0; j < c0 + cc; j++) if (keep[(long)r * ldc + j] == 0) c[(long)r * ldc + j] = 0;
        }

        /// <summary>
        /// A panel's columns [c0 + j0, c0 + cc) that are narrower than a vector: one element at a time, still in
        /// inner order; B's panel row i is at bp + i·ldp.
        /// </summary>
        void Edge(int r0, int c0, int j0, int rr, int cc, int i0, int i1, bool last, float* bp, long ldp)
        {
            for (int r = r0; r < r0 + rr; r++)
                for (int j = j0; j < cc; j++)
                {
                    float* cj = c + (long)r * ldc + c0 + j;
                    float s = i0 > 0 ? *cj : 0;
                    float* ar = a + r * aRow;
                    for (int i = i0; i < i1; i++) s = HardwareFma.MultiplyAdd(ar[i * aInner], bp[i * ldp + j], s);
                    *cj = bias != null && last ? s + bias[c0 + j] : s;
                }
        }
    }

    /// <summary>
    /// A tile of up to 6 rows × 2 vectors over inner [i0, i1), accumulating into C when i0 &gt; 0. Rows past
    /// <paramref name="rr"/> repeat the last row's loads and are not stored.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile2<TOps, TV>(float* a, long aRow, long aInner, float* b, long ldb, float* c, long ldc, int rr, int i0, int i1, float* bias)
        where TOps : struct, IVec<TV> where TV : struct
    {
        int vc = TOps.Count;
        long o1 = Math.Min(1, rr - 1) * aRow, o2 = Math.Min(2, rr - 1) * aRow, o3 = Math.Min(3, rr - 1) * aRow,
            o4 = Math.Min(4, rr - 1) * aRow, o5 = Math.Min(5, rr - 1) * aRow;
        TV c00 = TOps.Zero, c01 = TOps.Zero, c10 = TOps.Zero, c11 = TOps.Zero, c20 = TOps.Zero, c21 = TOps.Zero,
            c30 = TOps.Zero, c31 = TOps.Zero, c40 = TOps.Zero, c41 = TOps.Zero, c50 = TOps.Zero, c51 = TOps.Zero;
        if (i0 > 0)
        {
            c00 = TOps.Load(ref c[0]); c01 = TOps.Load(ref c[vc]);
            if (rr > 1) { c10 = TOps.Load(ref c[ldc]); c11 = TOps.Load(ref c[ldc + vc]); }
            if (rr > 2) { c20 = TOps.Load(ref c[2 * ldc]); c21 = TOps.Load(ref c[2 * ldc + vc]); }
            if (rr > 3) { c30 = TOps.Load(ref c[3 * ldc]); c31 = TOps.Load(ref c[3 * ldc + vc]); }
            if (rr > 4) { c40 = TOps.Load(ref c[4 * ldc]); c41 = TOps.Load(ref c[4 * ldc + vc]); }
            if (rr > 5) { c50 = TOps.Load(ref c[5 * ldc]); c51 = TOps.Load(ref c[5 * ldc + vc]); }
        }
        float* ai = a + i0 * aInner, bi = b + i0 * ldb;
        for (int i = i0; i < i1; i++, ai += aInner, bi += ldb)
        {
            TV b0 = TOps.Load(ref bi[0]), b1 = TOps.Load(ref bi[vc]);
            TV x = TOps.Broadcast(ai[0]);
            c00 = TOps.Fma(x, b0, c00); c01 = TOps.Fma(x, b1, c01);
            x = TOps.Broadcast(ai[o1]);
            c10 = TOps.Fma(x, b0, c10); c11 = TOps.Fma(x, b1, c11);
            x = TOps.Broadcast(ai[o2]);
            c20 = TOps.Fma(x, b0, c20); c21 = TOps.Fma(x, b1, c21);
            x = TOps.Broadcast(ai[o3]);
            c30 = TOps.Fma(x, b0, c30); c31 = TOps.Fma(x, b1, c31);
            x = TOps.Broadcast(ai[o4]);
            c40 = TOps.Fma(x, b0, c40); c41 = TOps.Fma(x, b1, c41);
            x = TOps.Broadcast(ai[o5]);
            c50 = TOps.Fma(x, b0, c50); c51 = TOps.Fma(x, b1, c51);
        }
        if (bias != null)
        {
            TV b0 = TOps.Load(ref bias[0]), b1 = TOps.Load(ref bias[vc]);
            c00 = TOps.Add(c00, b0); c01 = TOps.Add(c01, b1); c10 = TOps.Add(c10, b0); c11 = TOps.Add(c11, b1);
            c20 = TOps.Add(c20, b0); c21 = TOps.Add(c21, b1); c30 = TOps.Add(c30, b0); c31 = TOps.Add(c31, b1);
            c40 = TOps.Add(c40, b0); c41 = TOps.Add(c41, b1); c50 = TOps.Add(c50, b0); c51 = TOps.Add(c51, b1);
        }
        TOps.Store(ref c[0], c00); TOps.Store(ref c[vc], c01);
        if (rr > 1) { TOps.Store(ref c[ldc], c10); TOps.Store(ref c[ldc + vc], c11); }
        if (rr > 2) { TOps.Store(ref c[2 * ldc], c20); TOps.Store(ref c[2 * ldc + vc], c21); }
        if (rr > 3) { TOps.Store(ref c[3 * ldc], c30); TOps.Store(ref c[3 * ldc + vc], c31); }
        if (rr > 4) { TOps.Store(ref c[4 * ldc], c40); TOps.Store(ref c[4 * ldc + vc], c41); }
        if (rr > 5) { TOps.Store(ref c[5 * ldc], c50); TOps.Store(ref c[5 * ldc + vc], c51); }
    }

    /// <summary>As <see cref="Tile2{TOps, TV}"/> for one vector of columns (a panel's last columns).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile1<TOps, TV>(float* a, long aRow, long aInner, float* b, long ldb, float* c, long ldc, int rr, int i0, int i1, float* bias)
        where TOps : struct, IVec<TV> where TV : struct
    {
        long o1 = Math.Min(1, rr - 1) * aRow, o2 = Math.Min(2, rr - 1) * aRow, o3 = Math.Min(3, rr - 1) * aRow,
            o4 = Math.Min(4, rr - 1) * aRow, o5 = Math.Min(5, rr - 1) * aRow;
        TV c0 = TOps.Zero, c1 = TOps.Zero, c2 = TOps.Zero, c3 = TOps.Zero, c4 = TOps.Zero, c5 = TOps.Zero;
        if (i0 > 0)
        {
            c0 = TOps.Load(ref c[0]);
            if (rr > 1) c1 = TOps.Load(ref c[ldc]);
            if (rr > 2) c2 = TOps.Load(ref c[2 * ldc]);
            if (rr > 3) c3 = TOps.Load(ref c[3 * ldc]);
            if (rr > 4) c4 = TOps.Load(ref c[4 * ldc]);
            if (rr > 5) c5 = TOps.Load(ref c[5 * ldc]);
        }
        float* ai = a + i0 * aInner, bi = b + i0 * ldb;
        for (int i = i0; i < i1; i++, ai += aInner, bi += ldb)
        {
            TV b0 = TOps.Load(ref bi[0]);
            c0 = TOps.Fma(TOps.Broadcast(ai[0]), b0, c0);
            c1 = TOps.Fma(TOps.Broadcast(ai[o1]), b0, c1);
            c2 = TOps.Fma(TOps.Broadcast(ai[o2]), b0, c2);
            c3 = TOps.Fma(TOps.Broadcast(ai[o3]), b0, c3);
            c4 = TOps.Fma(TOps.Broadcast(ai[o4]), b0, c4);
            c5 = TOps.Fma(TOps.Broadcast(ai[o5]), b0, c5);
        }
        if (bias != null)
        {
            TV b0 = TOps.Load(ref bias[0]);
            c0 = TOps.Add(c0, b0); c1 = TOps.Add(c1, b0); c2 = TOps.Add(c2, b0); c3 = TOps.Add(c3, b0); c4 = TOps.Add(c4, b0); c5 = TOps.Add(c5, b0);
        }
        TOps.Store(ref c[0], c0);
        if (rr > 1) TOps.Store(ref c[ldc], c1);
        if (rr > 2) TOps.Store(ref c[2 * ldc], c2);
        if (rr > 3) TOps.Store(ref c[3 * ldc], c3);
        if (rr > 4) TOps.Store(ref c[4 * ldc], c4);
        if (rr > 5) TOps.Store(ref c[5 * ldc], c5);
    }
}
