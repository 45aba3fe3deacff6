using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace VitSparse.Kernels;

/// <summary>A range of work items [start, end) handed to one worker.</summary>
public interface IRangeBody
{
    void Run(int start, int end, int worker);
}

/// <summary>
/// Intra-op parallelism over a fixed number of threads that live as long as the team. A call cuts its items
/// into chunks whose boundaries depend only on the item count and the caller's grain, and whichever thread
/// is running claims the next chunk (the caller takes part), so a worker the OS has descheduled does not
/// hold up the call: the others take its share. Every output element is produced by one item with the same
/// arithmetic, so results never depend on the thread count or on timing. Between calls workers spin for a
/// few tens of microseconds (a ViT issues ~100 short parallel ops per image, too short to pay for waking
/// threads each time), then sleep; the caller, waiting for the last chunks, also sleeps after a short spin,
/// so a busy neighbour can have the core and a queued worker can move to it. Steady-state calls do not
/// allocate. One call at a time per team with more than one thread: give each session its own.
/// <see cref="Single"/> runs everything on the calling thread and may be shared.
/// </summary>
public sealed class ThreadTeam : IDisposable
{
    public static ThreadTeam Single { get; } = new(1);

    /// <summary>At most this many chunks per call: enough to even out uneven threads, few enough that claiming stays cheap.</summary>
    public const int MaxChunks = 64;

    static readonly long IdleSpinTicks = Stopwatch.Frequency / 20_000;   // 50 µs: a worker's spin between calls
    static readonly long WaitSpinTicks = Stopwatch.Frequency / 50_000;   // 20 µs: the caller's spin for the last chunks

    readonly Thread[] _threads;
    readonly SemaphoreSlim[] _wake;
    readonly int[] _sleeping;
    readonly SemaphoreSlim _callerWake = new(0);
    int _callerSleeping;
    Job?[] _jobs = new Job?[8];

    // One call's parameters, written by the caller before it publishes the call in _state and stable until
    // every chunk is done: a worker reads them only after claiming a chunk, which the call waits for.
    Job? _current;
    int _count, _chunkItems, _chunks;
    /// <summary>
    /// The published call: bits 32–63 its number, 16–31 its chunk count, 0–15 the next unclaimed chunk. Whether
    /// a claim is valid depends on this one word alone (the count is in it), so a worker can never claim a
    /// chunk of a call whose fields are still being written.
    /// </summary>
    long _state;
    int _done;
    volatile bool _stopping;
    ExceptionDispatchInfo? _failure;

    public int Threads { get; }

    /// <summary>
    /// The call's cancellation: checked at the start of every <see cref="For"/>, so an owner (a session) that
    /// sets it for the span of a run stops between operations, never inside one. Not for <see cref="Single"/>.
    /// </summary>
    public CancellationToken Cancellation
    {
        get => _cancellation;
        set
        {
            if (ReferenceEquals(this, Single)) throw new InvalidOperationException("the shared single-thread team takes no cancellation; give the session its own team");
            _cancellation = value;
        }
    }
    CancellationToken _cancellation;

    /// <summary>Test hook: runs before each chunk with the worker's index (e.g. to make one worker slow).</summary>
    internal Action<int>? BeforeChunk { get; set; }

