namespace Broker.Diagnostics.Insight;

/// <summary>
/// Checks <see cref="KeepAliveInsightOptions"/>; each message names the full key. Called by the keep-alive
/// options' validator, which owns the section.
/// </summary>
internal static class KeepAliveInsightOptionsValidator
{
    private const string Prefix = KeepAliveInsightOptions.SectionName + ":";

    // Beyond this the table's memory (about 2 KB per network with deaths) stops being small.
    internal const int MaxNetworksLimit = 1_000_000;

    public static void Validate(KeepAliveInsightOptions options, List<string> failures)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.PrefixLengthV4 is < 0 or > 32)
        {
            failures.Add($"{Prefix}PrefixLengthV4 must be between 0 and 32 (was {options.PrefixLengthV4}).");
        }
        if (options.PrefixLengthV6 is < 0 or > 128)
        {
            failures.Add($"{Prefix}PrefixLengthV6 must be between 0 and 128 (was {options.PrefixLengthV6}).");
        }
        if (options.MaxNetworks is < 1 or > MaxNetworksLimit)
        {
            failures.Add($"{Prefix}MaxNetworks must be between 1 and {MaxNetworksLimit} (was {options.MaxNetworks}).");
        }
        if (options.MinSamples is < 1 or > KeepAliveInsightOptions.SamplesPerNetwork)
        {
            failures.Add($"{Prefix}MinSamples must be between 1 and {KeepAliveInsightOptions.SamplesPerNetwork} (was {options.MinSamples}).");
        }
        // Written so that NaN fails too.
        if (!(options.MinDeathFraction >= 0 && options.MinDeathFraction <= 1))
        {
            failures.Add(FormattableString.Invariant($"{Prefix}MinDeathFraction must be between 0 and 1 (was {options.MinDeathFraction})."));
        }
        if (options.WindowMinutes is < 1 or > 525_600)
        {
            failures.Add($"{Prefix}WindowMinutes must be between 1 and 525600 (a year) (was {options.WindowMinutes}).");
        }
        if (options.LogIntervalSeconds is < 0 or > 86_400)
        {
            failures.Add($"{Prefix}LogIntervalSeconds must be between 0 (off) and 86400 (was {options.LogIntervalSeconds}).");
        }
    }
}
