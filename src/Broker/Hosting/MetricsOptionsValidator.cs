using System.Net;
using Microsoft.Extensions.Options;

namespace Broker.Hosting;

internal sealed class MetricsOptionsValidator : IValidateOptions<MetricsOptions>
{
    private const string Prefix = MetricsOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, MetricsOptions options)
    {
        // Validated even when Enabled is false: the listener stays for the health probes and the admin API.
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Address) || !IPAddress.TryParse(options.Address, out _))
        {
            failures.Add($"{Prefix}{nameof(options.Address)} must be an IPv4 or IPv6 address (was '{options.Address}')");
        }
        if (options.Port is < IPEndPoint.MinPort or > IPEndPoint.MaxPort)
        {
            failures.Add($"{Prefix}{nameof(options.Port)} must be between {IPEndPoint.MinPort} and {IPEndPoint.MaxPort} (was {options.Port})");
        }
        if (BearerToken.Check($"{Prefix}{nameof(options.Token)}", options.Token) is { } tokenProblem)
        {
            failures.Add(tokenProblem);
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
