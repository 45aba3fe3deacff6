using VitSparse.Runtime;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

[CollectionDefinition(nameof(RunsAlone), DisableParallelization = true)]
public sealed class RunsAlone;

/// <summary>
/// Steady-state inference allocates nothing: buffers, scratch and work items are reused. Runs alone, so that
/// the process-wide allocation counter sees only this session's threads.
/// </summary>
[Collection(nameof(RunsAlone))]
public class SteadyStateAllocationTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Steady_state_inference_does_not_allocate(int threads)
    {
        var model = VitModel.Load(Fixtures.Path_("ragged_distilled_bf16.safetensors"));
        var input = Fixtures.Npy_("ragged_distilled_bf16.input.npy");
        var logits = new float[2 * model.Config.NumClasses];
        using var session = new InferenceSession(model, threads);
        for (int i = 0; i < 5; i++) session.Run(input.Data, 2, logits);
        long thisThread = GC.GetAllocatedBytesForCurrentThread();
        long all = GC.GetTotalAllocatedBytes(precise: true);
        for (int i = 0; i < 20; i++) session.Run(input.Data, 2, logits);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - thisThread);
        long total = GC.GetTotalAllocatedBytes(precise: true) - all;
        Assert.True(total < 4096, $"20 inferences allocated {total} bytes across threads");
    }
}
