return VitSparse.Cli.CliApp.Run(args, Console.Out, Console.Error);
