using Microsoft.Extensions.Options;

namespace Broker.Diagnostics;

/// <summary>
/// How the console log looks, bound from <c>Broker:Logging</c>. Levels stay the standard <c>Logging:LogLevel:*</c>
/// keys; these settings only choose among the runtime's own console formatters and set the summary interval.
/// </summary>
internal sealed record BrokerLoggingOptions
{
    public const string SectionName = "Broker:Logging";

    public static readonly string[] Formats = ["simple", "json", "systemd"];

    /// <summary>
    /// <c>simple</c>: one line per event with a UTC timestamp; <c>json</c>: one JSON object per line (log shippers);
    /// <c>systemd</c>: one line with a syslog priority prefix and no timestamp (journald adds its own).
    /// </summary>
    public string Format { get; init; } = "simple";

    /// <summary>
    /// Per-connection lines are Debug; every this many seconds one Information line counts the connects,
    /// disconnects (by cause) and refusals of the interval, when there were any. 0 turns the summary off.
    /// </summary>
    public int SummarySeconds { get; init; } = 60;
}

internal sealed class BrokerLoggingOptionsValidator : IValidateOptions<BrokerLoggingOptions>
{
    private const string Prefix = BrokerLoggingOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, BrokerLoggingOptions options)
    {
        var failures = new List<string>();
        if (!BrokerLoggingOptions.Formats.Contains(options.Format, StringComparer.OrdinalIgnoreCase))
        {
            failures.Add($"{Prefix}{nameof(options.Format)} must be one of {string.Join(", ", BrokerLoggingOptions.Formats)} (was '{options.Format}')");
        }
        if (options.SummarySeconds is < 0 or > 86400)
        {
            failures.Add($"{Prefix}{nameof(options.SummarySeconds)} must be between 0 (off) and 86400 (was {options.SummarySeconds})");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
