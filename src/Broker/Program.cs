using Broker.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

// HOOK(security): "passwd FILE USER" manages the password file; to move into the System.CommandLine rewrite.
if (args.Length > 0 && args[0] == Broker.Security.PasswdCommand.Name)
{
    return await Broker.Security.PasswdCommand.RunConsoleAsync(args[1..]);
}

if (args.Contains(HealthCheckCommand.Switch))
{
    return await HealthCheckCommand.RunAsync(args);
}

try
{
    using var host = BrokerHost.CreateBuilder(args).Build();
    await host.RunAsync();
    return 0;
}
catch (OptionsValidationException ex)
{
    // A configuration typo stops the broker with the key named, not with a stack trace.
    foreach (var failure in ex.Failures)
    {
        Console.Error.WriteLine($"Invalid configuration: {failure}");
    }
    return 2;
}
catch (System.Net.Sockets.SocketException ex)
{
    Console.Error.WriteLine($"Cannot listen for MQTT on the configured Broker:Tcp:Address / Broker:Tcp:Port: {ex.Message} ({ex.SocketErrorCode})");
    return 3;
}
catch (InvalidOperationException ex) when (ex.Message.Contains("configuration", StringComparison.OrdinalIgnoreCase))
{
    Console.Error.WriteLine($"Invalid configuration: {ex.Message}");
    return 2;
}
