using Broker.Diagnostics.Insight;
using Microsoft.Extensions.Options;

namespace Broker.Hosting;

/// <summary>Start-up validation of <see cref="KeepAliveOptions"/>; each message names the full configuration key.</summary>
internal sealed class KeepAliveOptionsValidator : IValidateOptions<KeepAliveOptions>
{
    private const string Prefix = KeepAliveOptions.SectionName + ":";

    // Above 10 the "grace" is no longer a grace: a dead client would hold its session for ten periods.
    // The cap also keeps grace x 65535 s far from any overflow.
    internal const double MaxGraceMultiplier = 10.0;

    public ValidateOptionsResult Validate(string? name, KeepAliveOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();

        if (options.MaxSeconds is < 1 or > ushort.MaxValue)
        {
            failures.Add($"{Prefix}MaxSeconds must be between 1 and 65535 (was {options.MaxSeconds}).");
        }

        if (options.ServerKeepAliveSeconds is { } server)
        {
            if (server is < 1 or > ushort.MaxValue)
            {
                failures.Add($"{Prefix}ServerKeepAliveSeconds must be between 1 and 65535 when set (was {server}).");
            }
            else if (options.MaxSeconds is >= 1 and <= ushort.MaxValue && server > options.MaxSeconds)
            {
                failures.Add($"{Prefix}ServerKeepAliveSeconds must not exceed {Prefix}MaxSeconds ({options.MaxSeconds}) (was {server}).");
            }
        }

        if (options.ConnectTimeoutSeconds < 1)
        {
            failures.Add($"{Prefix}ConnectTimeoutSeconds must be greater than 0 (was {options.ConnectTimeoutSeconds}).");
        }

        if (options.TickMilliseconds is < 10 or > 1000)
        {
            failures.Add($"{Prefix}TickMilliseconds must be between 10 and 1000 (was {options.TickMilliseconds}).");
        }

        // Written so that NaN fails too.
        if (!(options.GraceMultiplier >= 1.0 && options.GraceMultiplier <= MaxGraceMultiplier))
        {
            failures.Add(FormattableString.Invariant(
                $"{Prefix}GraceMultiplier must be between 1.0 and {MaxGraceMultiplier:0.0} (was {options.GraceMultiplier})."));
        }

        if (options.AdaptiveFloorSeconds is < 1 or > ushort.MaxValue)
        {
            failures.Add($"{Prefix}AdaptiveFloorSeconds must be between 1 and 65535 (was {options.AdaptiveFloorSeconds}).");
        }
        else if (options.Adaptive && options.MaxSeconds is >= 1 and <= ushort.MaxValue && options.AdaptiveFloorSeconds > options.MaxSeconds)
        {
            failures.Add($"{Prefix}AdaptiveFloorSeconds must not exceed {Prefix}MaxSeconds ({options.MaxSeconds}) (was {options.AdaptiveFloorSeconds}).");
        }

        if (options.Insight is null)
        {
            failures.Add($"{Prefix}Insight must be a section.");
        }
        else
        {
            KeepAliveInsightOptionsValidator.Validate(options.Insight, failures);
            if (options.Adaptive && !options.Insight.Enabled)
            {
                failures.Add($"{Prefix}Adaptive=true needs {KeepAliveInsightOptions.SectionName}:Enabled=true: it adapts to what the insight learns.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
