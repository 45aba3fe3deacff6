using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace VitSparse.Kernels;

/// <summary>
/// The GEMM engine behind dense and block-sparse linears: Y[M,N] = X[M,K]·W[N,K]ᵀ + b with W packed into
/// column panels of NR = 2 vectors of outputs; a panel with at most one vector of real outputs (the last of a
/// ragged N such as 228 = 7·32 + 4) is packed one vector wide and runs the one-vector tile. K is cut into equal windows of at
/// most <see cref="Kc"/> columns; in each window a panel keeps only some runs of columns (all of them for a
/// dense weight, the kept blocks for BSR, adjacent kept blocks merged into one run), and its packed rows
/// hold exactly those columns, [row of K][NR], run after run. So time follows the kept columns, and a BSR
/// weight with every block kept runs the dense kernel's instruction stream.
/// </summary>
internal sealed class PanelGemm
{
    /// <summary>W[row, column] of the layer being packed (row &lt; N, column &lt; K).</summary>
    public interface IWeightSource { float At(int row, int column); }

    /// <summary>A row-major W[n, k] span.</summary>
    public readonly ref struct RowMajor(ReadOnlySpan<float> weight, int k) : IWeightSource
    {
        readonly ReadOnlySpan<float> _w = weight;
        public float At(int row, int column) => _w[row * k + column];
    }

    public int N { get; }
    public int K { get; }
    public SimdWidth Width { get; }
    /// <summary>Outputs per panel: two vectors.</summary>
    public int Nr { get; }
    public int Panels { get; }
    /// <summary>K windows (each at most <see cref="Kc"/> columns, equal split: K = 307 is 154 + 153).</summary>
    public int Windows { get; }
    public int WindowColumns { get; }
    readonly int[] _panelRow0;     // [Panels]: the first output row of each panel
    readonly int[] _panelRows;     // [Panels]: output rows each panel really has (0 for a panel wholly past N)
    readonly float[] _packed;
    readonly float[] _bias;        // [Panels·Nr], zero past N
    readonly int[] _windowRuns;    // [Panels·Windows + 1]: runs of (panel, window) are [_windowRuns[i], _windowRuns[i + 1])
    readonly int[] _windowOffset;  // [Panels·Windows]: its first packed float
    readonly int[] _windowRows;    // [Panels·Windows]: its packed rows (kept columns)
    readonly int[] _runs;          // (first column, length) pairs

    /// <summary>K is consumed in windows of at most this many columns of a panel (Kc·NR floats, 32 KB at 512 bits),
    /// so the window's weights stay in L1 while every row tile of a group streams past them.</summary>
    public const int Kc = 256;
    /// <summary>Row tiles that share one pass over a panel; their partial sums live in worker scratch.</summary>
    const int GroupTiles = 40;
    /// <summary>
    /// Work items each thread should have at least. A layer with few panels (N = 153 or 192: 5–6 panels) splits its
    /// rows into groups until it has this many, so two threads do not split 5 items 3:2. More panels than that keep
    /// one group: a panel read by several groups streams its weights from memory more than once, which cost
    /// deit_b's BSR layers 7 % at 16 items per thread.
    /// </summary>
    const int MinItemsPerThread = 4;
    /// <summary>Partial sums a worker keeps for a window-outer chunk of items (256 KB): with X's window, well inside L2.</summary>
    const int ChunkFloats = 64 * 1024;

    /// <summary>Which columns each panel keeps: fills the list with its (first, length) runs of K, sorted and disjoint.</summary>
    public delegate void RunLister(int panel, List<(int Start, int Length)> runs);

    /// <summary>Columns per window for K columns: the equal split into windows of at most <see cref="Kc"/>.</summary>
    public static int WindowWidth(int k) { int windows = (k + Kc - 1) / Kc; return (k + windows - 1) / windows; }

    /// <summary>
    /// Packs the kept runs of every panel: panel p covers output rows [<paramref name="panelRow0"/>[p],
    /// + <paramref name="panelRows"/>[p]) (at most Nr, cut at N), and its packed rows read W from <paramref name="weights"/>.
    /// </summary>
    public static PanelGemm Pack<TSource>(int n, int k, SimdWidth width, int[] panelRow0, int[] panelRows, RunLister keptRuns,
        TSource weights, ReadOnlySpan<float> bias, string what) where TSource : IWeightSource, allows ref struct
    {
        var g = new PanelGemm(n, k, width, panelRow0, panelRows, keptRuns, what);
        for (int p = 0; p < g.Panels; p++)
        {
            int row0 = panelRow0[p], cols = g._panelRows[p];
            for (int j = 0; j < cols; j++) g._bias[p * g.Nr + j] = bias.IsEmpty ? 0f : bias[row0 + j];
            for (int w = 0; w < g.Windows; w++)
            {
                int i = p * g.Windows + w, row = 0;
                for (int q = g._windowRuns[i]; q < g._windowRuns[i + 1]; q++)
                    for (int c = g._runs[2 * q]; c < g._runs[2 * q] + g._runs[2 * q + 1]; c++, row++)
                        for (int j = 0; j < cols; j++) g._packed[g._windowOffset[i] + (long)row * g.PanelWidth(p) + j] = weights.At(row0 + j, c);
            }
        }
        return g;
    }

