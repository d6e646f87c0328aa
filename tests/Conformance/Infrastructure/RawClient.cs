using System.Buffers;
using System.Net.Sockets;
using Broker.Protocol;

namespace Conformance.Infrastructure;

/// <summary>
/// A plain TCP client for bytes MQTTnet cannot produce (malformed packets, silence): sends raw bytes or
/// packets from the project's codec and reads packets back, every wait bounded.
/// </summary>
internal sealed class RawClient : IAsyncDisposable
{
    private readonly Socket _socket;
    // TLS or WebSocket: the bytes go through this stream (over the socket) instead of the socket itself.
    private readonly Stream? _stream;
    private byte[] _buffer = new byte[64 * 1024];
    private int _buffered;

    private RawClient(Socket socket, Stream? stream = null)
    {
        _socket = socket;
        _stream = stream;
    }

    /// <summary>A client speaking through <paramref name="stream"/> (an SslStream over <paramref name="socket"/>).</summary>
    public static RawClient Wrap(Socket socket, Stream stream) => new(socket, stream);

    public Stream? Stream => _stream;

    public Socket Socket => _socket;

    /// <summary>The exact bytes of the packet <see cref="ReceiveAsync"/> returned last, for byte-level assertions
    /// that do not trust the codec under test to read what it wrote.</summary>
    public byte[] LastPacketBytes { get; private set; } = [];

    public static Task<RawClient> ConnectAsync(BrokerInstance broker) => ConnectAsync(broker.EndPoint);

    /// <summary>A client over a socket the test connected itself (e.g. with a small receive buffer).</summary>
    public static RawClient Wrap(Socket connected) => new(connected);

    /// <summary>
    /// A client whose socket has a 4 KB receive buffer: the kernel holds little for it when it stops reading, so the
    /// broker's own output limits are reached soon (overload and back-pressure tests).
    /// </summary>
    public static Task<RawClient> ConnectWithSmallReceiveBufferAsync(BrokerInstance broker) => ConnectAsync(broker.EndPoint, receiveBufferSize: 4096);

    /// <summary>For a broker that is not a <see cref="BrokerInstance"/> (e.g. one running as a child process).</summary>
    public static async Task<RawClient> ConnectAsync(System.Net.IPEndPoint endPoint, int? receiveBufferSize = null)
    {
        var socket = new Socket(System.Net.Sockets.AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (receiveBufferSize is { } size)
        {
            socket.ReceiveBufferSize = size;
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await socket.ConnectAsync(endPoint, timeout.Token);
        return new RawClient(socket);
    }

    public async Task SendAsync(byte[] bytes) => await SendAsync(bytes.AsMemory());

    public async Task SendAsync(MqttPacket packet, MqttProtocolVersion version)
    {
        var writer = new ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(writer, packet, version);
        await SendAsync(writer.WrittenMemory);
    }

    public async Task SendAsync(ReadOnlyMemory<byte> bytes)
    {
        if (_stream is not null)
        {
            await _stream.WriteAsync(bytes);
            await _stream.FlushAsync();
        }
        else
        {
            await _socket.SendAsync(bytes, SocketFlags.None);
        }
    }

    /// <summary>Connects with CONNECT and expects a CONNACK; returns it.</summary>
    public async Task<ConnAckPacket> HandshakeAsync(MqttProtocolVersion version, string clientId, ushort keepAlive, bool cleanStart = true,
        MqttProperties? properties = null, WillMessage? will = null)
    {
        await SendAsync(new ConnectPacket
        {
            ProtocolVersion = version,
            ClientId = clientId,
            KeepAliveSeconds = keepAlive,
            CleanStart = cleanStart,
            Properties = properties,
            Will = will,
        }, version);
        var packet = await ReceiveAsync(version, TimeSpan.FromSeconds(5));
        return packet as ConnAckPacket ?? throw new InvalidOperationException($"expected CONNACK, got {packet?.Type.ToString() ?? "connection closed"}");
    }

    /// <summary>The next packet, or null when the broker closed the connection. Throws TimeoutException after <paramref name="timeout"/>.</summary>
    public async Task<MqttPacket?> ReceiveAsync(MqttProtocolVersion version, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            var sequence = new ReadOnlySequence<byte>(_buffer, 0, _buffered);
            var status = MqttPacketReader.TryRead(sequence, version, int.MaxValue, out var packet, out var consumed, out var error);
            if (status == ReadStatus.Complete)
            {
                int used = (int)sequence.Slice(0, consumed).Length;
                LastPacketBytes = _buffer.AsSpan(0, used).ToArray();
                Buffer.BlockCopy(_buffer, used, _buffer, 0, _buffered - used);
                _buffered -= used;
                return packet;
            }
            if (status == ReadStatus.Error)
            {
                throw new InvalidOperationException("broker sent an undecodable packet: " + error);
            }
            if (_buffered == _buffer.Length)
            {
                // A packet larger than the buffer: grow rather than mistake a zero-byte read for a close.
                Array.Resize(ref _buffer, _buffer.Length * 2);
            }
            int n;
            try
            {
                n = _stream is not null
                    ? await _stream.ReadAsync(_buffer.AsMemory(_buffered), cts.Token)
                    : await _socket.ReceiveAsync(_buffer.AsMemory(_buffered), SocketFlags.None, cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no packet within {timeout}");
            }
            catch (Exception e) when (e is SocketException or IOException or System.Net.WebSockets.WebSocketException)
            {
                return null;
            }
            if (n == 0)
            {
                return null;
            }
            _buffered += n;
        }
    }

    /// <summary>Waits until the broker closes the connection, skipping packets; returns them.</summary>
    public async Task<List<MqttPacket>> ReadUntilClosedAsync(MqttProtocolVersion version, TimeSpan timeout)
    {
        var packets = new List<MqttPacket>();
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        while (true)
        {
            var left = timeout - System.Diagnostics.Stopwatch.GetElapsedTime(start);
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"connection still open after {timeout}");
            }
            var packet = await ReceiveAsync(version, left);
            if (packet is null)
            {
                return packets;
            }
            packets.Add(packet);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stream is not null)
        {
            // Asynchronously: a WebSocket stream's synchronous Dispose blocks on its close handshake.
            try
            {
                await _stream.DisposeAsync();
            }
            catch (Exception e) when (e is IOException or System.Net.WebSockets.WebSocketException or ObjectDisposedException)
            {
            }
        }
        _socket.Dispose();
    }
}
