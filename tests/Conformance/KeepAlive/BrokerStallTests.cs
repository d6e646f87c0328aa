using System.Diagnostics;
using Broker.Protocol;
using Conformance.Infrastructure;
using Xunit;

namespace Conformance.KeepAlive;

/// <summary>
/// A stalled broker (GC pause, SIGSTOP, starved thread pool) must not blame its clients: packets that arrived
/// during the stall wait unread in the kernel, and the wheel must read them before expiring anyone. The broker
/// runs as a child process so that it can really be frozen with SIGSTOP while the clients keep sending.
/// </summary>
[Collection(Conformance.Infrastructure.RealTimeCollection.Name)]
public sealed class BrokerStallTests
{
    private const ushort K = 2;
    private const int SigCont = 18; // Linux x86-64 and arm64
    private const int SigStop = 19;
    private static readonly TimeSpan Stall = TimeSpan.FromSeconds(4); // > 1.5K = 3 s

    [Fact]
    public async Task A_stall_longer_than_1_5K_expires_the_silent_client_and_no_client_that_kept_sending()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("Needs Linux: the broker process is frozen with SIGSTOP/SIGCONT.");
        }

        // Loopback, ephemeral ports, no store (ChildBroker's defaults).
        using var child = ChildBroker.Start(
            storeDirectory: null,
            "--Broker:KeepAlive:TickMilliseconds=100",
            // Per-connection lines are Debug; the assertions below read the disconnect line of each client.
            "--Logging:LogLevel:Broker.Connections=Debug");
        var clients = new List<RawClient>();
        var pacers = new List<PacketPacer>();
        try
        {
            var endPoint = await child.EndPoint.WaitAsync(TimeSpan.FromSeconds(30));
            var pingers = new List<(string Id, ConnectionWatch Watch, PacketPacer Pacer)>();
            var silent = new List<(string Id, ConnectionWatch Watch)>();
            foreach (var version in new[] { MqttProtocolVersion.V311, MqttProtocolVersion.V500 })
            {
                for (int i = 0; i < 2; i++)
                {
                    string id = $"pinger-{version}-{i}";
                    var (client, clock, _) = await KeepAliveClients.ConnectAsync(endPoint, version, id, K);
                    clients.Add(client);
                    var pacer = new PacketPacer(client, version, PingReqPacket.Instance, TimeSpan.FromSeconds(1));
                    pacers.Add(pacer);
                    pingers.Add((id, new ConnectionWatch(client, version, clock), pacer));
                }
                string silentId = $"silent-{version}";
                var (quiet, quietClock, _) = await KeepAliveClients.ConnectAsync(endPoint, version, silentId, K);
                clients.Add(quiet);
                silent.Add((silentId, new ConnectionWatch(quiet, version, quietClock)));
            }

            // Every client's deadline falls inside the stall; the pingers' bytes pile up in the kernel meanwhile.
            var wall = Stopwatch.StartNew();
            child.Signal(SigStop);
            using (var stall = new PeriodicTimer(Stall))
            {
                await stall.WaitForNextTickAsync();
            }
            child.Signal(SigCont);
            var stalled = wall.Elapsed;
            // PeriodicTimer may fire a millisecond early by the Stopwatch; what matters is a stall well beyond 1.5K.
            Assert.True(stalled > TimeSpan.FromSeconds(1.5 * K + 0.5), $"stall lasted only {stalled.TotalSeconds:F3}s");

            // After the stall, hold longer than 1.5K so that a wrongly stale pinger would surely have gone.
            var hold = TimeSpan.FromSeconds(1.5 * K + 0.5);
            var silentClosed = await Task.WhenAll(silent.Select(s => s.Watch.WaitClosedAsync(hold)));
            var sinceResume = wall.Elapsed - stalled;
            var pingersClosed = await Task.WhenAll(pingers.Select(p => p.Watch.WaitClosedAsync(hold - sinceResume)));
            foreach (var pacer in pacers)
            {
                await pacer.DisposeAsync();
            }

            string log = child.Output;
            for (int i = 0; i < silent.Count; i++)
            {
                Assert.True(silentClosed[i] is not null, $"{silent[i].Id} still open {hold.TotalSeconds}s after the stall. Broker output:\n{log}");
            }
            for (int i = 0; i < pingers.Count; i++)
            {
                var (id, watch, pacer) = pingers[i];
                Assert.True(pingersClosed[i] is null, $"{id} was closed at {pingersClosed[i]?.TotalSeconds:F3}s although it sent PINGREQ every second. Broker output:\n{log}");
                Assert.True(await watch.WaitForAsync(PacketType.PingResp, pacer.Sent, TimeSpan.FromSeconds(3)),
                    $"{id}: {watch.Count(PacketType.PingResp)} PINGRESP for {pacer.Sent} PINGREQ");
                Assert.DoesNotMatch($"Client {id} disconnected: .*cause keep_alive_timeout", log);
            }
            foreach (var (id, _) in silent)
            {
                // The disconnect line (Debug, enabled for the connection category below) with its cause and the silence.
                Assert.Matches($"Client {id} disconnected: .*cause keep_alive_timeout: no packet for", log);
            }
            // The stall was seen as the broker's, not the clients' (event 13).
            Assert.Matches(@"Keep-alive wheel tick ran \d+ ms late", log);
            TestContext.Current.SendDiagnosticMessage($"stall {stalled.TotalSeconds:F3}s; silent closed at {string.Join(", ", silentClosed.Select(c => c?.TotalSeconds.ToString("F3")))}s on their clocks; {pingers.Count} pingers open");
        }
        finally
        {
            foreach (var pacer in pacers)
            {
                await pacer.DisposeAsync();
            }
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }
}
