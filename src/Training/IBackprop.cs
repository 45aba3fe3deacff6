using VitSparse.Kernels;

namespace VitSparse.Training;

/// <summary>
/// A model's training step without its family: a forward pass that keeps activations and the backward pass into
/// <see cref="Gradients"/>. <see cref="DeitBackprop"/> and <see cref="SwinBackprop"/> do the work; <see cref="For"/> picks one.
/// </summary>
public interface IBackprop
{
    /// <summary>The weights the passes run on (training changes them between steps).</summary>
    ParameterSet Parameters { get; }
    /// <summary>dL/dθ of the last <see cref="Backward"/>, under the same names as <see cref="Parameters"/>.</summary>
    ParameterSet Gradients { get; }
    /// <summary>The largest batch the buffers hold.</summary>
    int Capacity { get; }
    /// <summary>When set, each pass adds its phases' wall time to it (`bench train --breakdown`).</summary>
    StepProfile? Profile { get; set; }
    /// <summary>Runs the model on [batch, C, H, W] images, keeping activations; writes [batch, classes] logits.</summary>
    void Forward(ReadOnlySpan<float> images, int batch, Span<float> logits);
    /// <summary>Back-propagates dL/dlogits [batch, classes] of the last <see cref="Forward"/> into <see cref="Gradients"/>.</summary>
    void Backward(ReadOnlySpan<float> dLogits);

    /// <summary>The backward pass of the parameters' family (DeiT or Swin), sized for <paramref name="capacity"/> images.</summary>
    static IBackprop For(ParameterSet parameters, int capacity, ThreadTeam team) =>
        parameters.Swin != null ? new SwinBackprop(parameters, capacity, team) : new DeitStep(new DeitBackprop(parameters, capacity, team));

    /// <summary><see cref="DeitBackprop"/> behind the interface (it stays a plain class, tuned on its own).</summary>
    sealed class DeitStep(DeitBackprop bp) : IBackprop
    {
        public ParameterSet Parameters => bp.Parameters;
        public ParameterSet Gradients => bp.Gradients;
        public int Capacity => bp.Capacity;
        public StepProfile? Profile { get => bp.Profile; set => bp.Profile = value; }
        public void Forward(ReadOnlySpan<float> images, int batch, Span<float> logits) => bp.Forward(images, batch, logits);
        public void Backward(ReadOnlySpan<float> dLogits) => bp.Backward(dLogits);
    }
}
