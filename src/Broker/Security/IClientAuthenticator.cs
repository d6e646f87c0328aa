using System.Net;
using Broker.Protocol;

namespace Broker.Security;

/// <summary>What the connection knows about a client when its CONNECT arrives.</summary>
/// <param name="RemoteAddress">The peer address (null when the transport has none: treated as not loopback).</param>
/// <param name="Password">Null when the CONNECT has no password flag. Must stay valid until the returned task completes.</param>
/// <param name="CertificateUserName">
/// The subject CN of a client certificate the TLS listener validated, else null. When set it is the user name:
/// the CONNECT's user name and password are not consulted (as Mosquitto's use_identity_as_username).
/// </param>
internal readonly record struct AuthenticationRequest(
    IPAddress? RemoteAddress,
    string ClientId,
    string? UserName,
    ReadOnlyMemory<byte>? Password,
    string? CertificateUserName = null);

internal enum AuthenticationOutcome
{
    Accepted,
    /// <summary>Unknown user, wrong or missing password: 3.1.1 CONNACK 0x04, 5.0 0x86.</summary>
    BadCredentials,
    /// <summary>Credentials are not the problem, this client may not connect (anonymous not allowed here): 0x05 / 0x87.</summary>
    NotAuthorized,
}

/// <param name="UserName">The authenticated user; null for an anonymous client (also one whose user name could not be verified).</param>
/// <param name="Reason">For the log line; never contains a password.</param>
internal readonly record struct AuthenticationResult(AuthenticationOutcome Outcome, string? UserName, string Reason)
{
    public bool IsAccepted => Outcome == AuthenticationOutcome.Accepted;

    /// <summary>The 3.1.1 CONNACK return code (3.2.2.3).</summary>
    public ConnectReturnCode ReturnCode => Outcome switch
    {
        AuthenticationOutcome.Accepted => ConnectReturnCode.Accepted,
        AuthenticationOutcome.BadCredentials => ConnectReturnCode.BadUserNameOrPassword,
        _ => ConnectReturnCode.NotAuthorized,
    };

    /// <summary>The 5.0 CONNACK reason code (3.2.2.2).</summary>
    public ReasonCode ReasonCode => Outcome switch
    {
        AuthenticationOutcome.Accepted => ReasonCode.Success,
        AuthenticationOutcome.BadCredentials => ReasonCode.BadUserNameOrPassword,
        _ => ReasonCode.NotAuthorized,
    };
}

/// <summary>Decides at CONNECT who a client is, and whether it may take over an existing session.</summary>
internal interface IClientAuthenticator
{
    /// <summary>
    /// Completes synchronously (no allocation) for anonymous clients, certificate identities and cached
    /// verifications; otherwise hashes off the calling thread, after the per-address slow-down. Cancel when the
    /// connection goes away; cancellation surfaces as <see cref="OperationCanceledException"/>.
    /// </summary>
    ValueTask<AuthenticationResult> AuthenticateAsync(AuthenticationRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// Whether a CONNECT authenticated as <paramref name="newUser"/> may take over the session (online or
    /// persisted) owned by <paramref name="sessionOwner"/>. Refuse with 3.1.1 0x05 / 5.0 0x87 and leave the
    /// existing session untouched.
    /// </summary>
    bool MayTakeOver(string? sessionOwner, string? newUser);
}
