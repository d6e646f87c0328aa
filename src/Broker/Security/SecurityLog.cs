using System.Net;
using Broker.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Broker.Security;

/// <summary>
/// Source-generated log messages of the security layer, event ids 1100-1149. No message ever carries a password,
/// a hash or key material.
/// </summary>
internal static partial class SecurityLog
{
    // What a client sent (client id, user name, certificate subject) is escaped here, in the one place every caller
    // goes through: a client cannot forge log lines (issue #11).
    public static void Refused(ILogger logger, string clientId, IPAddress? remoteAddress, AuthenticationOutcome outcome, string reason, string? userName) =>
        RefusedEscaped(logger, LogText.Escape(clientId), remoteAddress, outcome, reason, LogText.Escape(userName));

    [LoggerMessage(EventId = 1100, Level = LogLevel.Information, Message = "Client {ClientId} from {RemoteAddress} refused ({Outcome}): {Reason}; user '{UserName}'")]
    private static partial void RefusedEscaped(ILogger logger, string clientId, IPAddress? remoteAddress, AuthenticationOutcome outcome, string reason, string userName);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Warning, Message = "Anonymous clients are accepted on the {Listener} listener at {Address}, which other machines can reach: set Broker:Auth:AllowAnonymous to LoopbackOnly or false, and give clients credentials (docs/security.md)")]
    public static partial void AnonymousOpenToNetwork(ILogger logger, string listener, string address);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Information, Message = "Only clients on this machine can connect to the {Listener} listener at {Address}: anonymous access is loopback-only and no password file is set (Broker:Auth:PasswordFile, docs/security.md)")]
    public static partial void OnlyLoopbackCanConnect(ILogger logger, string listener, string address);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Information, Message = "Security: anonymous {Anonymous}; password file {PasswordFile} ({Users} users); ACL file {AclFile}; session takeover by the same user only: {SameUserTakeover}")]
    public static partial void Summary(ILogger logger, AnonymousAccess anonymous, string passwordFile, int users, string aclFile, bool sameUserTakeover);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Information, Message = "Reloaded {Setting} after a change of {Path}")]
    public static partial void Reloaded(ILogger logger, string setting, string path);

    [LoggerMessage(EventId = 1105, Level = LogLevel.Error, Message = "{Setting} changed but cannot be used, keeping the previous version: {Problem}")]
    public static partial void ReloadFailed(ILogger logger, string setting, string problem);

    [LoggerMessage(EventId = 1106, Level = LogLevel.Warning, Message = "Cannot watch {Directory} for changes of {Setting} ({Problem}); changes are still noticed at connects, within {IntervalSeconds} s")]
    public static partial void WatchFailed(ILogger logger, string directory, string setting, string problem, double intervalSeconds);

    public static void DangerousNameForPatterns(ILogger logger, string clientId, string? userName) =>
        DangerousNameForPatternsEscaped(logger, LogText.Escape(clientId), LogText.Escape(userName));

    [LoggerMessage(EventId = 1107, Level = LogLevel.Information, Message = "ACL patterns do not apply to client {ClientId} (user '{UserName}'): its user name or client id contains '+', '#' or '/'")]
    private static partial void DangerousNameForPatternsEscaped(ILogger logger, string clientId, string userName);

    [LoggerMessage(EventId = 1108, Level = LogLevel.Warning, Message = "The TLS server certificate {Subject} expires at {NotAfter:u} (in {Days:F0} days)")]
    public static partial void CertificateExpiring(ILogger logger, string subject, DateTime notAfter, double days);

    public static void ClientCertificateRefused(ILogger logger, string problem, string? subject) =>
        ClientCertificateRefusedEscaped(logger, problem, LogText.Escape(subject));

    [LoggerMessage(EventId = 1109, Level = LogLevel.Information, Message = "TLS client certificate refused: {Problem}; subject '{Subject}'")]
    private static partial void ClientCertificateRefusedEscaped(ILogger logger, string problem, string subject);
}
