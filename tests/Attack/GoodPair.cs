using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Broker.Attack;

/// <summary>
/// The well-behaved QoS 1 publisher and subscriber that run beside every attack: numbered messages on good/data at a
/// steady rate (at most 20 unacknowledged), the subscriber acknowledging each. A message whose PUBACK the publisher
/// got and that never reached the subscriber is a loss; any disconnect of either is recorded.
/// </summary>
internal sealed class GoodPair : IAsyncDisposable
{
    private const int MaxInflight = 20;
    private readonly Socket _pub;
    private readonly Socket _sub;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<ushort, long> _inflight = new();
    private readonly ConcurrentDictionary<long, byte> _acked = new();
    private readonly ConcurrentDictionary<long, byte> _received = new();
    private readonly SemaphoreSlim _window = new(MaxInflight, MaxInflight);
    private readonly ConcurrentQueue<string> _events = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private Task _publishing = Task.CompletedTask;
    private Task _pubReading = Task.CompletedTask;
    private Task _subReading = Task.CompletedTask;
    private long _published;
    private long _duplicates;
    private double _maxAckWaitMs;

    private GoodPair(Socket pub, Socket sub)
    {
        _pub = pub;
        _sub = sub;
    }

    public static async Task<GoodPair> StartAsync(IPEndPoint endPoint, int messagesPerSecond)
    {
        var sub = await Mqtt.ConnectSocketAsync(endPoint);
        var pub = await Mqtt.ConnectSocketAsync(endPoint);
        var pair = new GoodPair(pub, sub);
        var subReader = new PacketReader(sub);
        await sub.SendAsync(Mqtt.Connect("good-sub", keepAlive: 30));
        await Expect(subReader, 0x20, "CONNACK");
        await sub.SendAsync(Mqtt.Subscribe(1, ["good/#"], qos: 1));
        await Expect(subReader, 0x90, "SUBACK");
        var pubReader = new PacketReader(pub);
        await pub.SendAsync(Mqtt.Connect("good-pub", keepAlive: 30));
        await Expect(pubReader, 0x20, "CONNACK");
        pair._subReading = Task.Run(() => pair.SubscribeLoopAsync(subReader));
        pair._pubReading = Task.Run(() => pair.AckLoopAsync(pubReader));
        pair._publishing = Task.Run(() => pair.PublishLoopAsync(messagesPerSecond));
        return pair;
    }

    private static async Task Expect(PacketReader reader, byte type, string name)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var packet = await reader.ReadAsync(timeout.Token);
        if (packet is not { } p || (p.First & 0xF0) != type)
        {
            throw new InvalidOperationException($"good pair: expected {name}, got {(packet is null ? "close" : $"0x{packet.Value.First:X2}")}");
        }
    }

    public IReadOnlyCollection<string> Events => _events;

    private async Task PublishLoopAsync(int messagesPerSecond)
    {
        var payload = new byte[64];
        ushort packetId = 0;
        var interval = TimeSpan.FromSeconds(1.0 / messagesPerSecond);
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                var waited = Stopwatch.StartNew();
                await _window.WaitAsync(_stop.Token);
                long seq = _published++;
                do
                {
                    packetId = (ushort)(packetId == ushort.MaxValue ? 1 : packetId + 1);
                }
                while (_inflight.ContainsKey(packetId));
                _inflight[packetId] = seq;
                BinaryPrimitives.WriteInt64BigEndian(payload, seq);
                await _pub.SendAsync(Mqtt.Publish("good/data", payload, qos: 1, packetId, retain: false), _stop.Token);
                _maxAckWaitMs = Math.Max(_maxAckWaitMs, waited.Elapsed.TotalMilliseconds);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            _events.Enqueue($"{_clock.Elapsed.TotalSeconds:F1}s publisher send failed: {e.Message}");
        }
    }

    private async Task AckLoopAsync(PacketReader reader)
    {
        while (true)
        {
            var packet = await reader.ReadAsync(CancellationToken.None);
            if (packet is not { } p)
            {
                if (!_stop.IsCancellationRequested)
                {
                    _events.Enqueue($"{_clock.Elapsed.TotalSeconds:F1}s publisher disconnected by the broker");
                }
                return;
            }
            if ((p.First & 0xF0) == 0x40 && p.Body.Length >= 2)
            {
                ushort id = BinaryPrimitives.ReadUInt16BigEndian(p.Body);
                if (_inflight.TryRemove(id, out long seq))
                {
                    _acked[seq] = 0;
                    _window.Release();
                }
            }
        }
    }

    private async Task SubscribeLoopAsync(PacketReader reader)
    {
        while (true)
        {
            var packet = await reader.ReadAsync(CancellationToken.None);
            if (packet is not { } p)
            {
                if (!_stop.IsCancellationRequested)
                {
                    _events.Enqueue($"{_clock.Elapsed.TotalSeconds:F1}s subscriber disconnected by the broker");
                }
                return;
            }
            if ((p.First & 0xF0) != 0x30)
            {
                continue;
            }
            int qos = (p.First >> 1) & 3;
            int topicLength = BinaryPrimitives.ReadUInt16BigEndian(p.Body);
            int offset = 2 + topicLength;
            ushort id = 0;
            if (qos > 0)
            {
                id = BinaryPrimitives.ReadUInt16BigEndian(p.Body.AsSpan(offset));
                offset += 2;
            }
            string topic = System.Text.Encoding.UTF8.GetString(p.Body, 2, topicLength);
            if (topic == "good/data" && p.Body.Length - offset >= 8)
            {
                long seq = BinaryPrimitives.ReadInt64BigEndian(p.Body.AsSpan(offset));
                if (!_received.TryAdd(seq, 0))
                {
                    Interlocked.Increment(ref _duplicates);
                }
            }
            if (qos == 1)
            {
                try
                {
                    await _sub.SendAsync(Mqtt.PubAck(id));
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Stops publishing, waits (bounded) for every acknowledged message to arrive, and counts.</summary>
    public async Task<GoodPairResult> FinishAsync(TimeSpan drain)
    {
        await _stop.CancelAsync();
        await _publishing;
        var waited = Stopwatch.StartNew();
        while (waited.Elapsed < drain && (_acked.Keys.Any(seq => !_received.ContainsKey(seq)) || !_inflight.IsEmpty))
        {
            await Task.Delay(100);
        }
        long lost = _acked.Keys.Count(seq => !_received.ContainsKey(seq));
        return new GoodPairResult(_published, _acked.Count, _received.Count, lost, _inflight.Count, Interlocked.Read(ref _duplicates), _maxAckWaitMs, [.. _events]);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await _stop.CancelAsync();
        }
        _pub.Dispose();
        _sub.Dispose();
        await Task.WhenAll(_publishing, _pubReading, _subReading).WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { });
        _stop.Dispose();
    }
}

internal sealed record GoodPairResult(long Published, long Acked, long Received, long Lost, long Unacked, long Duplicates, double MaxWindowWaitMs, string[] Events)
{
    public override string ToString() =>
        $"published {Published}, acknowledged {Acked}, received {Received}, lost {Lost}, unacknowledged at end {Unacked}, duplicates {Duplicates}, longest wait for the window {MaxWindowWaitMs:F0} ms"
        + (Events.Length > 0 ? "; " + string.Join("; ", Events) : "");
}
