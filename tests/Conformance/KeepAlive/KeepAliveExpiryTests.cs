using Broker.Protocol;
using Conformance.Infrastructure;
using Xunit;
using static Conformance.KeepAlive.KeepAliveBounds;

namespace Conformance.KeepAlive;

/// <summary>
/// [MQTT-3.1.2-24] (3.1.1) / [MQTT-3.1.2-22] (5.0): with no control packet within one and a half times the
/// Keep Alive, the server closes the connection. Both versions run side by side in each test.
/// </summary>
[Collection(Conformance.Infrastructure.RealTimeCollection.Name)]
public sealed class KeepAliveExpiryTests
{
    private const int ExpiredEventId = 4;

    // K = 3 catches K * 3 / 2 in integers (4 s, not 4.5 s); K = 1 catches the same mistake (1 s, not 1.5 s).
    [Fact]
    public async Task MQTT_3_1_2_24_and_22_silent_client_is_closed_between_1_5K_and_1_5K_plus_one_tick()
    {
        await using var broker = await BrokerInstance.StartAsync();
        var cases = new List<(MqttProtocolVersion Version, ushort K)>();
        foreach (var version in new[] { MqttProtocolVersion.V311, MqttProtocolVersion.V500 })
        {
            cases.Add((version, 3));
            cases.Add((version, 1));
        }

        await Task.WhenAll(cases.Select(c => SilentClientAsync(broker, c.Version, c.K)));
    }

