using VitSparse.Fuzz;

// Long local campaigns and reproducers (CI runs the same campaigns, shorter, as tests/FuzzSmokeTests):
//   fuzz [--target NAME|all] [--execs N] [--minutes M] [--seed S] [--out DIR] [--fixtures DIR]
//   fuzz --replay TARGET FILE        judge one input, print the outcome
//   fuzz --minimize TARGET FILE OUT  shrink a failing input, keeping its failure signature
//   fuzz --seeds TARGET              list a target's seed files (tools/fuzz/afl.sh)
var opts = new Dictionary<string, string>();
for (int i = 0; i + 1 < args.Length; i += 2) opts[args[i].TrimStart('-')] = args[i + 1];
string Opt(string name, string fallback) => opts.TryGetValue(name, out var v) ? v : fallback;

string fixtures = Opt("fixtures", FindFixtures());
string outDir = Opt("out", Path.Combine(Path.GetTempPath(), "vitsparse-fuzz"));
string scratch = Directory.CreateTempSubdirectory("vitsparse-fuzz-").FullName;

if (args.Length == 3 && args[0] == "--replay")
{
    var (signature, problem, error, ms, allocated) = Campaign.Try(Targets.Get(args[1]), args[2], scratch);
    Console.WriteLine($"{ms:0.0} ms, {allocated / 1e6:0.0} MB allocated, {(error == null ? "accepted" : $"{error.GetType().Name}: {error.Message}")}");
    Console.WriteLine(signature == null ? "pass" : $"FAIL {signature}\n{problem}");
    return signature == null ? 0 : 1;
}
if (args.Length == 2 && args[0] == "--seeds")
{
    foreach (var file in Targets.Get(args[1]).Seeds) Console.WriteLine(Path.Combine(fixtures, file));
    return 0;
}
if (args.Length == 4 && args[0] == "--minimize")
{
    var target = Targets.Get(args[1]);
    var smallest = Minimizer.Minimize(target, File.ReadAllBytes(args[2]), scratch);
    File.WriteAllBytes(args[3], smallest);
    Console.WriteLine($"{args[3]}: {smallest.Length} bytes");
    return 0;
}

long execs = long.Parse(Opt("execs", "100000"));
int seed = int.Parse(Opt("seed", "1"));
TimeSpan? duration = opts.TryGetValue("minutes", out var m) ? TimeSpan.FromMinutes(double.Parse(m)) : null;
string which = Opt("target", "all");
var targets = which == "all" ? Targets.All : [Targets.Get(which)];
int failed = 0;
foreach (var target in targets)
{
    var result = Campaign.Run(target, fixtures, execs, seed, outDir, duration, Console.Error.WriteLine);
    Console.WriteLine(result.Summary);
    foreach (var f in result.Failures) Console.WriteLine("  " + f.ToString().Replace("\n", "\n  "));
    failed += result.Failures.Count;
}
return failed == 0 ? 0 : 1;

static string FindFixtures()
{
    for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir != null; dir = dir.Parent)
        if (Directory.Exists(Path.Combine(dir.FullName, "tests", "fixtures"))) return Path.Combine(dir.FullName, "tests", "fixtures");
    throw new DirectoryNotFoundException("tests/fixtures not found above the current folder; pass --fixtures");
}
