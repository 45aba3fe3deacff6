using VitSparse.Runtime;
using VitSparse.Runtime.Models;
using Xunit;

namespace VitSparse.Tests;

/// <summary>Steady-state inference allocates nothing: buffers, scratch and work items are reused.</summary>
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
        // Other threads of the test host may allocate meanwhile; the session's workers must not add per-run garbage.
        Assert.True(GC.GetTotalAllocatedBytes(precise: true) - all < 20 * 1024, "inference allocated on worker threads");
    }
}
