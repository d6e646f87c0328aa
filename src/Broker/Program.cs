using Broker.Hosting;
using Broker.Security;

var commandLine = new BrokerCommandLine(Console.Out, Console.Error);
// Subcommands of other areas are added here, before the command line runs.
commandLine.Add(PasswdCommand.CreateConsoleCommand());
return await commandLine.RunAsync(args);