    private static async Task SilentClientAsync(BrokerInstance broker, MqttProtocolVersion version, ushort k)
    {
        string id = $"silent-{version}-k{k}";
        var (client, clock, _) = await KeepAliveClients.ConnectAsync(broker, version, id, k);
        await using var _client = client;
        var watch = new ConnectionWatch(client, version, clock);

        var closedAt = await watch.WaitClosedAsync(Grace(k) + TimeSpan.FromSeconds(5));
        TestContext.Current.SendDiagnosticMessage($"{id}: closed at {closedAt?.TotalSeconds:F3}s (1.5K = {Grace(k).TotalSeconds:F1}s)");
        AssertClosedInWindow(id, closedAt, Grace(k));

        var packets = watch.Packets;
        if (version == MqttProtocolVersion.V500)
        {
            // [MQTT-4.13.2-1] / 3.14: a 5.0 client learns why: DISCONNECT 0x8D Keep alive timeout, then the close.
            var last = Assert.Single(packets).Packet;
            var disconnect = Assert.IsType<DisconnectPacket>(last);
            Assert.Equal(ReasonCode.KeepAliveTimeout, disconnect.ReasonCode);
        }
        else
        {
            // 3.1.1 has no server DISCONNECT: the network connection is just closed.
            Assert.Empty(packets);
        }

        string limit = Grace(k).TotalSeconds.ToString("F3", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains(broker.Logs.Messages(ExpiredEventId), m => m.Contains($"Client {id} timed out") && m.Contains($"(limit {limit}s)"));
    }

    // Any packet moves the deadline: one packet at 1.2K, then silence, is closed 1.5K after that packet, not 1.5K after CONNECT.
    [Fact]
    public async Task MQTT_3_1_2_24_and_22_a_late_packet_moves_the_deadline()
    {
        await using var broker = await BrokerInstance.StartAsync();
        await Task.WhenAll(
            LatePacketAsync(broker, MqttProtocolVersion.V311),
            LatePacketAsync(broker, MqttProtocolVersion.V500));
    }

    private static async Task LatePacketAsync(BrokerInstance broker, MqttProtocolVersion version)
    {
        const ushort k = 2;
        string id = $"late-{version}";
        var (client, clock, _) = await KeepAliveClients.ConnectAsync(broker, version, id, k);
        await using var _client = client;
        var watch = new ConnectionWatch(client, version, clock);

        var lateAt = TimeSpan.FromSeconds(1.2 * k);
        using (var pace = new PeriodicTimer(lateAt - clock.Elapsed))
        {
            await pace.WaitForNextTickAsync();
        }
        var sentAt = clock.Elapsed;
        Assert.True(sentAt < Grace(k) - Margin, $"{id}: the test client itself ran late ({sentAt.TotalSeconds:F3}s), the machine is overloaded");
        Assert.False(watch.IsClosed, $"{id}: closed before the packet at 1.2K was even sent");
        await client.SendAsync(PingReqPacket.Instance, version);

        var closedAt = await watch.WaitClosedAsync(TimeSpan.FromSeconds(10));
        TestContext.Current.SendDiagnosticMessage($"{id}: packet at {sentAt.TotalSeconds:F3}s, closed at {closedAt?.TotalSeconds:F3}s; packets " + string.Join(",", watch.Packets.Select(p => p.Packet.Type + "@" + p.At.TotalSeconds.ToString("F3"))));
        AssertClosedInWindow(id, closedAt, sentAt + Grace(k));
        Assert.Equal(1, watch.Count(PacketType.PingResp));
    }

    // Half a packet is not a control packet: a client that stops mid-packet is closed 1.5K after its last whole packet.
    [Fact]
    public async Task MQTT_3_1_2_24_and_22_a_partial_packet_does_not_hold_the_deadline()
    {
        await using var broker = await BrokerInstance.StartAsync();
        await Task.WhenAll(
            PartialPacketAsync(broker, MqttProtocolVersion.V311),
            PartialPacketAsync(broker, MqttProtocolVersion.V500));
    }

    private static async Task PartialPacketAsync(BrokerInstance broker, MqttProtocolVersion version)
    {
        const ushort k = 1;
        string id = $"partial-{version}";
        var (client, clock, _) = await KeepAliveClients.ConnectAsync(broker, version, id, k);
        await using var _client = client;
        var watch = new ConnectionWatch(client, version, clock);
        // A QoS 0 PUBLISH header announcing 16 bytes, and 3 of them.
        await client.SendAsync([0x30, 0x10, 0x00, 0x0A, (byte)'k']);

        var closedAt = await watch.WaitClosedAsync(TimeSpan.FromSeconds(5));
        TestContext.Current.SendDiagnosticMessage($"{id}: closed at {closedAt?.TotalSeconds:F3}s");
        AssertClosedInWindow(id, closedAt, Grace(k));
    }

    // [MQTT-3.1.2-10] / 5.0 3.1.2.10: Keep Alive 0 turns the mechanism off; other clients expiring around it do not take it along.
    [Fact]
    public async Task Keep_alive_zero_is_never_expired()
    {
        await using var broker = await BrokerInstance.StartAsync();
        var hold = TimeSpan.FromSeconds(3);
        var zeroClients = new List<(RawClient Client, MqttProtocolVersion Version, ConnectionWatch Watch)>();
        var expiring = new List<(string Id, ConnectionWatch Watch)>();
        var disposables = new List<RawClient>();
        try
        {
            foreach (var version in new[] { MqttProtocolVersion.V311, MqttProtocolVersion.V500 })
            {
                var (zero, zeroClock, _) = await KeepAliveClients.ConnectAsync(broker, version, $"zero-{version}", 0);
                disposables.Add(zero);
                zeroClients.Add((zero, version, new ConnectionWatch(zero, version, zeroClock)));
                var (other, otherClock, _) = await KeepAliveClients.ConnectAsync(broker, version, $"k1-{version}", 1);
                disposables.Add(other);
                expiring.Add(($"k1-{version}", new ConnectionWatch(other, version, otherClock)));
            }

            var stillOpen = await Task.WhenAll(zeroClients.Select(z => z.Watch.WaitClosedAsync(hold)));
            for (int i = 0; i < zeroClients.Count; i++)
            {
                Assert.True(stillOpen[i] is null, $"Keep Alive 0 client ({zeroClients[i].Version}) closed at {stillOpen[i]?.TotalSeconds:F3}s");
            }
            foreach (var (id, watch) in expiring)
            {
                AssertClosedInWindow(id, await watch.WaitClosedAsync(TimeSpan.FromSeconds(5)), Grace(1));
            }

            // Still served, not merely unclosed.
            foreach (var (client, version, watch) in zeroClients)
            {
                await client.SendAsync(PingReqPacket.Instance, version);
            }
            foreach (var (_, version, watch) in zeroClients)
            {
                Assert.True(await watch.WaitForAsync(PacketType.PingResp, 1, TimeSpan.FromSeconds(5)), $"no PINGRESP for the Keep Alive 0 client ({version})");
            }
        }
        finally
        {
            foreach (var client in disposables)
            {
                await client.DisposeAsync();
            }
        }
    }
}
