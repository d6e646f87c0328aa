using Microsoft.Extensions.Options;

namespace Broker.Hosting;

/// <summary>The broker's <c>$SYS/</c> topics, bound from <c>Broker:Sys</c>.</summary>
internal sealed record SysOptions
{
    public const string SectionName = "Broker:Sys";

    /// <summary>Seconds between publications (Mosquitto's sys_interval defaults to 10 too); 0 publishes nothing.</summary>
    public int IntervalSeconds { get; init; } = 10;
}

internal sealed class SysOptionsValidator : IValidateOptions<SysOptions>
{
    public ValidateOptionsResult Validate(string? name, SysOptions options)
        => options.IntervalSeconds is < 0 or > 86400
            ? ValidateOptionsResult.Fail($"{SysOptions.SectionName}:{nameof(options.IntervalSeconds)} must be between 0 (off) and 86400 (was {options.IntervalSeconds})")
            : ValidateOptionsResult.Success;
}
