using System.Runtime.ExceptionServices;

namespace VitSparse.Kernels;

/// <summary>A range of work items [start, end) handed to one worker.</summary>
public interface IRangeBody
{
    void Run(int start, int end, int worker);
}

/// <summary>
/// Intra-op parallelism over a fixed number of threads that live as long as the team. A call splits its
/// items into one contiguous chunk per worker by index alone, and every output element is produced by one
/// item, so results never depend on the thread count or on timing. Workers spin briefly between calls
/// (a ViT issues ~100 short parallel ops per image, too short to pay for waking threads each time), then
/// sleep. Steady-state calls do not allocate. One call at a time per team with more than one thread: give
/// each session its own. <see cref="Single"/> runs everything on the calling thread and may be shared.
/// </summary>
public sealed class ThreadTeam : IDisposable
{
    public static ThreadTeam Single { get; } = new(1);

    const int SpinIterations = 20_000;
    readonly Thread[] _threads;
    readonly SemaphoreSlim[] _wake;
    Job?[] _jobs = new Job?[8];
    Job? _current;
    int _count, _workers;
    volatile int _generation;
    int _pending;
    volatile bool _stopping;
    ExceptionDispatchInfo? _failure;

    public int Threads { get; }

    public ThreadTeam(int threads)
    {
        if (threads < 1 || threads > 1024)
            throw new ArgumentOutOfRangeException(nameof(threads), threads, "thread count must be between 1 and 1024");
        Threads = threads;
        _scratch = new float[threads][];
        _threads = new Thread[threads - 1];
        _wake = new SemaphoreSlim[threads - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            int worker = i + 1;
            _wake[i] = new SemaphoreSlim(0);
            _threads[i] = new Thread(() => WorkerLoop(worker)) { IsBackground = true, Name = $"vitsparse-{worker}" };
            _threads[i].Start();
        }
    }

    public static ThreadTeam ForMachine() => new(Environment.ProcessorCount);

    readonly float[][] _scratch;

    /// <summary>Worker 0 is whichever thread calls <see cref="For"/>, so its scratch belongs to that thread.</summary>
    [ThreadStatic] static float[]? t_callerScratch;

    /// <summary>
    /// Worker-private scratch of at least <paramref name="length"/> floats, kept between calls (grown, never
    /// shrunk). Only worker <paramref name="worker"/> of the running call may use it. The calling thread's
    /// scratch is per thread, not per team, so the shared <see cref="Single"/> may run on many threads at once.
    /// </summary>
    internal float[] Scratch(int worker, int length)
    {
        if (worker == 0)
        {
            var own = t_callerScratch;
            if (own == null || own.Length < length) t_callerScratch = own = new float[length];
            return own;
        }
        var s = _scratch[worker];
        if (s == null || s.Length < length) _scratch[worker] = s = new float[length];
        return s;
    }

    /// <summary>The calling thread's buffer shared by every worker of its calls (e.g. a transposed input).</summary>
    [ThreadStatic] static float[]? t_callerShared;

    /// <summary>
    /// Scratch of at least <paramref name="length"/> floats that the calling thread owns and lends to all
    /// workers of its next calls (one call fills it, a later one reads it); kept between calls, grown only.
    /// Separate from every worker's <see cref="Scratch"/>, so a body may use both.
    /// </summary>
    internal float[] Shared(int length)
    {
        var s = t_callerShared;
        if (s == null || s.Length < length) t_callerShared = s = new float[length];
        return s;
    }

    abstract class Job
    {
        public abstract void Run(int start, int end, int worker);
    }

    sealed class Job<TBody> : Job where TBody : struct, IRangeBody
    {
        public TBody Body;
        public override void Run(int start, int end, int worker) => Body.Run(start, end, worker);
    }

    static class Slot<TBody> where TBody : struct, IRangeBody
    {
        public static readonly int Index = Interlocked.Increment(ref _slots) - 1;
    }

    static int _slots;

    public void For<TBody>(int count, TBody body) where TBody : struct, IRangeBody
    {
        if (count <= 0) return;
        int workers = Math.Min(Threads, count);
        if (workers == 1)
        {
            body.Run(0, count, 0);
            return;
        }
        ObjectDisposedException.ThrowIf(_stopping, this);
        int slot = Slot<TBody>.Index;
        if (slot >= _jobs.Length) Array.Resize(ref _jobs, Math.Max(slot + 1, 2 * _jobs.Length));
        var job = (Job<TBody>)(_jobs[slot] ??= new Job<TBody>());
        job.Body = body;
        _current = job;
        _count = count;
        _workers = workers;
        _failure = null;
        // Every worker acknowledges every call, even one with no items for it, so no worker can still be
        // reading this call's fields when the next call writes them.
        Volatile.Write(ref _pending, _threads.Length);
        _generation++;
        for (int i = 0; i < _wake.Length; i++)
            if (_wake[i].CurrentCount == 0) _wake[i].Release();

        RunChunk(0);
        var spin = new SpinWait();
        while (Volatile.Read(ref _pending) != 0) spin.SpinOnce(sleep1Threshold: -1);
        job.Body = default;
        _current = null;
        _failure?.Throw();
    }

    void RunChunk(int worker)
    {
        int start = (int)((long)_count * worker / _workers);
        int end = (int)((long)_count * (worker + 1) / _workers);
        try { _current!.Run(start, end, worker); }
        catch (Exception e) { Interlocked.CompareExchange(ref _failure, ExceptionDispatchInfo.Capture(e), null); }
    }

    void WorkerLoop(int worker)
    {
        int seen = 0;
        while (true)
        {
            int spins = 0;
            while (_generation == seen && !_stopping)
            {
                if (++spins < SpinIterations) Thread.SpinWait(20);
                else { _wake[worker - 1].Wait(); spins = 0; }
            }
            if (_stopping) return;
            seen = _generation;
            if (worker < _workers) RunChunk(worker);
            Interlocked.Decrement(ref _pending);
        }
    }

    public void Dispose()
    {
        if (_stopping || _threads.Length == 0) return;
        _stopping = true;
        foreach (var w in _wake) w.Release();
        foreach (var t in _threads) t.Join();
        foreach (var w in _wake) w.Dispose();
    }
}
