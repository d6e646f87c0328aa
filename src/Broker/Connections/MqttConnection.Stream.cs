using System.Net;
using System.Net.Sockets;
using Broker.Transport;

namespace Broker.Connections;

/// <summary>
/// The transport seam: a connection whose bytes travel through a <see cref="Stream"/> (an SslStream over the
/// socket, a WebSocket as a stream) instead of the socket fast path. Parsing, packet handling, output buffering
/// and the close sequence are the same code; only the reads and writes here differ, and they are asynchronous
/// because the stream's are. Plain TCP never comes through here.
/// </summary>
internal sealed partial class MqttConnection
{
    private async Task RunStreamReceiveLoopAsync()
    {
        var transport = _stream!;
        var stream = transport.Stream;
        try
        {
            while (!IsClosed)
            {
                if (transport.SupportsZeroByteReads && _input is null)
                {
                    // Wait for data with no buffer, as the socket path does.
                    await stream.ReadAsync(Memory<byte>.Empty).ConfigureAwait(false);
                }
                int space = EnsureInputSpace();
                int received = await stream.ReadAsync(_input.AsMemory(_inputEnd, space)).ConfigureAwait(false);
                if (received == 0)
                {
                    OnRemoteFin();
                    break;
                }
                bool handled;
                Volatile.Write(ref _receiving, true);
                try
                {
                    handled = OnBytesReceived(received);
                }
                finally
                {
                    Volatile.Write(ref _receiving, false);
                    EndReadBatch();
                }
                if (!handled && !_closeGracefully)
                {
                    break;
                }
                if (MustStopReading && !await WaitWhileHeldAsync().ConfigureAwait(false))
                {
                    break;
                }
                if (_inputStart == _inputEnd)
                {
                    ReleaseInput();
                }
                WatchPartialPacket();
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or OperationCanceledException
            or System.Security.Authentication.AuthenticationException or System.Net.WebSockets.WebSocketException)
        {
            if (!IsClosed)
            {
                var error = (e as SocketException ?? e.InnerException as SocketException)?.SocketErrorCode ?? SocketError.SocketError;
                TransportEnded(error == SocketError.SocketError ? TransportEndReason.Reset : TransportEndReasons.FromSocketError(error), error);
            }
        }
        finally
        {
            ReleaseInput();
        }
    }

    /// <summary>Writes the taken buffer to the stream; true when the write completed at once.</summary>
    private bool SendTakenToStream()
    {
        ValueTask write;
        try
        {
            write = _stream!.Stream.WriteAsync(_sending.AsMemory(_sendingOffset, _sendingLength - _sendingOffset));
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException or InvalidOperationException)
        {
            StreamWriteFailed();
            return false;
        }
        if (write.IsCompletedSuccessfully)
        {
            Sent(_sendingLength - _sendingOffset);
            ReleaseSending();
            return true;
        }
        _ = AwaitStreamWriteAsync(write);
        return false;
    }

    private async Task AwaitStreamWriteAsync(ValueTask write)
    {
        try
        {
            await write.ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or NotSupportedException
            or InvalidOperationException or System.Net.WebSockets.WebSocketException)
        {
            StreamWriteFailed();
            return;
        }
        Sent(_sendingLength - _sendingOffset);
        ReleaseSending();
        RunFlush();
    }

    private void StreamWriteFailed()
    {
        ReleaseSending();
        FinishFlushAfterClose();
        if (!IsClosed)
        {
            TransportEnded(TransportEndReason.Reset, SocketError.ConnectionReset);
        }
    }

    /// <summary>
    /// A stream has no half-close of its own: once the last packet is written the stream is closed (a TLS or
    /// WebSocket close follows the data in order, so the client still reads what came before).
    /// </summary>
    private void CloseStreamAfterFlush() => CloseTransport(TransportEndReason.LocalClosed, abortive: false);

    private void CloseStream(bool abortive)
    {
        var transport = _stream!;
        if (abortive && transport.Socket is { } socket)
        {
            try
            {
                socket.LingerState = new LingerOption(enable: true, seconds: 0);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }
        try
        {
            transport.Stream.Dispose();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or System.Net.WebSockets.WebSocketException)
        {
        }
        transport.Socket?.Dispose();
        // A WebSocket request waits for this to end (and to close the WebSocket gracefully unless aborted).
        transport.Closed?.TrySetResult(abortive);
    }
}

/// <summary>
/// What a stream-based listener hands to a connection: the stream (an authenticated SslStream, a WebSocket as a
/// stream), the TCP socket under it when there is one (for the kernel's unread-byte count and an abortive close),
/// the client's address, whether a zero-byte read waits for data (then an idle client holds no read buffer), and
/// the user name a validated TLS client certificate stands for (its subject CN; authentication takes it as is), and
/// a signal completed when the connection has closed the stream (true: abortively), for a listener that must hold on
/// until then (a WebSocket request).
/// </summary>
internal sealed record StreamTransport(Stream Stream, Socket? Socket, EndPoint? RemoteEndPoint, bool SupportsZeroByteReads,
    string? CertificateUserName = null, TaskCompletionSource<bool>? Closed = null);
