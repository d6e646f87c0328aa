using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Broker.Attack;

/// <summary>The few MQTT 3.1.1 packets the probes send, encoded by hand (byte layout of MQTT 3.1.1 section 3).</summary>
internal static class Mqtt
{
    public static readonly byte[] Disconnect = [0xE0, 0x00];

    public static byte[] Connect(string clientId, ushort keepAlive, bool cleanSession = true, string? userName = null)
    {
        var body = new MemoryStream();
        WriteString(body, "MQTT");
        body.WriteByte(4); // protocol level 3.1.1
        body.WriteByte((byte)((cleanSession ? 0x02 : 0) | (userName is null ? 0 : 0x80)));
        WriteUInt16(body, keepAlive);
        WriteString(body, clientId);
        if (userName is not null)
        {
            WriteString(body, userName);
        }
        return Packet(0x10, body.ToArray());
    }

    public static byte[] Publish(string topic, ReadOnlySpan<byte> payload, int qos, ushort packetId, bool retain)
    {
        var body = new MemoryStream();
        WriteString(body, topic);
        if (qos > 0)
        {
            WriteUInt16(body, packetId);
        }
        body.Write(payload);
        return Packet((byte)(0x30 | (qos << 1) | (retain ? 1 : 0)), body.ToArray());
    }

    public static byte[] Subscribe(ushort packetId, IEnumerable<string> filters, int qos)
    {
        var body = new MemoryStream();
        WriteUInt16(body, packetId);
        foreach (var filter in filters)
        {
            WriteString(body, filter);
            body.WriteByte((byte)qos);
        }
        return Packet(0x82, body.ToArray());
    }

    public static byte[] PubAck(ushort packetId) => [0x40, 0x02, (byte)(packetId >> 8), (byte)packetId];

    /// <summary>Fixed header of a packet of <paramref name="remainingLength"/> bytes (for packets sent only in part).</summary>
    public static byte[] Header(byte first, int remainingLength)
    {
        var header = new MemoryStream();
        header.WriteByte(first);
        WriteRemainingLength(header, remainingLength);
        return header.ToArray();
    }

    public static byte[] Packet(byte first, byte[] body)
    {
        var packet = new MemoryStream();
        packet.WriteByte(first);
        WriteRemainingLength(packet, body.Length);
        packet.Write(body);
        return packet.ToArray();
    }

    private static void WriteRemainingLength(Stream stream, int length)
    {
        do
        {
            int digit = length % 128;
            length /= 128;
            stream.WriteByte((byte)(length > 0 ? digit | 0x80 : digit));
        }
        while (length > 0);
    }

    private static void WriteString(Stream stream, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        WriteUInt16(stream, (ushort)bytes.Length);
        stream.Write(bytes);
    }

    private static void WriteUInt16(Stream stream, ushort value)
    {
        Span<byte> two = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(two, value);
        stream.Write(two);
    }

    /// <summary>A connected TCP socket to the broker (optionally with a small receive buffer, set before connecting).</summary>
    public static async Task<Socket> ConnectSocketAsync(IPEndPoint endPoint, int receiveBuffer = 0, CancellationToken cancellationToken = default)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (receiveBuffer > 0)
        {
            socket.ReceiveBufferSize = receiveBuffer;
        }
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            await socket.ConnectAsync(endPoint, timeout.Token);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}

/// <summary>Reads whole packets from a socket: (first byte, body), or null once the broker closed the connection.</summary>
internal sealed class PacketReader(Socket socket)
{
    private byte[] _buffer = new byte[16 * 1024];
    private int _start;
    private int _end;

    public async Task<(byte First, byte[] Body)?> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (TryFrame(out var packet))
            {
                return packet;
            }
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            if (_end == _buffer.Length)
            {
                Array.Resize(ref _buffer, _buffer.Length * 2);
            }
            int n;
            try
            {
                n = await socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cancellationToken);
            }
            catch (SocketException)
            {
                return null;
            }
            catch (ObjectDisposedException)
            {
                return null;
            }
            if (n == 0)
            {
                return null;
            }
            _end += n;
        }
    }

    private bool TryFrame(out (byte, byte[])? packet)
    {
        packet = null;
        int available = _end - _start;
        if (available < 2)
        {
            return false;
        }
        int length = 0, multiplier = 1, i = 1;
        while (true)
        {
            if (i >= available)
            {
                return false;
            }
            byte b = _buffer[_start + i++];
            length += (b & 0x7F) * multiplier;
            multiplier *= 128;
            if ((b & 0x80) == 0)
            {
                break;
            }
            if (i > 4)
            {
                throw new InvalidDataException("malformed remaining length from the broker");
            }
        }
        if (available < i + length)
        {
            return false;
        }
        packet = (_buffer[_start], _buffer.AsSpan(_start + i, length).ToArray());
        _start += i + length;
        return true;
    }
}
