using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Broker.Protocol;
using Conformance.Infrastructure;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Conformance.Hardening;

/// <summary>Runs alone, after the parallel tests: it measures the process's managed heap, which other tests would share.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HostileSoakCollection
{
    public const string Name = "Hostile soak";
}

/// <summary>
/// Issue #11, "a soak of hostile traffic in CI": for a bounded time, junk bytes, slowloris CONNECTs (one byte a
/// second), half-written packets, deep topics and filters, subscription floods, subscribers that stop reading and
/// CONNECT churn hit an in-process broker at once, while a well-behaved QoS 1 publisher and subscriber exchange
/// numbered messages. The broker must stay up, the good pair must lose nothing it was acknowledged, every hostile
/// connection that stalls must be closed by the broker's deadlines, and the managed heap must stay under a bound
/// derived from the configured limits (<see cref="MemoryBound"/>).
/// </summary>
[Collection(HostileSoakCollection.Name)]
public sealed class HostileSoakTests
{
    private static readonly TimeSpan SoakDuration = TimeSpan.FromSeconds(20);

    // The limits the soak runs under: tight, so that every one of them is reached within the soak.
    private const int MaxPacketSize = 64 * 1024;
    private const int MaxPendingOutputBytes = 64 * 1024;
    private const int MaxQueuedMessages = 100;
    private const int MaxQueuedBytes = 256 * 1024;
    private const int MaxInflightMessages = 100;
    private const int MaxRetainedBytes = 1024 * 1024;
    private const int PartialPacketTimeoutSeconds = 2;
    private const int ConnectTimeoutSeconds = 2;
    private const int SlowConsumerSeconds = 4;

    // The hostile population (each a loop that reconnects when the broker closes it).
    private const int StalledReaders = 20;
    private const int HalfWritten = 10;
    private const int Slowloris = 10;
    private const int FloodPayload = 2048;

    /// <summary>
    /// What the limits allow the hostile clients to make the broker hold at once, plus the fixed costs of the process:
    /// <list type="bullet">
    /// <item>each stalled reader: output the kernel has not taken, up to MaxPendingOutputBytes plus the packet being
    /// written, in a pooled array of up to twice that; its queue (MaxQueuedBytes) and in-flight window
    /// (MaxInflightMessages x the flood's message size), counted as if no two readers shared a message;</item>
    /// <item>each half-written packet: at most MaxPacketSize, in a pooled array of up to twice that;</item>
    /// <item>the retained store: MaxRetainedBytes, about 3x in memory (UTF-16 topics, objects);</item>
    /// <item>fixed: 24 MB for the rest of the process (the in-process clients and their buffers, the log collector, and
    /// what ArrayPool.Shared keeps for reuse: up to 32 arrays per size per core).</item>
    /// </list>
    /// </summary>
    private static long MemoryBound =>
        StalledReaders * (2L * (MaxPendingOutputBytes + MaxPacketSize) + MaxQueuedBytes + (long)MaxInflightMessages * (FloodPayload + 64))
        + HalfWritten * 2L * MaxPacketSize
        + 3L * MaxRetainedBytes
        + 24L * 1024 * 1024;

