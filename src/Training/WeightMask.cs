using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;

namespace VitSparse.Training;

/// <summary>
/// Which entries of a pruned linear weight [rows, cols] are kept. Training computes dW only where a weight is
/// kept and leaves pruned entries' gradients exactly zero, so AdamW (whose moments then stay zero) never
/// moves them off zero. A mask comes from how a layer is stored (BSR blocks or CSR entries,
/// <see cref="FromStored"/>), or from a pruner (<see cref="FromKept"/>, <see cref="FromZeros"/>).
/// </summary>
public sealed class WeightMask
{
    /// <summary>1 where kept, 0 where pruned, row-major [rows, cols]; pinned for the backward kernels.</summary>
    internal readonly byte[] Keep;

    public int Rows { get; }
    public int Cols { get; }
    /// <summary>Kept weights.</summary>
    public long Kept { get; }
    /// <summary>How the weight was stored when loaded (BSR or CSR), so a saved model keeps its format; null for a mask from a pruner.</summary>
    public StoredLayout? Stored { get; }

    WeightMask(byte[] keep, int rows, int cols, StoredLayout? stored)
    {
        Keep = keep;
        Rows = rows;
        Cols = cols;
        Stored = stored;
        long kept = 0;
        foreach (byte b in keep) kept += b;
        Kept = kept;
    }

    /// <summary>Whether weight (row, col) is kept.</summary>
    public bool IsKept(int row, int col) => Keep[(long)row * Cols + col] != 0;

    /// <summary>A mask from one flag per weight, row-major.</summary>
    public static WeightMask FromKept(ReadOnlySpan<bool> kept, int rows, int cols)
    {
        if (rows < 1 || cols < 1 || kept.Length != (long)rows * cols)
            throw new InputException("mask", $"{kept.Length} flags for a [{rows}, {cols}] weight");
        var keep = GC.AllocateArray<byte>(kept.Length, pinned: true);
        for (int i = 0; i < kept.Length; i++) keep[i] = kept[i] ? (byte)1 : (byte)0;
        return new WeightMask(keep, rows, cols, null);
    }

    /// <summary>A mask keeping the non-zero entries of a weight (for a pruner that zeroes weights in place).</summary>
    public static WeightMask FromZeros(ReadOnlySpan<float> weight, int rows, int cols)
    {
        if (rows < 1 || cols < 1 || weight.Length != (long)rows * cols)
            throw new InputException("mask", $"{weight.Length} weights for a [{rows}, {cols}] weight");
        var keep = GC.AllocateArray<byte>(weight.Length, pinned: true);
        for (int i = 0; i < weight.Length; i++) keep[i] = weight[i] != 0 ? (byte)1 : (byte)0;
        return new WeightMask(keep, rows, cols, null);
    }

    /// <summary>
    /// The stored pattern of a sparse-stored weight: every weight of a stored BSR block, every stored CSR
    /// entry (zeros that happen to be stored stay trainable). The index tensors were checked when the
    /// weight was densified (<see cref="SparseStorage.Densify"/>).
    /// </summary>
    public static WeightMask FromStored(SafeTensorsFile file, string weight, StoredLayout l)
    {
        int rows = (int)l.Rows, cols = (int)l.Cols;
        var keep = GC.AllocateArray<byte>(checked(rows * cols), pinned: true);
        string prefix = weight + (l.Format == WeightFormat.Bsr ? ".bsr" : ".csr");
        var colIdx = file.GetI32(prefix + "_col_indices");
        var rowPtr = file.GetI32(prefix + "_row_ptr");
        int bh = l.Format == WeightFormat.Bsr ? l.BlockHeight : 1, bw = l.Format == WeightFormat.Bsr ? l.BlockWidth : 1;
        for (int br = 0; br < rowPtr.Length - 1; br++)
            for (int p = rowPtr[br]; p < rowPtr[br + 1]; p++)
            {
                int r0 = br * bh, c0 = colIdx[p] * bw;
                for (int r = r0; r < Math.Min(rows, r0 + bh); r++)
                    keep.AsSpan(r * cols + c0, Math.Min(bw, cols - c0)).Fill(1);
            }
        return new WeightMask(keep, rows, cols, l);
    }
}
