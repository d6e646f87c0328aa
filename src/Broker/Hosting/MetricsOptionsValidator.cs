using Microsoft.Extensions.Options;

namespace Broker.Hosting;

internal sealed class MetricsOptionsValidator : IValidateOptions<MetricsOptions>
{
    private const string Prefix = MetricsOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, MetricsOptions options)
    {
        // Validated even when Enabled is false: the listener stays for the health probes and the admin API.
        var failures = new List<string>();
        ListenerSettingChecks.Address(failures, Prefix + nameof(options.Address), options.Address);
        ListenerSettingChecks.Port(failures, Prefix + nameof(options.Port), options.Port);
        if (BearerToken.Check($"{Prefix}{nameof(options.Token)}", options.Token) is { } tokenProblem)
        {
            failures.Add(tokenProblem);
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
