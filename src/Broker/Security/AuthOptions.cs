namespace Broker.Security;

/// <summary>Who may connect without credentials (<c>Broker:Auth:AllowAnonymous</c>).</summary>
internal enum AnonymousAccess
{
    /// <summary>
    /// The default: a newcomer can try the broker from the same machine, while nobody on the network can use it
    /// without credentials.
    /// </summary>
    LoopbackOnly,
    Allowed,
    Refused,
}

/// <summary>Authentication and authorisation, bound from <c>Broker:Auth</c> (docs/security.md).</summary>
internal sealed record AuthOptions
{
    public const string SectionName = "Broker:Auth";

    /// <summary>Mosquitto-format password file (<c>user:$7$...</c>); unset: user names are not verified, hence not trusted.</summary>
    public string? PasswordFile { get; init; }

    /// <summary>Mosquitto-format <c>acl_file</c>; unset: every client may use every topic except publishing to $SYS.</summary>
    public string? AclFile { get; init; }

    /// <summary>"LoopbackOnly" (default), "true" or "false"; see <see cref="Anonymous"/>.</summary>
    public string AllowAnonymous { get; init; } = "LoopbackOnly";

    /// <summary>
    /// True: a connected or persisted session can only be taken over by a CONNECT authenticated as the same user,
    /// so knowing a device's client id is not enough to steal its session and queued messages.
    /// </summary>
    public bool TakeoverRequiresSameUser { get; init; } = true;

    /// <summary>
    /// First delay imposed on a client address after a failed password; doubled per further failure up to
    /// <see cref="MaxFailureDelaySeconds"/>. 0 disables the slow-down.
    /// </summary>
    public int FailureDelayMilliseconds { get; init; } = 100;

    public int MaxFailureDelaySeconds { get; init; } = 30;

    /// <summary>Successful (user, password) verifications remembered, so a reconnect storm costs no PBKDF2. 0 disables.</summary>
    public int VerificationCacheSize { get; init; } = 10_000;

    /// <summary>PBKDF2 verifications run at once; 0 = half the processors (at least 1), leaving the rest to traffic.</summary>
    public int MaxConcurrentVerifications { get; init; }

    /// <summary>Parsed <see cref="AllowAnonymous"/> (get-only, so not a configuration key).</summary>
    public AnonymousAccess Anonymous => TryParseAnonymous(AllowAnonymous, out var access) ? access : AnonymousAccess.LoopbackOnly;

    public bool HasPasswordFile => !string.IsNullOrWhiteSpace(PasswordFile);

    public bool HasAclFile => !string.IsNullOrWhiteSpace(AclFile);

    public int EffectiveConcurrentVerifications => MaxConcurrentVerifications > 0 ? MaxConcurrentVerifications : Math.Max(1, Environment.ProcessorCount / 2);

    internal static bool TryParseAnonymous(string? value, out AnonymousAccess access)
    {
        switch (value?.Trim().ToLowerInvariant())
        {
            case "loopbackonly":
                access = AnonymousAccess.LoopbackOnly;
                return true;
            case "true":
                access = AnonymousAccess.Allowed;
                return true;
            case "false":
                access = AnonymousAccess.Refused;
                return true;
            default:
                access = AnonymousAccess.LoopbackOnly;
                return false;
        }
    }
}
