using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using Broker.Protocol;
using Conformance.Infrastructure;
using Xunit;

namespace Conformance.KeepAlive;

/// <summary>
/// Bounds shared by the keep-alive tests. Real time is unavoidable over sockets, so every measurement
/// starts on the client just BEFORE the packet the broker's deadline counts from is sent: the broker sees
/// it later, so "closed before the deadline" can never be excused by measurement skew.
/// </summary>
internal static class KeepAliveBounds
{
    /// <summary>Broker:KeepAlive:TickMilliseconds in these tests (the default).</summary>
    public static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Lateness allowed beyond one tick: thread-pool dispatch, the close, the client's receive, on a shared
    /// 2-core machine where other builds run. It only loosens the upper side; the lower side is exact.
    /// </summary>
    public static readonly TimeSpan Margin = TimeSpan.FromMilliseconds(500);

    public static TimeSpan Grace(int keepAliveSeconds) => TimeSpan.FromSeconds(keepAliveSeconds * 1.5);

    /// <summary>[expected, expected + tick + margin]: never early, at most one tick plus the margin late.</summary>
    public static void AssertClosedInWindow(string who, TimeSpan? closedAt, TimeSpan expected)
    {
        Assert.True(closedAt is not null, $"{who}: still open, expected a close at {expected.TotalSeconds:F3}s");
        var at = closedAt.Value;
        Assert.True(at >= expected, $"{who}: closed at {at.TotalSeconds:F3}s, BEFORE the deadline {expected.TotalSeconds:F3}s");
        var latest = expected + Tick + Margin;
        Assert.True(at <= latest, $"{who}: closed at {at.TotalSeconds:F3}s, later than {latest.TotalSeconds:F3}s (deadline {expected.TotalSeconds:F3}s + tick + margin)");
    }
}

/// <summary>
/// Reads everything a <see cref="RawClient"/> receives on a background task and records when the broker
/// closed the connection, on the caller's clock. The only reader of the client once started.
/// </summary>
internal sealed class ConnectionWatch
{
    private readonly RawClient _client;
    private readonly MqttProtocolVersion _version;
    private readonly Stopwatch _clock;
    private readonly ConcurrentQueue<(TimeSpan At, MqttPacket Packet)> _packets = new();
    private readonly TaskCompletionSource<TimeSpan> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _arrived = new(0);
    private readonly Task _reader;
    private readonly Action<MqttPacket, TimeSpan>? _onPacket;

    public ConnectionWatch(RawClient client, MqttProtocolVersion version, Stopwatch clock, Action<MqttPacket, TimeSpan>? onPacket = null)
    {
        _client = client;
        _version = version;
        _clock = clock;
        _onPacket = onPacket;
        _reader = Task.Run(ReadAsync);
    }

    public IReadOnlyList<(TimeSpan At, MqttPacket Packet)> Packets => [.. _packets];

    /// <summary>Completes with the clock's reading when the broker closed the connection.</summary>
    public Task<TimeSpan> Closed => _closed.Task;

    public bool IsClosed => _closed.Task.IsCompleted;

    public int Count(PacketType type) => _packets.Count(p => p.Packet.Type == type);

    /// <summary>The close time, or null if the connection is still open after <paramref name="limit"/>.</summary>
    public async Task<TimeSpan?> WaitClosedAsync(TimeSpan limit)
    {
        try
        {
            return await _closed.Task.WaitAsync(limit);
        }
        catch (TimeoutException)
        {
            return null;
        }
    }

    /// <summary>Waits until <paramref name="count"/> packets of <paramref name="type"/> have arrived; false on close or after <paramref name="limit"/>.</summary>
    public async Task<bool> WaitForAsync(PacketType type, int count, TimeSpan limit)
    {
        var deadline = _clock.Elapsed + limit;
        while (Count(type) < count)
        {
            var left = deadline - _clock.Elapsed;
            if (IsClosed || left <= TimeSpan.Zero || !await _arrived.WaitAsync(left))
            {
                return Count(type) >= count;
            }
        }
        return true;
    }

    public async Task StopAsync()
    {
        _stop.Cancel();
        await _reader.WaitAsync(TimeSpan.FromSeconds(5));
    }

    private async Task ReadAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            MqttPacket? packet;
            try
            {
                // Short slices so that StopAsync is honoured without closing the socket.
                packet = await _client.ReceiveAsync(_version, TimeSpan.FromMilliseconds(250));
            }
            catch (TimeoutException)
            {
                continue;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            var at = _clock.Elapsed;
            if (packet is null)
            {
                _closed.TrySetResult(at);
                _arrived.Release();
                return;
            }
            _packets.Enqueue((at, packet));
            _onPacket?.Invoke(packet, at);
            _arrived.Release();
        }
    }
}

/// <summary>Sends a packet every <c>interval</c> (PeriodicTimer: pacing, not synchronisation) until stopped.</summary>
internal sealed class PacketPacer : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _sent;

    public PacketPacer(RawClient client, MqttProtocolVersion version, MqttPacket packet, TimeSpan interval)
    {
        var writer = new ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(writer, packet, version);
        byte[] bytes = writer.WrittenSpan.ToArray();
        _loop = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(interval);
            try
            {
                while (await timer.WaitForNextTickAsync(_stop.Token))
                {
                    await client.SendAsync(bytes);
                    Interlocked.Increment(ref _sent);
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (System.Net.Sockets.SocketException)
            {
                // The broker closed the connection: the watch on the same client reports it.
            }
        });
    }

    public int Sent => Volatile.Read(ref _sent);

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _loop.WaitAsync(TimeSpan.FromSeconds(5));
    }
}

internal static class KeepAliveClients
{
    /// <summary>
    /// A raw client connected with <paramref name="keepAlive"/>, and a clock started just before its CONNECT
    /// was sent (the broker arms the keep-alive deadline when it handles that CONNECT, i.e. later).
    /// </summary>
    public static Task<(RawClient Client, Stopwatch Clock, ConnAckPacket Ack)> ConnectAsync(BrokerInstance broker,
        MqttProtocolVersion version, string clientId, ushort keepAlive, WillMessage? will = null)
        => ConnectAsync(broker.EndPoint, version, clientId, keepAlive, will);

    public static async Task<(RawClient Client, Stopwatch Clock, ConnAckPacket Ack)> ConnectAsync(System.Net.IPEndPoint broker,
        MqttProtocolVersion version, string clientId, ushort keepAlive, WillMessage? will = null)
    {
        var client = await RawClient.ConnectAsync(broker);
        var clock = Stopwatch.StartNew();
        var ack = await client.HandshakeAsync(version, clientId, keepAlive, will: will);
        Assert.True(ack.ReasonCode == 0, $"{clientId}: CONNACK 0x{ack.ReasonCode:X2}");
        return (client, clock, ack);
    }
}
