using System.Collections.Concurrent;
using System.Text;
using Broker.Protocol;
using Conformance.Infrastructure;
using Xunit;
using static Conformance.Persistence.PersistenceRestartTests;

namespace Conformance.Persistence;

/// <summary>
/// Nothing the broker acknowledged is lost when it is killed (SIGKILL) in the middle of the traffic, delayed wills
/// outlive a restart, and a damaged store stops start-up instead of being replaced by an empty one.
/// </summary>
public sealed class PersistenceCrashTests : IDisposable
{
    private static readonly MqttProtocolVersion V311 = MqttProtocolVersion.V311;
    private static readonly MqttProtocolVersion V500 = MqttProtocolVersion.V500;
    private readonly string _store = BrokerInstance.NewStoreDirectory();

    public void Dispose() => BrokerInstance.DeleteStoreDirectory(_store);

    [Fact]
    public async Task Every_QoS_1_message_acknowledged_before_a_kill_9_reaches_the_persistent_subscriber_after_the_restart()
    {
        const int Window = 100;
        var acknowledged = new ConcurrentDictionary<int, byte>();
        var received = new ConcurrentDictionary<int, int>();
        // Queues large enough for the whole flood: the drop-oldest policy of a full offline queue is not what this tests.
        string[] roomy = ["--Broker:Limits:MaxQueuedMessages=1000000", "--Broker:Limits:MaxQueuedBytes=1000000000"];
        var (first, endPoint) = await ChildBroker.StartListeningAsync(_store, roomy);
        using (first)
        {
            // The subscriber reads and acknowledges the first part of the flood, then goes offline: the rest is queued,
            // in flight or being written when the broker dies.
            await using var sub = await ConnectAsync(endPoint, V311, "crash-sub", cleanStart: false, expectPresent: false);
            await sub.SubscribeAsync("crash/#", QualityOfService.AtLeastOnce, V311);
            await using var pub = await ConnectAsync(endPoint, V311, "crash-pub", cleanStart: true, expectPresent: false);

            // The publisher keeps up to Window messages unacknowledged.
            var subscribing = ReceiveUntilClosedAsync(sub, received);
            var window = new SemaphoreSlim(Window);
            var sequenceOf = new ConcurrentDictionary<ushort, int>();
            var acks = Task.Run(async () =>
            {
                while (await ReceiveOrNullAsync(pub, V311) is { } packet)
                {
                    if (packet is PubAckPacket ack && sequenceOf.TryRemove(ack.PacketId, out int sequence))
                    {
                        acknowledged[sequence] = 0;
                        window.Release();
                    }
                }
            });
            using var stop = new CancellationTokenSource();
            var publishing = Task.Run(async () =>
            {
                try
                {
                    for (int sequence = 1; !stop.IsCancellationRequested; sequence++)
                    {
                        await window.WaitAsync(stop.Token);
                        ushort packetId = (ushort)(sequence % 60_000 + 1);
                        sequenceOf[packetId] = sequence;
                        await pub.SendAsync(Publish("crash/t", sequence.ToString(System.Globalization.CultureInfo.InvariantCulture), QualityOfService.AtLeastOnce, packetId), V311);
                    }
                }
                catch (Exception e) when (e is OperationCanceledException or System.Net.Sockets.SocketException or ObjectDisposedException)
                {
                }
            });

            // Killed while messages are in every state: sent, routed, queued, in flight, acknowledged.
            using (var traffic = new PeriodicTimer(TimeSpan.FromMilliseconds(50)))
            {
                bool subscriberGone = false;
                for (int i = 0; i < 200 && acknowledged.Count < 4_000; i++)
                {
                    await traffic.WaitForNextTickAsync();
                    if (!subscriberGone && acknowledged.Count >= 500)
                    {
                        // Gone without DISCONNECT (and with messages in flight to it): the session stays.
                        sub.Socket.Close(0);
                        subscriberGone = true;
                    }
                }
            }
            await first.CrashAsync();
            stop.Cancel();
            await Task.WhenAll(publishing, acks, subscribing).WaitAsync(TimeSpan.FromSeconds(20));
        }
        Assert.True(acknowledged.Count > 0, "nothing was acknowledged before the kill");
        int beforeKill = received.Count;

        var (second, endPoint2) = await ChildBroker.StartListeningAsync(_store, roomy);
        using (second)
        {
            await using var sub = await ConnectAsync(endPoint2, V311, "crash-sub", cleanStart: false, expectPresent: true);
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (acknowledged.Keys.Any(s => !received.ContainsKey(s)) && !bound.IsCancellationRequested)
            {
                if (await ReceiveOrNullAsync(sub, V311, TimeSpan.FromSeconds(10)) is not PublishPacket publish)
                {
                    break;
                }
                Record(publish, received);
                await sub.SendAsync(new PubAckPacket { PacketId = publish.PacketId }, V311);
            }
        }

        var missing = acknowledged.Keys.Where(s => !received.ContainsKey(s)).Order().ToList();
        int duplicates = received.Values.Sum(n => n - 1);
        TestContext.Current.SendDiagnosticMessage(
            $"acknowledged {acknowledged.Count}, received {beforeKill} before the kill and {received.Count - beforeKill} after, {duplicates} duplicates");
        Assert.True(missing.Count == 0, $"{missing.Count} acknowledged messages lost, e.g. {string.Join(", ", missing.Take(10))}");
    }

