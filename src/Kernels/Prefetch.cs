using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace VitSparse.Kernels;

/// <summary>Software prefetch of whole cache lines into L2 where the ISA exposes it (x86); a no-op elsewhere.</summary>
static unsafe class Prefetch
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Lines(float* start, int lines)
    {
        if (!Sse.IsSupported) return;
        for (int i = 0; i < lines; i++) Sse.Prefetch1(start + 16 * i);
    }
}
