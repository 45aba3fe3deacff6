return VitSparse.Bench.BenchApp.Run(args, Console.Out, Console.Error);
