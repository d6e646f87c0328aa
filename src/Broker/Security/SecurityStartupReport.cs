using System.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Broker.Security;

/// <summary>A listener the security settings apply to, named as operators know it ("MQTT", "TLS", ...).</summary>
internal readonly record struct ListenerAddress(string Name, string Address);

/// <summary>
/// At start-up: one summary line of the security settings, a warning for every listener that accepts anonymous
/// clients from the network, and a hint when nobody but the local machine can connect. It also loads the password
/// and ACL files, so that they are read before the first client arrives.
/// </summary>
internal sealed class SecurityStartupReport(
    AuthOptions options,
    ClientAuthenticator authenticator,
    TopicAuthorizer authorizer,
    bool clientCertificatesConfigured,
    IReadOnlyList<ListenerAddress> listeners,
    ILogger<SecurityStartupReport> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        Report();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    internal void Report()
    {
        SecurityLog.Summary(logger, options.Anonymous, options.HasPasswordFile ? options.PasswordFile! : "none", authenticator.UserCount,
            authorizer.HasAcl ? options.AclFile! : "none (every topic except publishing to $SYS)", options.TakeoverRequiresSameUser);
        foreach (var listener in listeners)
        {
            if (IsLoopbackOnly(listener.Address))
            {
                continue;
            }
            if (options.Anonymous == AnonymousAccess.Allowed)
            {
                SecurityLog.AnonymousOpenToNetwork(logger, listener.Name, listener.Address);
            }
            else if (options.Anonymous == AnonymousAccess.LoopbackOnly && !options.HasPasswordFile && !clientCertificatesConfigured)
            {
                SecurityLog.OnlyLoopbackCanConnect(logger, listener.Name, listener.Address);
            }
        }
    }

    /// <summary>A loopback address; "0.0.0.0" and "::" listen on every interface, so they are not.</summary>
    internal static bool IsLoopbackOnly(string address) => IPAddress.TryParse(address, out var parsed) && ClientAuthenticator.IsLoopback(parsed);
}
