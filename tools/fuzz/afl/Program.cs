using SharpFuzz;
using VitSparse.Fuzz;
using VitSparse.Runtime;

// One target of fuzz/Targets.cs under AFL++: an input refused with our exception is fine; any other
// exception (a FuzzFinding included) escapes, and SharpFuzz reports it to afl-fuzz as a crash. Hangs are
// afl-fuzz's -t timeout. Allocation budgets are the seeded fuzzer's job (fuzz --replay judges a crash file).
var target = Targets.Get(args.Length == 1 ? args[0] : throw new ArgumentException("usage: fuzz-afl TARGET"));
string scratch = Directory.CreateTempSubdirectory("vitsparse-afl-").FullName;
string input = Path.Combine(scratch, "input" + target.Extension);
Fuzzer.OutOfProcess.Run(stream =>
{
    using (var file = File.Create(input)) stream.CopyTo(file);
    try { target.Run(input, scratch); }
    catch (VitSparseException) { }
});