    [Fact]
    public async Task Under_hostile_traffic_the_broker_stays_up_loses_no_acknowledged_message_closes_stalled_connections_and_stays_within_its_memory_bound()
    {
        var cancel = TestContext.Current.CancellationToken;
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Limits:MaxPacketSize"] = $"{MaxPacketSize}",
            ["Broker:Tcp:MaxPendingOutputBytes"] = $"{MaxPendingOutputBytes}",
            ["Broker:Limits:MaxQueuedMessages"] = $"{MaxQueuedMessages}",
            ["Broker:Limits:MaxQueuedBytes"] = $"{MaxQueuedBytes}",
            ["Broker:Limits:MaxInflightMessages"] = $"{MaxInflightMessages}",
            ["Broker:Limits:MaxRetainedBytes"] = $"{MaxRetainedBytes}",
            ["Broker:Limits:MaxRetainedMessages"] = "1000",
            ["Broker:Limits:MaxSubscriptionsPerClient"] = "100",
            ["Broker:Limits:PartialPacketTimeoutSeconds"] = $"{PartialPacketTimeoutSeconds}",
            ["Broker:KeepAlive:ConnectTimeoutSeconds"] = $"{ConnectTimeoutSeconds}",
            ["Broker:Limits:StalledAfterMilliseconds"] = "500",
            ["Broker:Limits:SlowConsumerSeconds"] = $"{SlowConsumerSeconds}",
            ["Broker:Sys:IntervalSeconds"] = "0",
        }, minimumLogLevel: LogLevel.Information);
        var endPoint = broker.EndPoint;

        var good = await GoodPair.StartAsync(endPoint);
        long baseline = GC.GetTotalMemory(forceFullCollection: true);
        long peak = baseline;
        var stats = new ConcurrentDictionary<string, int>();
        var maxHostileOpen = new ConcurrentDictionary<string, double>();
        using var soak = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        soak.CancelAfter(SoakDuration);
        var token = soak.Token;

        var attackers = new List<Task>();
        attackers.AddRange(Enumerable.Range(0, 2).Select(i => Loop("junk", stats, token, () => JunkAsync(endPoint, i, token))));
        attackers.AddRange(Enumerable.Range(0, Slowloris).Select(i => Loop("slowloris", stats, token,
            () => SlowlorisAsync(endPoint, i, maxHostileOpen, token))));
        attackers.AddRange(Enumerable.Range(0, HalfWritten).Select(i => Loop("half-written", stats, token,
            () => HalfWrittenAsync(endPoint, i, maxHostileOpen, token))));
        attackers.AddRange(Enumerable.Range(0, 2).Select(i => Loop("deep-topics", stats, token, () => DeepTopicsAsync(endPoint, i, token))));
        attackers.AddRange(Enumerable.Range(0, 2).Select(i => Loop("subscription-flood", stats, token, () => SubscriptionFloodAsync(endPoint, i, token))));
        attackers.AddRange(Enumerable.Range(0, StalledReaders).Select(i => Loop("stalled-reader", stats, token, () => StalledReaderAsync(endPoint, i, token))));
        attackers.AddRange(Enumerable.Range(0, 2).Select(i => Loop("churn", stats, token, () => ChurnAsync(endPoint, i, token))));
        attackers.Add(Loop("flood", stats, token, () => FloodAsync(endPoint, stats, token)));

        // The heap after a full collection, every 2 s while the soak runs.
        using (var sampler = new PeriodicTimer(TimeSpan.FromSeconds(2)))
        {
            while (!token.IsCancellationRequested && await sampler.WaitForNextTickAsync(cancel))
            {
                peak = Math.Max(peak, GC.GetTotalMemory(forceFullCollection: true));
            }
        }
        await Task.WhenAll(attackers).WaitAsync(TimeSpan.FromSeconds(30), cancel);
        peak = Math.Max(peak, GC.GetTotalMemory(forceFullCollection: true));

        var result = await good.FinishAsync(TimeSpan.FromSeconds(30));
        string summary = $"good pair: {result}; hostile iterations: {string.Join(", ", stats.OrderBy(s => s.Key).Select(s => $"{s.Key} {s.Value}"))}; "
            + $"longest open stalled connection: {string.Join(", ", maxHostileOpen.Select(m => $"{m.Key} {m.Value:F1} s"))}; "
            + $"managed heap {baseline / 1e6:F1} MB -> peak {peak / 1e6:F1} MB (bound +{MemoryBound / 1e6:F1} MB); log entries {broker.Logs.Entries.Count}";
        TestContext.Current.SendDiagnosticMessage(summary);
        if (result.Disconnected is not null || result.Lost.Length > 0)
        {
            // What the broker said about the good clients (their lines are Debug: none at the soak's level).
            summary += "\nbroker log about them:\n" + string.Join("\n", broker.Logs.Entries
                .Where(e => e.Message.Contains("good-", StringComparison.Ordinal)).Select(e => $"{e.Level} {e.EventId.Id} {e.Message}").Take(30));
        }

        // The broker is up: a new client connects.
        await using (var fresh = await RawClient.ConnectAsync(broker))
        {
            Assert.Equal(0, (await fresh.HandshakeAsync(MqttProtocolVersion.V311, "after-soak", 30)).ReasonCode);
        }
        Assert.True(broker.Logs.Errors.Count == 0, "errors logged by the broker:\n" + string.Join("\n", broker.Logs.Errors.Take(5)));
        // The good pair lost nothing it was acknowledged, and was never disconnected.
        Assert.True(result.Acked >= 200, $"the good pair got too few acknowledgements to mean anything: {summary}");
        Assert.True(result.Lost.Length == 0, $"acknowledged and never delivered: {string.Join(", ", result.Lost.Take(20))}; {summary}");
        Assert.True(result.Disconnected is null, $"the good pair was disconnected: {result.Disconnected}; {summary}");
        // Every attack ran, and the broker's deadlines closed what stalled: within the deadline plus a generous margin
        // for a loaded machine (the wheel's tick and a busy thread pool).
        foreach (var attack in new[] { "junk", "slowloris", "half-written", "deep-topics", "subscription-flood", "stalled-reader", "churn" })
        {
            Assert.True(stats.GetValueOrDefault(attack) > 0, $"{attack} never completed an iteration: {summary}");
        }
        Assert.True(maxHostileOpen.GetValueOrDefault("slowloris") < ConnectTimeoutSeconds + 8, summary);
        Assert.True(maxHostileOpen.GetValueOrDefault("half-written") < PartialPacketTimeoutSeconds + 8, summary);
        Assert.Contains(broker.Logs.Messages(8), m => m.Contains("slow consumer", StringComparison.Ordinal));
        Assert.True(peak - baseline < MemoryBound, summary);
    }

    // ---- the hostile clients ----------------------------------------------------------------------------------

    /// <summary>Runs <paramref name="iteration"/> until the soak ends, counting iterations; socket errors are part of the game.</summary>
    private static Task Loop(string name, ConcurrentDictionary<string, int> stats, CancellationToken token, Func<Task> iteration) => Task.Run(async () =>
    {
        while (!token.IsCancellationRequested)
        {
            try
            {
                await iteration();
                stats.AddOrUpdate(name, 1, (_, n) => n + 1);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException or TimeoutException)
            {
            }
        }
    });

    private static async Task JunkAsync(IPEndPoint endPoint, int seed, CancellationToken token)
    {
        var random = new Random(seed);
        using var socket = await OpenAsync(endPoint, token);
        var junk = new byte[random.Next(1, 4096)];
        random.NextBytes(junk);
        await socket.SendAsync(junk, SocketFlags.None, token);
        // Whatever the bytes were, the broker closes the connection (protocol error, or the connect timeout).
        await WaitClosedAsync(socket, TimeSpan.FromSeconds(ConnectTimeoutSeconds + 10), token);
    }

    private static async Task SlowlorisAsync(IPEndPoint endPoint, int i, ConcurrentDictionary<string, double> longest, CancellationToken token)
    {
        using var socket = await OpenAsync(endPoint, token);
        var connect = Encode(new ConnectPacket { ProtocolVersion = MqttProtocolVersion.V311, ClientId = $"slowloris-{i}", KeepAliveSeconds = 0, CleanStart = true });
        var open = Stopwatch.StartNew();
        var closed = WaitClosedAsync(socket, TimeSpan.FromSeconds(ConnectTimeoutSeconds + 20), CancellationToken.None);
        using var perSecond = new PeriodicTimer(TimeSpan.FromSeconds(1));
        // One byte a second, never the last one.
        for (int b = 0; b < connect.Length - 1 && !closed.IsCompleted; b++)
        {
            await socket.SendAsync(connect.AsMemory(b, 1), SocketFlags.None, token);
            await perSecond.WaitForNextTickAsync(token);
        }
        if (await closed)
        {
            Record(longest, "slowloris", open.Elapsed.TotalSeconds);
        }
    }

    private static async Task HalfWrittenAsync(IPEndPoint endPoint, int i, ConcurrentDictionary<string, double> longest, CancellationToken token)
    {
        using var socket = await OpenAsync(endPoint, token);
        await HandshakeAsync(socket, $"half-{i}", keepAlive: 0, token);
        // A PUBLISH announcing 60,000 bytes of which half are sent: Keep Alive 0, so only the partial-packet deadline ends it.
        var publish = Encode(new PublishPacket { Topic = "half/x", Payload = new byte[60_000], QoS = QualityOfService.AtMostOnce });
        await socket.SendAsync(publish.AsMemory(0, publish.Length / 2), SocketFlags.None, token);
        var open = Stopwatch.StartNew();
        if (await WaitClosedAsync(socket, TimeSpan.FromSeconds(PartialPacketTimeoutSeconds + 20), token))
        {
            Record(longest, "half-written", open.Elapsed.TotalSeconds);
        }
    }

    private static async Task DeepTopicsAsync(IPEndPoint endPoint, int i, CancellationToken token)
    {
        using var socket = await OpenAsync(endPoint, token);
        await HandshakeAsync(socket, $"deep-{i}", keepAlive: 30, token);
        // Filters of 30,000 levels (refused per filter with SUBACK 0x80), then a retained PUBLISH to a topic of 50,000
        // levels (3.1.1: the connection is closed).
        await socket.SendAsync(Encode(new SubscribePacket
        {
            PacketId = 1,
            Subscriptions = [.. Enumerable.Range(0, 3).Select(k => new TopicSubscription(string.Concat(Enumerable.Repeat("/+", 15_000)) + k, QualityOfService.AtLeastOnce))],
        }), SocketFlags.None, token);
        await socket.SendAsync(Encode(new PublishPacket { Topic = new string('/', 50_000), Payload = "x"u8.ToArray(), Retain = true }), SocketFlags.None, token);
        await WaitClosedAsync(socket, TimeSpan.FromSeconds(10), token);
    }

    private static async Task SubscriptionFloodAsync(IPEndPoint endPoint, int i, CancellationToken token)
    {
        using var socket = await OpenAsync(endPoint, token);
        await HandshakeAsync(socket, $"subflood-{i}", keepAlive: 30, token);
        // 500 distinct filters (past MaxSubscriptionsPerClient), then one SUBSCRIBE repeating '#' 2,000 times.
        await socket.SendAsync(Encode(new SubscribePacket
        {
            PacketId = 1,
            Subscriptions = [.. Enumerable.Range(0, 500).Select(k => new TopicSubscription($"flood/{k}/+/#", QualityOfService.AtLeastOnce))],
        }), SocketFlags.None, token);
        await socket.SendAsync(Encode(new SubscribePacket
        {
            PacketId = 2,
            Subscriptions = [.. Enumerable.Repeat(new TopicSubscription("#", QualityOfService.AtLeastOnce), 2000)],
        }), SocketFlags.None, token);
        // Read (and drop) what comes for a second, then leave without DISCONNECT.
        await DrainAsync(socket, TimeSpan.FromSeconds(1), token);
    }

    private static async Task StalledReaderAsync(IPEndPoint endPoint, int i, CancellationToken token)
    {
        // A small receive buffer: the kernel holds little for a client that does not read.
        using var socket = await OpenAsync(endPoint, token, receiveBuffer: 4096);
        await HandshakeAsync(socket, $"stalled-{i}", keepAlive: 60, token);
        await socket.SendAsync(Encode(new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription("#", QualityOfService.AtLeastOnce)] }),
            SocketFlags.None, token);
        // Never reads again: held open for longer than SlowConsumerSeconds, so that the broker disconnects it first.
        using var hold = new PeriodicTimer(TimeSpan.FromSeconds(SlowConsumerSeconds + 3));
        await hold.WaitForNextTickAsync(token);
    }

    private static async Task ChurnAsync(IPEndPoint endPoint, int i, CancellationToken token)
    {
        using var socket = await OpenAsync(endPoint, token);
        await HandshakeAsync(socket, $"churn-{i}", keepAlive: 30, token);
        await socket.SendAsync(Encode(new DisconnectPacket()), SocketFlags.None, token);
    }

    /// <summary>QoS 0 and QoS 1 messages to flood/x as fast as PUBACKs come back (at most 20 outstanding), some retained.</summary>
    private static async Task FloodAsync(IPEndPoint endPoint, ConcurrentDictionary<string, int> stats, CancellationToken token)
    {
        using var socket = await OpenAsync(endPoint, token);
        await HandshakeAsync(socket, "flooder", keepAlive: 30, token);
        var window = new SemaphoreSlim(20, 20);
        var acks = Task.Run(async () =>
        {
            var buffer = new byte[4096];
            int n;
            try
            {
                // PUBACKs are 4 bytes each; every one read frees a window slot.
                int pending = 0;
                while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None)) > 0)
                {
                    pending += n;
                    for (; pending >= 4; pending -= 4)
                    {
                        window.Release();
                    }
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or SemaphoreFullException)
            {
            }
        }, CancellationToken.None);
        var payload = new byte[FloodPayload];
        for (ushort id = 1; !token.IsCancellationRequested; id = (ushort)(id == ushort.MaxValue ? 1 : id + 1))
        {
            await window.WaitAsync(token);
            bool retain = id % 50 == 0;
            await socket.SendAsync(Encode(new PublishPacket
            {
                Topic = retain ? $"flood/retained/{id % 500}" : "flood/x",
                Payload = payload,
                QoS = QualityOfService.AtLeastOnce,
                PacketId = id,
                Retain = retain,
            }), SocketFlags.None, token);
            stats.AddOrUpdate("flood messages", 1, (_, n) => n + 1);
        }
        socket.Close(0);
        await acks;
    }

    // ---- helpers ----------------------------------------------------------------------------------------------

    private static void Record(ConcurrentDictionary<string, double> longest, string name, double seconds) =>
        longest.AddOrUpdate(name, seconds, (_, old) => Math.Max(old, seconds));

    private static byte[] Encode(MqttPacket packet)
    {
        var writer = new ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(writer, packet, MqttProtocolVersion.V311);
        return writer.WrittenSpan.ToArray();
    }

    private static async Task<Socket> OpenAsync(IPEndPoint endPoint, CancellationToken token, int receiveBuffer = 0)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (receiveBuffer > 0)
        {
            socket.ReceiveBufferSize = receiveBuffer;
        }
        try
        {
            await socket.ConnectAsync(endPoint, token);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>CONNECT and its 4-byte 3.1.1 CONNACK (accepted).</summary>
    private static async Task HandshakeAsync(Socket socket, string clientId, ushort keepAlive, CancellationToken token)
    {
        await socket.SendAsync(Encode(new ConnectPacket { ProtocolVersion = MqttProtocolVersion.V311, ClientId = clientId, KeepAliveSeconds = keepAlive, CleanStart = true }),
            SocketFlags.None, token);
        var connack = new byte[4];
        for (int read = 0; read < 4;)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
            timeout.CancelAfter(TimeSpan.FromSeconds(20));
            int n = await socket.ReceiveAsync(connack.AsMemory(read), SocketFlags.None, timeout.Token);
            if (n == 0)
            {
                throw new SocketException((int)SocketError.ConnectionReset);
            }
            read += n;
        }
        if (connack[0] != 0x20 || connack[3] != 0)
        {
            throw new InvalidOperationException($"CONNACK refused: {Convert.ToHexString(connack)}");
        }
    }

    /// <summary>Reads and drops until the broker closes the connection: true, or false after <paramref name="timeout"/>.</summary>
    private static async Task<bool> WaitClosedAsync(Socket socket, TimeSpan timeout, CancellationToken token)
    {
        var buffer = new byte[4096];
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(token);
        bound.CancelAfter(timeout);
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, bound.Token) > 0)
            {
            }
            return true;
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static async Task DrainAsync(Socket socket, TimeSpan duration, CancellationToken token)
    {
        await WaitClosedAsync(socket, duration, token);
    }

    /// <summary>The well-behaved pair: numbered QoS 1 messages on good/data, 50 a second, the subscriber acknowledging each.</summary>
    private sealed class GoodPair
    {
        private readonly RawClient _publisher;
        private readonly RawClient _subscriber;
        private readonly CancellationTokenSource _stop = new();
        private readonly ConcurrentDictionary<ushort, int> _inflight = new();
        private readonly ConcurrentDictionary<int, byte> _acked = new();
        private readonly ConcurrentDictionary<int, byte> _received = new();
        private Task _publishing = Task.CompletedTask;
        private Task _acking = Task.CompletedTask;
        private Task _receiving = Task.CompletedTask;
        private volatile string? _disconnected;
        private int _published;

        private GoodPair(RawClient publisher, RawClient subscriber)
        {
            _publisher = publisher;
            _subscriber = subscriber;
        }

        public static async Task<GoodPair> StartAsync(IPEndPoint endPoint)
        {
            var subscriber = await RawClient.ConnectAsync(endPoint);
            await subscriber.HandshakeAsync(MqttProtocolVersion.V311, "good-sub", 30);
            await subscriber.SendAsync(new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription("good/#", QualityOfService.AtLeastOnce)] },
                MqttProtocolVersion.V311);
            Assert.IsType<SubAckPacket>(await subscriber.ReceiveAsync(MqttProtocolVersion.V311, TimeSpan.FromSeconds(20)));
            var publisher = await RawClient.ConnectAsync(endPoint);
            await publisher.HandshakeAsync(MqttProtocolVersion.V311, "good-pub", 30);
            var pair = new GoodPair(publisher, subscriber);
            pair._receiving = Task.Run(pair.ReceiveAsync);
            pair._acking = Task.Run(pair.AckAsync);
            pair._publishing = Task.Run(pair.PublishAsync);
            return pair;
        }

        private async Task PublishAsync()
        {
            using var pace = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
            var payload = new byte[4];
            ushort id = 0;
            try
            {
                while (await pace.WaitForNextTickAsync(_stop.Token))
                {
                    if (_inflight.Count >= 50)
                    {
                        continue;
                    }
                    int seq = _published++;
                    id = (ushort)(id == ushort.MaxValue ? 1 : id + 1);
                    _inflight[id] = seq;
                    BinaryPrimitives.WriteInt32BigEndian(payload, seq);
                    await _publisher.SendAsync(new PublishPacket { Topic = "good/data", Payload = payload.ToArray(), QoS = QualityOfService.AtLeastOnce, PacketId = id },
                        MqttProtocolVersion.V311);
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (SocketException e)
            {
                _disconnected ??= $"publisher: send failed ({e.SocketErrorCode})";
            }
        }

        private async Task AckAsync()
        {
            while (true)
            {
                MqttPacket? packet;
                try
                {
                    packet = await _publisher.ReceiveAsync(MqttProtocolVersion.V311, TimeSpan.FromMinutes(5));
                }
                catch (TimeoutException)
                {
                    return;
                }
                if (packet is null)
                {
                    _disconnected ??= _stop.IsCancellationRequested ? null : "publisher";
                    return;
                }
                if (packet is PubAckPacket ack && _inflight.TryRemove(ack.PacketId, out int seq))
                {
                    _acked[seq] = 0;
                }
            }
        }

        private async Task ReceiveAsync()
        {
            while (true)
            {
                MqttPacket? packet;
                try
                {
                    packet = await _subscriber.ReceiveAsync(MqttProtocolVersion.V311, TimeSpan.FromMinutes(5));
                }
                catch (TimeoutException)
                {
                    return;
                }
                if (packet is null)
                {
                    _disconnected ??= _stop.IsCancellationRequested ? null : "subscriber";
                    return;
                }
                if (packet is PublishPacket publish)
                {
                    _received[BinaryPrimitives.ReadInt32BigEndian(publish.Payload.Span)] = 0;
                    await _subscriber.SendAsync(new PubAckPacket { PacketId = publish.PacketId }, MqttProtocolVersion.V311);
                }
            }
        }

        /// <summary>Stops publishing and waits (bounded) until every acknowledged message has arrived.</summary>
        public async Task<GoodPairResult> FinishAsync(TimeSpan drain)
        {
            await _stop.CancelAsync();
            await _publishing;
            var waited = Stopwatch.StartNew();
            using var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
            while (waited.Elapsed < drain && (!_inflight.IsEmpty || _acked.Keys.Any(seq => !_received.ContainsKey(seq))) && _disconnected is null)
            {
                await poll.WaitForNextTickAsync();
            }
            var lost = _acked.Keys.Where(seq => !_received.ContainsKey(seq)).Order().ToArray();
            var result = new GoodPairResult(_published, _acked.Count, _received.Count, _inflight.Count, lost, _disconnected);
            await _publisher.DisposeAsync();
            await _subscriber.DisposeAsync();
            await Task.WhenAll(_acking, _receiving).WaitAsync(TimeSpan.FromSeconds(10));
            _stop.Dispose();
            return result;
        }
    }

    private sealed record GoodPairResult(int Published, int Acked, int Received, int Unacknowledged, int[] Lost, string? Disconnected)
    {
        public override string ToString() =>
            $"{Published} published, {Acked} acknowledged, {Received} received, {Unacknowledged} unacknowledged at the end, {Lost.Length} lost";
    }
}
