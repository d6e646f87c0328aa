using System.Diagnostics;
using Broker.Protocol;
using Conformance.Infrastructure;
using Xunit;
using static Conformance.KeepAlive.KeepAliveBounds;

namespace Conformance.KeepAlive;

/// <summary>
/// Broker:KeepAlive:ConnectTimeoutSeconds: a socket that does not complete a CONNECT is closed. MQTT leaves
/// the value to the server (3.1.4, "SHOULD close the connection if no CONNECT arrives within a reasonable amount
/// of time"); the keep-alive deadline only starts with an accepted CONNECT.
/// </summary>
[Collection(Conformance.Infrastructure.RealTimeCollection.Name)]
public sealed class ConnectTimeoutTests
{
    private const int ConnectTimeoutEventId = 6;

    [Fact]
    public async Task Silent_socket_and_half_a_connect_are_closed_after_the_connect_timeout()
    {
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:KeepAlive:ConnectTimeoutSeconds"] = "1",
        });

        await Task.WhenAll(
            NotConnectingAsync(broker, "silent", []),
            // The first 6 bytes of a 3.1.1 CONNECT (fixed header, then the start of "MQTT"): a partial packet is
            // not activity and must not hold the deadline.
            NotConnectingAsync(broker, "half CONNECT", [0x10, 0x10, 0x00, 0x04, (byte)'M', (byte)'Q']));

        Assert.Equal(2, broker.Logs.Messages(ConnectTimeoutEventId).Count(m => m.Contains("no CONNECT within 1s")));
    }

    private static async Task NotConnectingAsync(BrokerInstance broker, string who, byte[] prefix)
    {
        // Started before the TCP connect: the broker registers the deadline at accept, which is later.
        var clock = Stopwatch.StartNew();
        await using var client = await RawClient.ConnectAsync(broker);
        if (prefix.Length > 0)
        {
            await client.SendAsync(prefix);
        }
        var watch = new ConnectionWatch(client, MqttProtocolVersion.V311, clock);
        var closedAt = await watch.WaitClosedAsync(TimeSpan.FromSeconds(5));
        TestContext.Current.SendDiagnosticMessage($"connect timeout 1s, {who}: closed at {closedAt?.TotalSeconds:F3}s");
        AssertClosedInWindow(who, closedAt, TimeSpan.FromSeconds(1));
        Assert.Empty(watch.Packets);
    }
}
