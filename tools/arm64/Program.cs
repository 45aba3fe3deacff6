// vitsparse-arm64-tests [--trx FILE] [--name NAME] [--class CLASS ...] [--test CLASS.METHOD ...] [--rows CLASS=N ...]
//                       [--exclude METHOD ...] [--require-isa ISA] [--slow SECONDS]
// Runs xunit tests of VitSparse.Tests in process, without a test host: a self-contained linux-arm64 publish of
// this program runs under qemu-aarch64, where `dotnet test` cannot. By default it runs every class with
// [Trait("Category", "Kernels")] and ParityTests (the kernels against their references, the models against the
// PyTorch goldens). Facts and theories (InlineData/MemberData) run one by one; a theory row that forces a
// SimdWidth wider than this CPU's (Vector256/512 on ARM, emulated there in software) is skipped: x64 runs those.
// Prints the ISA the kernels chose, every failure, and "NAME: N passed, N failed, N skipped"; --trx writes the
// counts as a TRX file, the format test.sh sums. --require-isa fails the run unless Isa.Describe() is ISA;
// --test adds one method of another class; --rows CLASS=N runs the first N rows of each theory of CLASS (the rest count as skipped);
// --exclude skips a test method by name (counted as skipped); a test slower than --slow seconds (10) is named. Exit code 1 when a test failed or none ran.
using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using VitSparse.Kernels;
using Xunit;
using Xunit.Sdk;

string? trx = null, name = "arm64", requiredIsa = null;
var excluded = new HashSet<string>();
var tests = new HashSet<string>();   // Class.Method run alone, without the rest of its class
var rowsPerTheory = new Dictionary<string, int>();   // CLASS=N: the first N rows of each of its theories
double slowSeconds = 10;
var classes = new List<string>();
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--trx" when i + 1 < args.Length: trx = args[++i]; break;
        case "--name" when i + 1 < args.Length: name = args[++i]; break;
        case "--class" when i + 1 < args.Length: classes.Add(args[++i]); break;
        case "--require-isa" when i + 1 < args.Length: requiredIsa = args[++i]; break;
        case "--exclude" when i + 1 < args.Length: excluded.Add(args[++i]); break;
        case "--test" when i + 1 < args.Length: tests.Add(args[++i]); break;
        case "--rows" when i + 1 < args.Length && args[i + 1].Split('=') is [var c, var n] && int.TryParse(n, out int r) && r > 0: rowsPerTheory[c] = r; i++; break;
        case "--slow" when i + 1 < args.Length && double.TryParse(args[i + 1], out double s) && s >= 0: slowSeconds = double.Parse(args[++i]); break;
        default:
            Console.Error.WriteLine($"error: {args[i]}: unknown argument; usage: vitsparse-arm64-tests [--trx FILE] [--name NAME] [--class CLASS ...] [--require-isa ISA] [--exclude METHOD ...] [--test CLASS.METHOD ...] [--rows CLASS=N ...] [--slow SECONDS]");
            return 2;
    }
}

Console.WriteLine($"[{name}] {RuntimeInformation.ProcessArchitecture}, kernels {Isa.Describe()}, " +
    $"Vector128 {Vector128.IsHardwareAccelerated}, Vector256 {Vector256.IsHardwareAccelerated}, Vector512 {Vector512.IsHardwareAccelerated}, " +
    $"hardware FMA {HardwareFma.IsSupported}, {Environment.ProcessorCount} cpus");

var assembly = typeof(VitSparse.Tests.KernelTests).Assembly;
var selected = assembly.GetTypes()
    .Where(t => t.IsClass && t.IsPublic && !t.IsAbstract)
    .Where(t => classes.Count + tests.Count > 0 ? classes.Contains(t.Name) || tests.Any(m => m.StartsWith(t.Name + ".")) : IsKernelCategory(t) || t.Name == "ParityTests")
    .OrderBy(t => t.Name)
    .ToList();
if (classes.Concat(tests.Select(m => m.Split('.')[0])).Except(selected.Select(t => t.Name)).FirstOrDefault() is { } unknown)
{
    Console.Error.WriteLine($"error: {unknown}: no such public test class in {assembly.GetName().Name}");
    return 2;
}

