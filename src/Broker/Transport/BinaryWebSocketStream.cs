using System.Net.WebSockets;

namespace Broker.Transport;

/// <summary>
/// A WebSocket as a byte stream of binary messages, for a connection that reads with zero-byte reads. Each write is
/// one binary message; reads return the bytes of binary messages in order, whatever their boundaries. Unlike
/// <see cref="WebSocketStream"/> (.NET 10), a text message is an error (it must end the connection [MQTT-6.0.0-1];
/// WebSocketStream returns its bytes as data), and the peer's close message ends the stream for good: every read after
/// it returns 0 (WebSocketStream throws NotSupportedException from the read that follows a zero-byte read which saw
/// the close). The stream does not own the WebSocket: its close handshake is the caller's.
/// </summary>
internal sealed class BinaryWebSocketStream(WebSocket webSocket) : UnseekableStream
{
    private volatile bool _ended;

    // The receive still waiting for a message, if any: the close handshake waits for it before it receives the peer's
    // close message itself (a WebSocket allows one receive at a time).
    private Task<int>? _receiveInFlight;

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_ended)
        {
            return ValueTask.FromResult(0);
        }
        var receive = webSocket.ReceiveAsync(buffer, cancellationToken);
        if (receive.IsCompletedSuccessfully)
        {
            return ValueTask.FromResult(Received(receive.Result));
        }
        var waiting = AwaitReceiveAsync(receive);
        _receiveInFlight = waiting;
        return new ValueTask<int>(waiting);
    }

    private async Task<int> AwaitReceiveAsync(ValueTask<ValueWebSocketReceiveResult> receive) => Received(await receive.ConfigureAwait(false));

    /// <summary>
    /// After our close message: reads (and discards) until the peer's close message, so that the TCP connection is closed
    /// with nothing unread. A socket closed with unread bytes (the client's PUBACK, DISCONNECT or close message still in
    /// flight) is reset instead of closed, and the client sees EPIPE or ECONNRESET rather than a clean close.
    /// </summary>
    public async Task ReceivePeerCloseAsync(CancellationToken cancellationToken)
    {
        if (_receiveInFlight is { IsCompleted: false } inFlight)
        {
            try
            {
                await inFlight.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (WebSocketException)
            {
                // The stream's reader saw it already; the state below tells whether the close arrived.
            }
        }
        var discard = new byte[256];
        while (webSocket.State == WebSocketState.CloseSent)
        {
            var result = await webSocket.ReceiveAsync(discard.AsMemory(), cancellationToken).ConfigureAwait(false);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return;
            }
        }
    }

    private int Received(ValueWebSocketReceiveResult result)
    {
        switch (result.MessageType)
        {
            case WebSocketMessageType.Binary:
                // A zero-byte read returns 0 here too: data is waiting, the caller now reads with a buffer.
                return result.Count;
            case WebSocketMessageType.Close:
                _ended = true;
                return 0;
            default:
                throw new WebSocketException(WebSocketError.InvalidMessageType, "a text message: MQTT travels in binary WebSocket messages [MQTT-6.0.0-1]");
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        webSocket.SendAsync(buffer, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("asynchronous reads only");

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("asynchronous writes only");

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Flush()
    {
    }

    protected override void Dispose(bool disposing)
    {
        _ended = true;
        base.Dispose(disposing);
    }
}