    PanelGemm(int n, int k, SimdWidth width, int[] panelRow0, int[] panelRows, RunLister keptRuns, string what)
    {
        N = n; K = k; Width = width;
        Nr = 2 * Isa.LanesOf(width);
        Panels = panelRow0.Length;
        WindowColumns = WindowWidth(k);
        Windows = (k + WindowColumns - 1) / WindowColumns;
        _panelRow0 = panelRow0;
        _panelRows = new int[Panels];
        for (int p = 0; p < Panels; p++) _panelRows[p] = Math.Max(0, Math.Min(Math.Min(Nr, panelRows[p]), n - panelRow0[p]));
        var runs = new List<int>();
        _windowRuns = new int[Panels * Windows + 1];
        _windowOffset = new int[Panels * Windows];
        _windowRows = new int[Panels * Windows];
        var panelRuns = new List<(int Start, int Length)>();
        long offset = 0;
        for (int p = 0; p < Panels; p++)
        {
            panelRuns.Clear();
            keptRuns(p, panelRuns);
            int r = 0;
            for (int w = 0; w < Windows; w++)
            {
                int w0 = w * WindowColumns, w1 = Math.Min(k, w0 + WindowColumns), i = p * Windows + w, rows = 0;
                _windowRuns[i] = runs.Count / 2;
                _windowOffset[i] = (int)offset;
                // A run that crosses a window edge is cut there; the next window takes its rest.
                for (; r < panelRuns.Count && panelRuns[r].Start < w1; r++)
                {
                    int s = Math.Max(panelRuns[r].Start, w0), e = Math.Min(panelRuns[r].Start + panelRuns[r].Length, w1);
                    if (e > s) { runs.Add(s); runs.Add(e - s); rows += e - s; }
                    if (panelRuns[r].Start + panelRuns[r].Length > w1) break;
                }
                _windowRows[i] = rows;
                offset += (long)rows * PanelWidth(p);
                if (offset > Array.MaxLength) throw new ArgumentException($"{what}: a {n}×{k} weight packs to more than {Array.MaxLength} floats");
            }
        }
        _windowRuns[Panels * Windows] = runs.Count / 2;
        _runs = runs.ToArray();
        _packed = new float[offset];
        _bias = new float[Panels * Nr];
    }

    /// <summary>Floats per packed row of panel p: Nr, or Nr / 2 when the panel's outputs fit one vector.</summary>
    int PanelWidth(int p) => _panelRows[p] <= Nr / 2 ? Nr / 2 : Nr;

    /// <summary>The weight as W [N,K] row-major (zeros where no run kept a column) and the bias [N].</summary>
    public void CopyDense(Span<float> weight, Span<float> bias)
    {
        if (weight.Length < (long)N * K || bias.Length < N) throw new ArgumentException($"needs {N}×{K} weights and {N} biases");
        weight[..(N * K)].Clear();
        for (int p = 0; p < Panels; p++)
        {
            int row0 = _panelRow0[p], cols = _panelRows[p];
            for (int j = 0; j < cols; j++) bias[row0 + j] = _bias[p * Nr + j];
            for (int w = 0; w < Windows; w++)
            {
                int i = p * Windows + w, row = 0;
                for (int q = _windowRuns[i]; q < _windowRuns[i + 1]; q++)
                    for (int c = _runs[2 * q]; c < _runs[2 * q] + _runs[2 * q + 1]; c++, row++)
                        for (int j = 0; j < cols; j++) weight[(row0 + j) * K + c] = _packed[_windowOffset[i] + (long)row * PanelWidth(p) + j];
            }
        }
    }

