using System.Globalization;
using VitSparse.Runtime;
using VitSparse.Runtime.Formats;
using VitSparse.Runtime.Models;

namespace VitSparse.Training;

/// <summary>
/// A fine-tuning run's state after a whole epoch, in one safetensors file written atomically: the parameters
/// (`param.NAME`), AdamW's moments (`adam_m.NAME`, `adam_v.NAME`), the moving average (`ema.NAME`) when
/// there is one, and metadata: the model's config, a fingerprint of the weights the run started from, the
/// epochs and optimizer steps done. Resuming refuses a checkpoint whose config or starting weights differ.
/// </summary>
public static class TrainingCheckpoint
{
    const string Kind = "vitsparse.finetune.checkpoint", Origin = "vitsparse.finetune.origin", Epochs = "vitsparse.finetune.epochs",
        Steps = "vitsparse.finetune.steps", Settings = "vitsparse.finetune.settings";

    /// <summary>
    /// FNV-1a 64 over every tensor's name, float bits and kept-pattern: which model (weights and masks) a run starts
    /// from. Two prunings with the same widths still differ.
    /// </summary>
    public static string Fingerprint(ParameterSet p)
    {
        ulong h = 0xCBF29CE484222325UL;
        void Add(uint v) { for (int i = 0; i < 4; i++) { h ^= (v >> (8 * i)) & 0xFF; h *= 0x100000001B3UL; } }
        foreach (var name in p.Names)
        {
            foreach (char ch in name) Add(ch);
            foreach (float v in p[name]) Add(BitConverter.SingleToUInt32Bits(v));
            if (p.MaskOf(name) is { } m) foreach (byte b in m.Keep) Add(b);
        }
        return h.ToString("x16", CultureInfo.InvariantCulture);
    }

    /// <summary>The architecture name of a config JSON of either family, for messages.</summary>
    static string ConfigName(string json)
    {
        try { return SwinConfig.IsSwinJson(json) ? SwinConfig.FromJson(json).Name : VitConfig.FromJson(json).Name; }
        catch (ModelException) { return "an unreadable config"; }
    }

    /// <summary>Writes the state atomically (a crash or Ctrl-C during the write leaves the previous checkpoint).</summary>
    public static void Save(string path, string origin, FineTuner tuner, ParameterSet parameters, string settingsText)
    {
        var tensors = new List<TensorToWrite>();
        void AddSet(string prefix, ParameterSet set)
        {
            foreach (var name in set.Names) tensors.Add(new TensorToWrite(prefix + name, set.Shapes[name], set[name]));
        }
        AddSet("param.", parameters);
        AddSet("adam_m.", tuner.Optimizer.FirstMoments);
        AddSet("adam_v.", tuner.Optimizer.SecondMoments);
        if (tuner.Ema != null) AddSet("ema.", tuner.Ema);
        var inv = CultureInfo.InvariantCulture;
        SafeTensorsWriter.Write(path, tensors, new Dictionary<string, string>
        {
            [Kind] = "1",
            [VitConfig.MetadataKey] = parameters.Model.ToJson(),
            [Origin] = origin,
            [Epochs] = tuner.EpochsDone.ToString(inv),
            [Steps] = tuner.Optimizer.Steps.ToString(inv),
            [Settings] = settingsText,
        });
    }

    /// <summary>
    /// Loads a checkpoint into a run that starts from the same weights (same config and <paramref name="origin"/>
    /// fingerprint): parameters, moments, moving average, epochs and steps. Returns the epochs done.
    /// </summary>
    public static int Load(string path, string origin, FineTuner tuner, ParameterSet parameters)
    {
        using var file = new SafeTensorsFile(path);
        if (!file.Metadata.ContainsKey(Kind)) throw new InputException("--resume", $"{path} is not a finetune checkpoint (no '{Kind}' metadata)");
        var config = parameters.Model;
        if (!file.Metadata.TryGetValue(VitConfig.MetadataKey, out var json) || json != config.ToJson())
        {
            string other = file.Metadata.TryGetValue(VitConfig.MetadataKey, out var j) ? ConfigName(j) : "an unknown model";
            throw new InputException("--resume", $"{path} is a checkpoint of {other} with another architecture, not of '{config.Name}' given by --weights");
        }
        if (!file.Metadata.TryGetValue(Origin, out var o) || o != origin)
            throw new InputException("--resume", $"{path} was trained from other weights than --weights (fingerprint {o ?? "none"}, --weights has {origin})");
        var inv = CultureInfo.InvariantCulture;
        if (!int.TryParse(file.Metadata.GetValueOrDefault(Epochs), NumberStyles.None, inv, out int epochs) ||
            !int.TryParse(file.Metadata.GetValueOrDefault(Steps), NumberStyles.None, inv, out int steps))
            throw new InputException("--resume", $"{path}: metadata '{Epochs}'/'{Steps}' are not counts");
        if (steps != (long)epochs * tuner.StepsPerEpoch)
            throw new InputException("--resume", $"{path}: {steps} optimizer steps in {epochs} epochs, but this run has {tuner.StepsPerEpoch} steps per epoch (another --batch or training set?)");
        if (tuner.Ema == null && file.Contains("ema." + parameters.Names[0]))
            throw new InputException("--resume", $"{path} was trained with --ema; resume with --ema");
        void Read(string prefix, ParameterSet set)
        {
            foreach (var name in set.Names)
            {
                string t = prefix + name;
                if (!file.Contains(t)) throw new InputException("--resume", $"{path}: tensor '{t}' is missing");
                var data = file.GetFloats(t);
                if (data.Length != set[name].Length) throw new InputException("--resume", $"{path}: tensor '{t}' has {data.Length} values, expected {set[name].Length}");
                data.CopyTo(set[name]);
            }
        }
        Read("param.", parameters);
        Read("adam_m.", tuner.Optimizer.FirstMoments);
        Read("adam_v.", tuner.Optimizer.SecondMoments);
        if (tuner.Ema != null) Read("ema.", tuner.Ema);
        tuner.Optimizer.Restore(steps);
        tuner.Restore(epochs);
        return epochs;
    }
}
