using Microsoft.Extensions.Options;

namespace Broker.Security;

/// <summary>
/// Checks the values and also loads both files once, so that a missing file or a malformed line stops start-up
/// with the key and the line named instead of refusing every client later.
/// </summary>
internal sealed class AuthOptionsValidator : IValidateOptions<AuthOptions>
{
    private const string Prefix = AuthOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, AuthOptions options)
    {
        var failures = new List<string>();
        if (!AuthOptions.TryParseAnonymous(options.AllowAnonymous, out _))
        {
            failures.Add($"{Prefix}{nameof(options.AllowAnonymous)} must be LoopbackOnly, true or false (was '{options.AllowAnonymous}')");
        }
        if (options.HasPasswordFile)
        {
            CheckFile(failures, nameof(options.PasswordFile), options.PasswordFile!, path => PasswordFile.Load(path));
        }
        if (options.HasAclFile)
        {
            CheckFile(failures, nameof(options.AclFile), options.AclFile!, path => AclFile.Load(path));
        }
        if (options.FailureDelayMilliseconds is < 0 or > 60_000)
        {
            failures.Add($"{Prefix}{nameof(options.FailureDelayMilliseconds)} must be between 0 and 60000 (was {options.FailureDelayMilliseconds})");
        }
        if (options.MaxFailureDelaySeconds is < 0 or > 3600)
        {
            failures.Add($"{Prefix}{nameof(options.MaxFailureDelaySeconds)} must be between 0 and 3600 (was {options.MaxFailureDelaySeconds})");
        }
        if (options.VerificationCacheSize is < 0 or > 10_000_000)
        {
            failures.Add($"{Prefix}{nameof(options.VerificationCacheSize)} must be between 0 and 10000000 (was {options.VerificationCacheSize})");
        }
        if (options.MaxConcurrentVerifications is < 0 or > 1024)
        {
            failures.Add($"{Prefix}{nameof(options.MaxConcurrentVerifications)} must be between 0 (automatic) and 1024 (was {options.MaxConcurrentVerifications})");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void CheckFile(List<string> failures, string key, string path, Action<string> load)
    {
        try
        {
            load(path);
        }
        catch (SecurityFileException ex)
        {
            failures.Add($"{Prefix}{key}: {ex.Message}");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            failures.Add($"{Prefix}{key} cannot be read: {ex.Message}");
        }
    }
}