    /// <summary>
    /// Runs the layer on M rows. x is [m, K] with row stride ldx (≥ K), y is [m, N] with row stride ldy (≥ N).
    /// Each output element is written by exactly one work item, so the result is the same for any team size.
    /// </summary>
    public void Forward(ReadOnlySpan<float> x, int m, int ldx, Span<float> y, int ldy, Epilogue epilogue, ThreadTeam team)
    {
        if (m <= 0) return;
        if (ldx < K) throw new ArgumentOutOfRangeException(nameof(ldx), ldx, $"row stride must be at least K={K}");
        if (ldy < N) throw new ArgumentOutOfRangeException(nameof(ldy), ldy, $"row stride must be at least N={N}");
        if (x.Length < (long)(m - 1) * ldx + K) throw new ArgumentException($"x holds {x.Length} floats, needs {m} rows of stride {ldx}", nameof(x));
        if (y.Length < (long)(m - 1) * ldy + N) throw new ArgumentException($"y holds {y.Length} floats, needs {m} rows of stride {ldy}", nameof(y));
        unsafe
        {
            fixed (float* px = x)
            fixed (float* py = y)
            {
                int rowTiles = (m + MicroKernel.Mr - 1) / MicroKernel.Mr;
                int groups = (rowTiles + GroupTiles - 1) / GroupTiles;
                if (team.Threads > 1 && Panels * groups < MinItemsPerThread * team.Threads)
                    groups = Math.Clamp((MinItemsPerThread * team.Threads + Panels - 1) / Panels, groups, rowTiles);
                int groupTiles = (rowTiles + groups - 1) / groups;
                groups = (rowTiles + groupTiles - 1) / groupTiles;
                // Items of a chunk share each window of X while it is in L2 (see Loop), so with several windows a
                // chunk takes as many as fit, but never so many that fewer than 16 chunks are left to share out.
                int items = Panels * groups;
                int grain = Windows == 1 ? 1 : Math.Clamp(items / 16, 1, Math.Max(1, ChunkFloats / (groupTiles * MicroKernel.Mr * Nr)));
                team.For(items, new Body(this, px, m, ldx, py, ldy, epilogue, rowTiles, groupTiles, team), grain);
            }
        }
    }

