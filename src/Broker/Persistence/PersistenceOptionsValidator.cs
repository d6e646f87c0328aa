using Microsoft.Extensions.Options;

namespace Broker.Persistence;

internal sealed class PersistenceOptionsValidator : IValidateOptions<PersistenceOptions>
{
    private const string Prefix = PersistenceOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, PersistenceOptions options)
    {
        if (!options.Enabled)
        {
            return ValidateOptionsResult.Success;
        }
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Path) || options.Path.AsSpan().IndexOfAny(System.IO.Path.GetInvalidPathChars()) >= 0)
        {
            failures.Add($"{Prefix}{nameof(options.Path)} must name a directory (was '{options.Path}')");
        }
        if (options.FlushIntervalMilliseconds is < 0 or > 1000)
        {
            failures.Add($"{Prefix}{nameof(options.FlushIntervalMilliseconds)} must be between 0 and 1000 (was {options.FlushIntervalMilliseconds})");
        }
        if (options.MaxBatchSize is < 1 or > 1_000_000)
        {
            failures.Add($"{Prefix}{nameof(options.MaxBatchSize)} must be between 1 and 1000000 (was {options.MaxBatchSize})");
        }
        if (options.MaxPendingOperations < options.MaxBatchSize)
        {
            failures.Add($"{Prefix}{nameof(options.MaxPendingOperations)} must be at least {nameof(options.MaxBatchSize)} ({options.MaxBatchSize}) (was {options.MaxPendingOperations})");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
