using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace Broker.Security;

/// <summary>
/// Password file + anonymous policy + per-address slow-down + verification cache (docs/security.md,
/// "Authentication"). One instance per broker; safe for concurrent CONNECTs.
/// </summary>
internal sealed class ClientAuthenticator : IClientAuthenticator, IDisposable
{
    internal const string ReasonAnonymous = "anonymous";
    internal const string ReasonUnverifiedUserName = "anonymous (no password file, so the user name is not verified)";
    internal const string ReasonCertificate = "client certificate";
    internal const string ReasonPassword = "password";
    internal const string ReasonAnonymousLoopbackOnly = "anonymous clients are accepted from this machine only (Broker:Auth:AllowAnonymous)";
    internal const string ReasonAnonymousRefused = "anonymous clients are not accepted (Broker:Auth:AllowAnonymous)";
    internal const string ReasonNoPassword = "no password given";
    internal const string ReasonBadPassword = "unknown user or wrong password";

    private static readonly TimeSpan FileCheckInterval = TimeSpan.FromSeconds(1);

    private readonly AuthOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SecurityMetrics _metrics;
    private readonly WatchedFile<PasswordFile>? _passwords;
    private readonly VerifiedCredentialCache _cache;
    private readonly FailedAttemptThrottle _throttle;
    private readonly SemaphoreSlim _verifications;

    public ClientAuthenticator(AuthOptions options, TimeProvider time, ILogger<ClientAuthenticator> logger, SecurityMetrics metrics, bool watchFiles = true)
    {
        _options = options;
        _time = time;
        _logger = logger;
        _metrics = metrics;
        _cache = new VerifiedCredentialCache(options.VerificationCacheSize);
        _throttle = new FailedAttemptThrottle(time, TimeSpan.FromMilliseconds(options.FailureDelayMilliseconds), TimeSpan.FromSeconds(options.MaxFailureDelaySeconds));
        _verifications = new SemaphoreSlim(options.EffectiveConcurrentVerifications);
        if (options.HasPasswordFile)
        {
            string path = options.PasswordFile!;
            _passwords = new WatchedFile<PasswordFile>([path], () => PasswordFile.Load(path), time, logger,
                AuthOptions.SectionName + ":" + nameof(AuthOptions.PasswordFile), FileCheckInterval, watchFiles);
            _passwords.Reloaded += _ => _cache.Clear();
        }
    }

    public int UserCount => _passwords?.Current.Count ?? 0;

    internal FailedAttemptThrottle Throttle => _throttle;

    internal VerifiedCredentialCache Cache => _cache;

    /// <summary>For tests and an operator-triggered reload; normally changes are noticed by themselves.</summary>
    internal bool ReloadIfChanged() => _passwords?.CheckNow() ?? false;

    public ValueTask<AuthenticationResult> AuthenticateAsync(AuthenticationRequest request, CancellationToken cancellationToken = default)
    {
        if (request.CertificateUserName is { } certificateUser)
        {
            // The TLS listener has validated the chain against Broker:Tls:ClientCaPath.
            return new(Accept(certificateUser, ReasonCertificate));
        }
        if (request.UserName is null || _passwords is null)
        {
            return new(AuthenticateAnonymous(request, claimedUserName: request.UserName is not null));
        }

        _passwords.CheckIfDue();
        string user = request.UserName;
        if (request.Password is not { } password)
        {
            _throttle.RecordFailure(request.RemoteAddress);
            return new(Refuse(request, AuthenticationOutcome.BadCredentials, ReasonNoPassword));
        }
        long version = _passwords.Version;
        if (_cache.Contains(user, password.Span, version))
        {
            return new(Accept(user, ReasonPassword));
        }
        // The copy outlives the connection's receive buffer; it is wiped after hashing.
        return VerifyAsync(request, user, password.ToArray(), _passwords.Current, version, cancellationToken);
    }

    public bool MayTakeOver(string? sessionOwner, string? newUser) =>
        !_options.TakeoverRequiresSameUser || string.Equals(sessionOwner, newUser, StringComparison.Ordinal);

    private async ValueTask<AuthenticationResult> VerifyAsync(AuthenticationRequest request, string user, byte[] password, PasswordFile file, long version, CancellationToken cancellationToken)
    {
        try
        {
            var delay = _throttle.DelayFor(request.RemoteAddress);
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
            }

            bool verified;
            await _verifications.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                // Off the connection's thread: a PBKDF2 with 100,000 iterations takes tens of milliseconds.
                verified = await Task.Run(() => Verify(file, user, password), cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _verifications.Release();
            }

            if (verified)
            {
                _cache.Add(user, password, version);
                return Accept(user, ReasonPassword);
            }
            _throttle.RecordFailure(request.RemoteAddress);
            return Refuse(request, AuthenticationOutcome.BadCredentials, ReasonBadPassword);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(password);
        }
    }

    private bool Verify(PasswordFile file, string user, byte[] password)
    {
        _metrics.HashComputed();
        if (file.TryGetHash(user, out var hash))
        {
            return hash!.Verify(password);
        }
        // Same work for an unknown user, so the response time does not reveal which user names exist.
        file.Decoy.Verify(password);
        return false;
    }

    private AuthenticationResult AuthenticateAnonymous(AuthenticationRequest request, bool claimedUserName)
    {
        switch (_options.Anonymous)
        {
            case AnonymousAccess.Allowed:
                break;
            case AnonymousAccess.LoopbackOnly when IsLoopback(request.RemoteAddress):
                break;
            case AnonymousAccess.LoopbackOnly:
                return Refuse(request, AuthenticationOutcome.NotAuthorized, ReasonAnonymousLoopbackOnly);
            default:
                return Refuse(request, AuthenticationOutcome.NotAuthorized, ReasonAnonymousRefused);
        }
        // Without a password file a user name is only a claim: trusting it would let anyone act as any ACL user
        // or take over any user's sessions. Such a client is anonymous.
        return Accept(null, claimedUserName ? ReasonUnverifiedUserName : ReasonAnonymous);
    }

    internal static bool IsLoopback(IPAddress? address)
    {
        if (address is null)
        {
            return false;
        }
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        return IPAddress.IsLoopback(address);
    }

    private AuthenticationResult Accept(string? user, string reason)
    {
        _metrics.Authentication(AuthenticationOutcome.Accepted);
        return new AuthenticationResult(AuthenticationOutcome.Accepted, user, reason);
    }

    private AuthenticationResult Refuse(AuthenticationRequest request, AuthenticationOutcome outcome, string reason)
    {
        _metrics.Authentication(outcome);
        SecurityLog.Refused(_logger, request.ClientId, request.RemoteAddress, outcome, reason, request.UserName);
        return new AuthenticationResult(outcome, null, reason);
    }

    public void Dispose()
    {
        _passwords?.Dispose();
        _verifications.Dispose();
    }
}
