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
        Assert.Equal(0, Fixtures.ThreadAllocations(() => { for (int i = 0; i < 20; i++) session.Run(input.Data, 2, logits); }));
        // The process-wide counter also sees the test host's own threads (result reporting); take the quietest
        // of three windows of 50 inferences: per-inference garbage would show in every one of them.
        long quietest = long.MaxValue;
        for (int window = 0; window < 3; window++)
        {
            long all = GC.GetTotalAllocatedBytes(precise: true);
            for (int i = 0; i < 50; i++) session.Run(input.Data, 2, logits);
            quietest = Math.Min(quietest, GC.GetTotalAllocatedBytes(precise: true) - all);
        }
        Assert.True(quietest < 2048, $"50 inferences allocated {quietest} bytes across threads");
    }
}