    public ThreadTeam(int threads)
    {
        if (threads < 1 || threads > 1024)
            throw new ArgumentOutOfRangeException(nameof(threads), threads, "thread count must be between 1 and 1024");
        Threads = threads;
        _scratch = new float[threads][];
        _threads = new Thread[threads - 1];
        _wake = new SemaphoreSlim[threads - 1];
        _sleeping = new int[threads - 1];
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
    /// shrunk). Only worker <paramref name="worker"/> of the running call may use it; a worker may run many
    /// chunks of a call, one after another. The calling thread's scratch is per thread, not per team, so the
    /// shared <see cref="Single"/> may run on many threads at once.
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

    /// <summary>Items per chunk for <paramref name="count"/> items: a function of the count and grain only.</summary>
    public static int ChunkItems(int count, int grain) => Math.Max(Math.Max(1, grain), (int)(((long)count + MaxChunks - 1) / MaxChunks));

    /// <summary>
    /// Runs <paramref name="body"/> over items [0, <paramref name="count"/>) in chunks of
    /// <see cref="ChunkItems"/>(count, grain) items, on the calling thread and any workers that are running.
    /// A grain above 1 keeps items together whose cost is too small to claim one by one, or that share data.
    /// </summary>
    public void For<TBody>(int count, TBody body, int grain = 1) where TBody : struct, IRangeBody
    {
        if (count <= 0) return;
        _cancellation.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(_stopping, this);
        int chunkItems = ChunkItems(count, grain);
        int chunks = (int)(((long)count + chunkItems - 1) / chunkItems);
        if (_threads.Length == 0 || chunks == 1)
        {
            BeforeChunk?.Invoke(0);
            body.Run(0, count, 0);
            return;
        }
        int slot = Slot<TBody>.Index;
        if (slot >= _jobs.Length) Array.Resize(ref _jobs, Math.Max(slot + 1, 2 * _jobs.Length));
        var job = (Job<TBody>)(_jobs[slot] ??= new Job<TBody>());
        job.Body = body;
        _current = job;
        _count = count;
        _chunkItems = chunkItems;
        _chunks = chunks;
        _done = 0;
        _failure = null;
        // Publishing the call (a full fence) makes the fields above visible to any thread that sees it.
        long call = (Volatile.Read(ref _state) >> 32) + 1;
        Interlocked.Exchange(ref _state, call << 32 | (long)chunks << 16);
        WakeSleepers(chunks - 1);

        while (TryClaim(out int chunk)) RunChunk(chunk, 0);
        if (Volatile.Read(ref _done) != chunks) WaitForStragglers(chunks);
        job.Body = default;
        _current = null;
        _failure?.Throw();
    }

    /// <summary>
    /// Element-wise work on fewer floats than this (a sparse kernel's transpose of a ViT-S activation) runs on the
    /// calling thread: the tens of microseconds it takes cost less than a team synchronisation, which on a
    /// busy machine can wait for a descheduled worker.
    /// </summary>
    public const int CallerFloats = 128 * 1024;

    /// <summary>Runs all items on the calling thread as one chunk, with the checks of a team call (cancellation).</summary>
    public void OnCaller<TBody>(int count, TBody body) where TBody : struct, IRangeBody
    {
        if (count <= 0) return;
        _cancellation.ThrowIfCancellationRequested();
        BeforeChunk?.Invoke(0);
        body.Run(0, count, 0);
    }

    /// <summary>Claims the next chunk of the published call, if any is left.</summary>
    bool TryClaim(out int chunk)
    {
        while (true)
        {
            long s = Volatile.Read(ref _state);
            chunk = (int)(s & 0xFFFF);
            if (chunk >= (int)(s >> 16 & 0xFFFF)) return false;
            if (Interlocked.CompareExchange(ref _state, s + 1, s) == s) return true;
        }
    }

    void RunChunk(int chunk, int worker)
    {
        int chunks = _chunks;
        if (_failure == null)
        {
            int start = chunk * _chunkItems, end = (int)Math.Min(_count, (long)start + _chunkItems);
            try
            {
                BeforeChunk?.Invoke(worker);
                _current!.Run(start, end, worker);
            }
            catch (Exception e) { Interlocked.CompareExchange(ref _failure, ExceptionDispatchInfo.Capture(e), null); }
        }
        // After the last chunk the call may return and the next one overwrite the fields: read nothing after this.
        if (Interlocked.Increment(ref _done) == chunks && Volatile.Read(ref _callerSleeping) != 0
            && Interlocked.Exchange(ref _callerSleeping, 0) != 0)
            _callerWake.Release();
    }

    /// <summary>Every chunk is claimed; some still run on workers. Spin briefly, then sleep until the last one ends.</summary>
    void WaitForStragglers(int chunks)
    {
        long until = Stopwatch.GetTimestamp() + WaitSpinTicks;
        int spins = 0;
        while (Volatile.Read(ref _done) != chunks)
        {
            if (Stopwatch.GetTimestamp() < until)
            {
                Thread.SpinWait(spins < 10 ? 1 << spins : 1 << 10);
                spins++;
                continue;
            }
            Interlocked.Exchange(ref _callerSleeping, 1);
            if (Volatile.Read(ref _done) == chunks)
            {
                // Whoever finished may already have taken the flag; then its release is coming and must be consumed.
                if (Interlocked.Exchange(ref _callerSleeping, 0) == 0) _callerWake.Wait();
                return;
            }
            _callerWake.Wait();
        }
    }

    void WakeSleepers(int wanted)
    {
        for (int i = 0; i < _sleeping.Length && wanted > 0; i++)
            if (Volatile.Read(ref _sleeping[i]) != 0)
            {
                if (Interlocked.Exchange(ref _sleeping[i], 0) != 0) _wake[i].Release();
                wanted--;
            }
    }

    void WorkerLoop(int worker)
    {
        int w = worker - 1;
        long idleSince = Stopwatch.GetTimestamp();
        int spins = 0;
        while (!_stopping)
        {
            if (TryClaim(out int chunk))
            {
                RunChunk(chunk, worker);
                idleSince = 0;
                continue;
            }
            if (idleSince == 0) { idleSince = Stopwatch.GetTimestamp(); spins = 0; }
            if (Stopwatch.GetTimestamp() - idleSince < IdleSpinTicks)
            {
                // Mostly pause; now and then offer the core to whoever is queued on it (the caller, a neighbour).
                if (++spins % 16 == 0) Thread.Yield();
                else Thread.SpinWait(32);
                continue;
            }
            Interlocked.Exchange(ref _sleeping[w], 1);
            if (HasWork() || _stopping)
            {
                // A caller that saw the flag has released (or will release) the semaphore: consume it.
                if (Interlocked.Exchange(ref _sleeping[w], 0) == 0) _wake[w].Wait();
            }
            else _wake[w].Wait();
            idleSince = 0;
        }
    }

    bool HasWork()
    {
        long s = Volatile.Read(ref _state);
        return (s & 0xFFFF) < (s >> 16 & 0xFFFF);
    }

    /// <summary>
    /// Stops the workers after their current chunk. A call still in flight on another thread finishes its
    /// chunks on the calling thread; later calls throw <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        if (_stopping || _threads.Length == 0) return;
        _stopping = true;
        for (int i = 0; i < _wake.Length; i++)
            if (Interlocked.Exchange(ref _sleeping[i], 0) != 0) _wake[i].Release();
        foreach (var t in _threads) t.Join();
    }
}
