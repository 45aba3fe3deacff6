namespace VitSparse.Kernels;

/// <summary>A range of work items [Start, End) handed to one worker.</summary>
public interface IRangeBody
{
    void Run(int start, int end, int worker);
}

/// <summary>
/// Intra-op parallelism over a fixed thread count. Work is split into contiguous chunks by index only,
/// and every output element is produced by exactly one work item, so results never depend on the
/// thread count or on scheduling.
/// </summary>
public sealed class ThreadTeam
{
    public static ThreadTeam Single { get; } = new(1);

    public int Threads { get; }

    public ThreadTeam(int threads)
    {
        if (threads < 1 || threads > 1024)
            throw new ArgumentOutOfRangeException(nameof(threads), threads, "thread count must be between 1 and 1024");
        Threads = threads;
    }

    public static ThreadTeam ForMachine() => new(Environment.ProcessorCount);

    public void For<TBody>(int count, TBody body) where TBody : struct, IRangeBody
    {
        if (count <= 0) return;
        int workers = Math.Min(Threads, count);
        if (workers == 1)
        {
            body.Run(0, count, 0);
            return;
        }
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
        {
            int start = (int)((long)count * w / workers);
            int end = (int)((long)count * (w + 1) / workers);
            body.Run(start, end, w);
        });
    }
}
