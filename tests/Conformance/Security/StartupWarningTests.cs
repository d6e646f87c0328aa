using Broker.Hosting;
using Broker.Security;
using Conformance.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Conformance.Security;

/// <summary>
/// The start-up warning (event 1101) covers every MQTT listener the host runs, WebSocket and TLS included. The host is
/// built, not started: nothing binds 0.0.0.0 in a test.
/// </summary>
public sealed class StartupWarningTests
{
    [Fact]
    public void Anonymous_access_open_on_a_network_address_is_warned_about_for_each_listener()
    {
        using var dir = new Broker.Tests.Security.TempDirectory();
        using var authority = Broker.Tests.Security.TestCertificates.CreateAuthority("Warning CA");
        using var leaf = Broker.Tests.Security.TestCertificates.CreateLeaf(authority, "CN=localhost", "server");
        var (certificate, key) = Broker.Tests.Security.TestCertificates.WritePem(dir, "server", leaf);
        var logs = new LogCollector();
        var builder = BrokerHost.CreateBuilder([], b =>
        {
            b.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Broker:Tcp:Address"] = "127.0.0.1",
                ["Broker:Auth:AllowAnonymous"] = "true",
                ["Broker:WebSocket:Enabled"] = "true",
                ["Broker:WebSocket:Address"] = "0.0.0.0",
                ["Broker:Tls:Enabled"] = "true",
                ["Broker:Tls:Address"] = "::",
                ["Broker:Tls:CertificatePath"] = certificate,
                ["Broker:Tls:KeyPath"] = key,
            });
            b.Logging.ClearProviders();
            b.Logging.AddProvider(logs);
        });
        using var host = builder.Build();

        host.Services.GetServices<IHostedService>().OfType<SecurityStartupReport>().Single().Report();

        var warnings = logs.Messages(1101).ToList();
        Assert.Equal(2, warnings.Count);
        Assert.Contains(warnings, w => w.Contains("WebSocket listener at 0.0.0.0", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("TLS listener at ::", StringComparison.Ordinal));
        Assert.DoesNotContain(warnings, w => w.Contains("127.0.0.1", StringComparison.Ordinal));
    }
}
