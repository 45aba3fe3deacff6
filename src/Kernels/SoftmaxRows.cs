using System.Runtime.CompilerServices;

namespace VitSparse.Kernels;

/// <summary>
/// The exponent half of a softmax over a few rows whose maxima are known: each row becomes
/// e = 2^(c·s − c·max) in place and its 1/Σe is returned. The rows go through this one pass after all
/// their maxima (not max, exp, sum per row in turn), so a row's exponents need not wait for its own
/// max reduction; each row sums into two accumulators. Both attentions (ragged and window) use it.
/// </summary>
internal static class SoftmaxRows
{
    /// <summary>
    /// rows × n values at <paramref name="s"/> (row stride ld, a whole number of vectors past n); lanes past n
    /// become 0. max[r] is row r's largest value; inv[r] receives 1/Σ of its exponentials.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Exp<TOps, TV>(float* s, int rows, int ld, int n, float c, float* max, float* inv)
        where TOps : struct, IVec<TV> where TV : struct
    {
        int vc = TOps.Count, lastVec = (n - 1) / vc * vc;
        TV tailMask = TOps.LessThan(TOps.Indices, TOps.Broadcast(n - lastVec));
        TV vs = TOps.Broadcast(c);
        for (int r = 0; r < rows; r++)
        {
            float* row = s + (long)r * ld;
            TV shift = TOps.Broadcast(-c * max[r]);
            TV sum0 = TOps.Zero, sum1 = TOps.Zero;
            int j = 0;
            for (; j + vc < lastVec; j += 2 * vc)
            {
                TV e0 = FastExp.Exp2<TOps, TV>(TOps.Fma(TOps.Load(ref row[j]), vs, shift));
                TV e1 = FastExp.Exp2<TOps, TV>(TOps.Fma(TOps.Load(ref row[j + vc]), vs, shift));
                TOps.Store(ref row[j], e0);
                TOps.Store(ref row[j + vc], e1);
                sum0 = TOps.Add(sum0, e0);
                sum1 = TOps.Add(sum1, e1);
            }
            if (j < lastVec)
            {
                TV e = FastExp.Exp2<TOps, TV>(TOps.Fma(TOps.Load(ref row[j]), vs, shift));
                TOps.Store(ref row[j], e);
                sum0 = TOps.Add(sum0, e);
            }
            TV last = TOps.Select(tailMask, FastExp.Exp2<TOps, TV>(TOps.Fma(TOps.Load(ref row[lastVec]), vs, shift)), TOps.Zero);
            TOps.Store(ref row[lastVec], last);
            inv[r] = TOps.Sum(TOps.Add(TOps.Add(sum0, sum1), last));
        }
        for (int r = 0; r < rows; r++) inv[r] = 1f / inv[r];
    }
}
