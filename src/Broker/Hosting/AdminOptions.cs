using Microsoft.Extensions.Options;

namespace Broker.Hosting;

/// <summary>The admin HTTP API (<c>/api/clients</c>) on the metrics listener, bound from <c>Broker:Admin</c>.</summary>
internal sealed record AdminOptions
{
    public const string SectionName = "Broker:Admin";

    public bool Enabled { get; init; } = true;

    /// <summary>
    /// Unset: only requests from a loopback address are served (the metrics listener may face a network).
    /// Set: every request must carry <c>Authorization: Bearer &lt;token&gt;</c>, from any address.
    /// </summary>
    public string? Token { get; init; }
}

internal sealed class AdminOptionsValidator : IValidateOptions<AdminOptions>
{
    // A token anyone could guess is worse than none: with none, only loopback is served.
    public ValidateOptionsResult Validate(string? name, AdminOptions options)
        => BearerToken.Check($"{AdminOptions.SectionName}:{nameof(options.Token)}", options.Token) is { } problem
            ? ValidateOptionsResult.Fail(problem)
            : ValidateOptionsResult.Success;
}
