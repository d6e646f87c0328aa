using Microsoft.Extensions.Options;

namespace Broker.Hosting;

internal sealed class TcpKeepAliveOptionsValidator : IValidateOptions<TcpKeepAliveOptions>
{
    private const string Prefix = TcpKeepAliveOptions.SectionName + ":";

    // Values are checked even when Enabled is false, so that switching it on later cannot fail at start-up.
    public ValidateOptionsResult Validate(string? name, TcpKeepAliveOptions options)
    {
        var failures = new List<string>();
        CheckRange(failures, nameof(options.IdleSeconds), options.IdleSeconds, TcpKeepAliveOptions.MaxSeconds);
        CheckRange(failures, nameof(options.IntervalSeconds), options.IntervalSeconds, TcpKeepAliveOptions.MaxSeconds);
        CheckRange(failures, nameof(options.ProbeCount), options.ProbeCount, TcpKeepAliveOptions.MaxProbeCount);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void CheckRange(List<string> failures, string key, int value, int max)
    {
        if (value is < 1 || value > max)
        {
            failures.Add($"{Prefix}{key} must be between 1 and {max} (was {value})");
        }
    }
}