int passed = 0, failed = 0, skipped = 0;
if (requiredIsa != null && Isa.Describe() != requiredIsa)
{
    // Counted as a failed test: on an ARM board the kernels must run AdvSimd, not a scalar or emulated path.
    failed++;
    Console.WriteLine($"[{name}] FAILED the kernels chose {Isa.Describe()}, not {requiredIsa}");
}
var clock = Stopwatch.StartNew();
foreach (var type in selected)
{
    var typeClock = Stopwatch.StartNew();
    var fixtures = new Dictionary<Type, object>();   // IClassFixture<T>: one T per class, as xunit shares it
    int before = passed + failed;
    foreach (var method in type.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static).OrderBy(m => m.MetadataToken))
    {
        var fact = method.GetCustomAttribute<FactAttribute>();
        if (fact == null) continue;
        if (classes.Count + tests.Count > 0 && !classes.Contains(type.Name) && !tests.Contains($"{type.Name}.{method.Name}")) continue;
        int rowsRun = 0, maxRows = rowsPerTheory.GetValueOrDefault(type.Name, int.MaxValue);
        if (fact.Skip != null) { skipped++; continue; }
        IEnumerable<object?[]> rows = fact is TheoryAttribute
            ? method.GetCustomAttributes<DataAttribute>().SelectMany(d => d.GetData(method))
            : [[]];
        foreach (var row in rows)
        {
            if (row.OfType<SimdWidth>().Any(w => w > Isa.Best) || rowsRun++ >= maxRows) { skipped++; continue; }
            string test = $"{type.Name}.{method.Name}({string.Join(", ", row)})";
            if (excluded.Contains(method.Name)) { skipped++; continue; }
            var testClock = Stopwatch.StartNew();
            try
            {
                object? instance = method.IsStatic ? null : Create(type, fixtures);
                try
                {
                    var result = method.Invoke(instance, row);
                    if (result is Task task) task.GetAwaiter().GetResult();
                }
                finally { (instance as IDisposable)?.Dispose(); }
                passed++;
                if (testClock.Elapsed.TotalSeconds >= slowSeconds) Console.WriteLine($"[{name}] slow: {test} took {testClock.Elapsed.TotalSeconds:0.0} s");
            }
            catch (Exception e)
            {
                failed++;
                var cause = e is TargetInvocationException { InnerException: { } inner } ? inner : e;
                Console.WriteLine($"[{name}] FAILED {test}: {cause.GetType().Name}: {cause.Message.ReplaceLineEndings(" ")}");
            }
        }
    }
    foreach (var fixture in fixtures.Values) (fixture as IDisposable)?.Dispose();
    Console.WriteLine($"[{name}] {type.Name}: {passed + failed - before} run in {typeClock.Elapsed.TotalSeconds:0.0} s");
}

Console.WriteLine($"[{name}] {passed} passed, {failed} failed, {skipped} skipped in {clock.Elapsed.TotalSeconds:0.0} s");
if (trx != null) WriteTrx(trx, name, passed, failed, skipped);
return failed == 0 && passed > 0 ? 0 : 1;

// A test class instance as xunit makes it: constructor parameters are an ITestOutputHelper or class fixtures.
static object Create(Type type, Dictionary<Type, object> fixtures)
{
    var ctor = type.GetConstructors().Single();
    var args = ctor.GetParameters().Select(p =>
        p.ParameterType == typeof(Xunit.Abstractions.ITestOutputHelper) ? new ConsoleOutput() :
        fixtures.TryGetValue(p.ParameterType, out var f) ? f :
        fixtures[p.ParameterType] = Activator.CreateInstance(p.ParameterType)!).ToArray();
    return ctor.Invoke(args);
}

static bool IsKernelCategory(Type t) => t.CustomAttributes.Any(a =>
    a.AttributeType == typeof(TraitAttribute) &&
    a.ConstructorArguments is [{ Value: "Category" }, { Value: "Kernels" }]);

// The TRX summary test.sh reads (<Counters total= executed= passed= failed= ...>); no per-test entries.
static void WriteTrx(string path, string name, int passed, int failed, int skipped)
{
    string outcome = failed == 0 ? "Completed" : "Failed";
    File.WriteAllText(path, $"""
        <?xml version="1.0" encoding="utf-8"?>
        <TestRun id="{Guid.NewGuid()}" name="{name}" xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010">
          <ResultSummary outcome="{outcome}">
            <Counters total="{passed + failed + skipped}" executed="{passed + failed}" passed="{passed}" failed="{failed}" error="0" timeout="0" aborted="0" inconclusive="0" passedButRunAborted="0" notRunnable="0" notExecuted="{skipped}" disconnected="0" warning="0" completed="0" inProgress="0" pending="0" />
          </ResultSummary>
        </TestRun>
        """);
}

/// <summary>A test's output lines, written through to the console.</summary>
sealed class ConsoleOutput : Xunit.Abstractions.ITestOutputHelper
{
    public void WriteLine(string message) => Console.WriteLine("    " + message);
    public void WriteLine(string format, params object[] args) => Console.WriteLine("    " + string.Format(format, args));
}