    [Fact]
    public async Task A_delayed_will_outlives_a_restart_and_is_published_at_start_up_when_its_time_came_while_the_broker_was_down()
    {
        var session = new MqttProperties { SessionExpiryInterval = 600 };
        var (first, endPoint) = await ChildBroker.StartListeningAsync(_store, "--Logging:LogLevel:Broker.Connections=Debug");
        using (first)
        {
            await using (var watcher = await ConnectAsync(endPoint, V500, "will-watch", cleanStart: true, expectPresent: false, session))
            {
                await watcher.SubscribeAsync("wills/#", QualityOfService.AtLeastOnce, V500);
                await watcher.SendAsync(new DisconnectPacket(), V500);
            }
            var will = new WillMessage
            {
                Topic = "wills/dying",
                Payload = Encoding.UTF8.GetBytes("gone"),
                QoS = QualityOfService.AtLeastOnce,
                Properties = new MqttProperties { WillDelayInterval = 1 },
            };
            var dying = await ConnectAsync(endPoint, V500, "dying", cleanStart: true, expectPresent: false, session, will);
            // Gone without DISCONNECT: the will waits for its delay.
            await dying.DisposeAsync();
            await first.WaitForOutputAsync("Client dying disconnected", TimeSpan.FromSeconds(20));
            Assert.Equal(0, await first.StopAsync());
        }
        // The delay passes while the broker is down.
        using (var down = new PeriodicTimer(TimeSpan.FromSeconds(1.5)))
        {
            await down.WaitForNextTickAsync();
        }

        var (second, endPoint2) = await ChildBroker.StartListeningAsync(_store);
        using (second)
        {
            Assert.Contains("1 overdue wills published", second.Output);
            await using var watcher = await ConnectAsync(endPoint2, V500, "will-watch", cleanStart: false, expectPresent: true, session);
            var published = await watcher.ExpectAsync<PublishPacket>(V500);
            Assert.Equal(("wills/dying", "gone"), (published.Topic, Encoding.UTF8.GetString(published.Payload.Span)));
            await watcher.SendAsync(new PubAckPacket { PacketId = published.PacketId }, V500);
            await watcher.AssertNothingBeforePingRespAsync(V500);
        }
    }

    [Fact]
    public async Task A_damaged_store_stops_start_up_with_exit_code_2_and_the_documented_message_and_is_left_as_it_was()
    {
        Directory.CreateDirectory(_store);
        string database = Path.Combine(_store, "broker.db");
        byte[] garbage = [.. Enumerable.Range(0, 8192).Select(i => (byte)(i * 7 + 3))];
        await File.WriteAllBytesAsync(database, garbage, TestContext.Current.CancellationToken);

        using var broker = ChildBroker.Start(_store);
        int code = await broker.WaitForExitAsync();

        string output = broker.Output;
        Assert.Equal(2, code);
        Assert.Contains($"Cannot start: The persistent store {database} is not a SQLite database", output);
        Assert.Contains($"mv \"{database}\" \"{database}.bad\"", output);
        Assert.Contains("Broker:Persistence:Enabled=false", output);
        Assert.DoesNotContain("MQTT listener on", output);
        Assert.DoesNotMatch(@"\n\s+at ", output);
        Assert.Equal(garbage, await File.ReadAllBytesAsync(database, TestContext.Current.CancellationToken));
    }

    private static async Task ReceiveUntilClosedAsync(RawClient client, ConcurrentDictionary<int, int> received)
    {
        while (await ReceiveOrNullAsync(client, V311) is { } packet)
        {
            if (packet is PublishPacket publish)
            {
                Record(publish, received);
                try
                {
                    await client.SendAsync(new PubAckPacket { PacketId = publish.PacketId }, V311);
                }
                catch (Exception e) when (e is System.Net.Sockets.SocketException or ObjectDisposedException)
                {
                    return;
                }
            }
        }
    }

    private static void Record(PublishPacket publish, ConcurrentDictionary<int, int> received)
        => received.AddOrUpdate(int.Parse(Encoding.UTF8.GetString(publish.Payload.Span), System.Globalization.CultureInfo.InvariantCulture), 1, (_, n) => n + 1);

    /// <summary>The next packet, or null when the connection closed (or nothing came within the bound).</summary>
    private static async Task<MqttPacket?> ReceiveOrNullAsync(RawClient client, MqttProtocolVersion version, TimeSpan? timeout = null)
    {
        try
        {
            return await client.ReceiveAsync(version, timeout ?? TimeSpan.FromSeconds(30));
        }
        catch (Exception e) when (e is TimeoutException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            return null;
        }
    }
}
