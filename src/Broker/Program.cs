using Broker.Hosting;

var commandLine = new BrokerCommandLine(Console.Out, Console.Error);
// Subcommands of other areas are added here, before the command line runs (e.g. commandLine.Add(PasswdCommand.Create())).
return await commandLine.RunAsync(args);
