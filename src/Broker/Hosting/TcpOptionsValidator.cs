using Microsoft.Extensions.Options;

namespace Broker.Hosting;

internal sealed class TcpOptionsValidator : IValidateOptions<TcpOptions>
{
    private const string Prefix = TcpOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, TcpOptions options)
    {
        var failures = new List<string>();

        ListenerSettingChecks.Address(failures, Prefix + nameof(options.Address), options.Address);

        ListenerSettingChecks.Port(failures, Prefix + nameof(options.Port), options.Port);

        if (options.Backlog <= 0)
        {
            failures.Add($"{Prefix}{nameof(options.Backlog)} must be greater than 0 (was {options.Backlog})");
        }

        // 0 would leave no room for any message: nothing would ever be delivered.
        if (options.MaxPendingOutputBytes <= 0)
        {
            failures.Add($"{Prefix}{nameof(options.MaxPendingOutputBytes)} must be greater than 0 (was {options.MaxPendingOutputBytes})");
        }

        if (options.MaxInputBufferBytes <= 0)
        {
            failures.Add($"{Prefix}{nameof(options.MaxInputBufferBytes)} must be greater than 0 (was {options.MaxInputBufferBytes})");
        }

        if (options.SocketThreads < 0 || options.SocketThreads > 1024)
        {
            failures.Add($"{Prefix}{nameof(options.SocketThreads)} must be between 0 (the runtime's default) and 1024 (was {options.SocketThreads})");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