    /// <summary>
    /// One work item = one panel × one group of row tiles. Items are group-major: consecutive items (a chunk) are
    /// panels of one row group and share its rows of X (in L2) window by window. Panel-major order had each panel
    /// re-read all of X, which at batch 8 (2.4 MB for K = 384) is more than L2 holds (1–2 % slower at batch 8).
    /// </summary>
    unsafe readonly struct Body(PanelGemm w, float* x, int m, int ldx, float* y, int ldy, Epilogue ep, int rowTiles, int groupTiles, ThreadTeam team) : IRangeBody
    {
        int PanelOf(int item) => item % w.Panels;
        int GroupOf(int item) => item / w.Panels;

        public void Run(int start, int end, int worker)
        {
            switch (w.Width)
            {
                case SimdWidth.V512: Loop<V512, Vector512<float>>(start, end, worker); break;
                case SimdWidth.V256: Loop<V256, Vector256<float>>(start, end, worker); break;
                default: Loop<V128, Vector128<float>>(start, end, worker); break;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Loop<TOps, TV>(int start, int end, int worker) where TOps : struct, IVec<TV> where TV : struct
        {
            int nr = w.Nr, windows = w.Windows, tileFloats = MicroKernel.Mr * nr, itemFloats = groupTiles * tileFloats;
            // With several windows, a chunk of items goes window-outer: one window of X's columns (≤ Kc) serves
            // every panel of the chunk while it is in L2, instead of all of X (2.4 MB for K = 3072) being re-read
            // from L3 for each panel. The chunk's partial sums wait in worker scratch.
            int chunk = windows == 1 ? 1 : Math.Clamp(ChunkFloats / itemFloats, 1, end - start);
            ref float packed = ref MemoryMarshal.GetArrayDataReference(w._packed);
            ref float bias = ref MemoryMarshal.GetArrayDataReference(w._bias);
            fixed (float* acc = team.Scratch(worker, chunk * itemFloats))
            fixed (int* runs = w._runs)
            fixed (int* windowRuns = w._windowRuns)
            fixed (int* windowOffset = w._windowOffset)
            fixed (int* windowRows = w._windowRows)
            {
                for (int c0 = start; c0 < end; c0 += chunk)
                {
                    int c1 = Math.Min(end, c0 + chunk);
                    for (int win = 0; win < windows; win++)
                    {
                        for (int item = c0; item < c1; item++)
                        {
                            int p = PanelOf(item), g = GroupOf(item), i = p * windows + win;
                            int t0 = g * groupTiles, t1 = Math.Min(rowTiles, t0 + groupTiles);
                            if (w._panelRows[p] == 0) continue;
                            int runStart = windowRuns[i], runCount = windowRuns[i + 1] - runStart;
                            // An empty window adds nothing; only the first window must still clear the partial sums.
                            if (runCount == 0 && win > 0) continue;
                            ref float block = ref Unsafe.Add(ref packed, windowOffset[i]);
                            // The weights stream from memory exactly once; fetch the window used next while this
                            // one serves every row tile, instead of stalling on it when its turn comes.
                            var (nextItem, nextWin) = item + 1 < c1 ? (item + 1, win) : win + 1 < windows ? (c0, win + 1) : (c1, 0);
                            int nextLines = 0;
                            float* next = null;
                            if (nextItem < end)
                            {
                                int np = PanelOf(nextItem), ni = np * windows + nextWin;
                                nextLines = windowRows[ni] * w.PanelWidth(np) / 16;
                                next = (float*)Unsafe.AsPointer(ref Unsafe.Add(ref packed, windowOffset[ni]));
                            }
                            int perTile = (nextLines + (t1 - t0) - 1) / (t1 - t0);
                            float* itemAcc = acc + (item - c0) * itemFloats;
                            bool oneVector = w.PanelWidth(p) < nr;
                            for (int t = t0; t < t1; t++)
                            {
                                if (nextLines > 0) Prefetch.Lines(next + (long)(t - t0) * perTile * 16, Math.Min(perTile, nextLines - (t - t0) * perTile));
                                int m0 = t * MicroKernel.Mr, rows = Math.Min(MicroKernel.Mr, m - m0);
                                MicroKernel.RunRuns<TOps, TV>(rows, ref *(x + (long)m0 * ldx), ldx, ref block, runs + 2 * runStart, runCount,
                                    ref *(itemAcc + (t - t0) * tileFloats), accumulate: win > 0, nr, oneVector);
                            }
                        }
                    }
                    for (int item = c0; item < c1; item++)
                    {
                        int p = PanelOf(item), g = GroupOf(item), cols = w._panelRows[p];
                        if (cols == 0) continue;
                        int t0 = g * groupTiles, t1 = Math.Min(rowTiles, t0 + groupTiles), n0 = w._panelRow0[p];
                        for (int t = t0; t < t1; t++)
                        {
                            int m0 = t * MicroKernel.Mr, rows = Math.Min(MicroKernel.Mr, m - m0);
                            Finish<TOps, TV>(acc + (item - c0) * itemFloats + (t - t0) * tileFloats, rows, ref Unsafe.Add(ref bias, p * nr), y + (long)m0 * ldy + n0, cols);
                        }
                    }
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        void Finish<TOps, TV>(float* tile, int rows, ref float bias, float* dst, int cols) where TOps : struct, IVec<TV> where TV : struct
        {
            int vc = TOps.Count, nr = 2 * vc;
            // A tile of at most one vector of outputs (a one-vector panel's) has nothing in its second vector.
            bool second = cols > vc;
            TV b0 = TOps.Load(ref bias), b1 = TOps.Load(ref Unsafe.Add(ref bias, vc));
            for (int r = 0; r < rows; r++)
            {
                ref float t = ref *(tile + r * nr);
                TV v0 = TOps.Add(TOps.Load(ref t), b0);
                TV v1 = second ? TOps.Add(TOps.Load(ref Unsafe.Add(ref t, vc)), b1) : TOps.Zero;
                if (ep == Epilogue.BiasGelu)
                {
                    v0 = Gelu.ApplyInLargeCaller<TOps, TV>(v0);
                    if (second) v1 = Gelu.ApplyInLargeCaller<TOps, TV>(v1);
                }
                float* d = dst + (long)r * ldy;
                if (cols == nr)
                {
                    if (ep == Epilogue.BiasAccumulate)
                    {
                        v0 = TOps.Add(v0, TOps.Load(ref *d));
                        v1 = TOps.Add(v1, TOps.Load(ref *(d + vc)));
                    }
                    TOps.Store(ref *d, v0);
                    TOps.Store(ref *(d + vc), v1);
                }
                else if (cols == vc)
                {
                    if (ep == Epilogue.BiasAccumulate) v0 = TOps.Add(v0, TOps.Load(ref *d));
                    TOps.Store(ref *d, v0);
                }
                else
                {
                    TOps.Store(ref t, v0);
                    if (second) TOps.Store(ref Unsafe.Add(ref t, vc), v1);
                    float* s = tile + r * nr;
                    if (ep == Epilogue.BiasAccumulate)
                        for (int j = 0; j < cols; j++) d[j] += s[j];
                    else
                        for (int j = 0; j < cols; j++) d[j] = s[j];
                }
            }
        }
    }
}
