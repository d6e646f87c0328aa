using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace Broker.Transport;

internal sealed partial class SocketConnection
{
    private async Task ReceiveLoopAsync()
    {
        PipeWriter input = _inputPipe.Writer;
        bool socketFailed = false;
        try
        {
            while (true)
            {
                // Wait for data with no buffer: an idle connection (most MQTT connections, most of the
                // time) pins no pipe memory. The peer's FIN or an error also ends this wait.
                await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None).ConfigureAwait(false);

                // From here until the bytes are counted they are neither in the socket (Available is 0 once
                // they are copied) nor in BytesReceived: HasUnreadInput must still say so, or the keep-alive
                // wheel, waking from a stall at the same moment, could expire a client whose packet is in hand.
                Volatile.Write(ref _receiving, true);
                Memory<byte> buffer = input.GetMemory(ReceiveSizeHint);
                int received = await _socket.ReceiveAsync(buffer, SocketFlags.None).ConfigureAwait(false);
                if (received == 0)
                {
                    Volatile.Write(ref _receiving, false);
                    RecordEnd(TransportEndReason.RemoteClosed, SocketError.Success, null);
                    break;
                }

                input.Advance(received);
                Volatile.Write(ref _bytesReceived, _bytesReceived + received);
                Volatile.Write(ref _receiving, false);

                // Held here while the owner has MaxInputBufferBytes unexamined: we stop reading the socket
                // and TCP flow control slows the client down.
                FlushResult flush = await input.FlushAsync().ConfigureAwait(false);
                if (flush.IsCompleted || flush.IsCanceled)
                {
                    // The owner stopped reading Input; the socket stays as it is until it closes it.
                    break;
                }
            }
        }
        catch (SocketException e)
        {
            RecordSocketError(e);
            socketFailed = true;
        }
        catch (ObjectDisposedException)
        {
            RecordEnd(TransportEndReason.Aborted, SocketError.OperationAborted, null);
            socketFailed = true;
        }
        catch (Exception e)
        {
            TransportLog.LoopFaulted(_logger, e, "receive", RemoteEndPoint);
            RecordEnd(TransportEndReason.Faulted, SocketError.Success, e.Message);
            socketFailed = true;
        }
        finally
        {
            Volatile.Write(ref _receiving, false);
            // No exception into the pipe: the owner reads the reason from End, not from a throw.
            await input.CompleteAsync().ConfigureAwait(false);
        }

        if (socketFailed)
        {
            // A broken socket cannot send either; a FIN, by contrast, leaves sending to the owner.
            StopSendLoop(SendStopNow);
        }
    }

    private async Task SendLoopAsync()
    {
        PipeReader output = _outputPipe.Reader;
        bool graceful = false;
        try
        {
            while (true)
            {
                ReadResult result = await output.ReadAsync().ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = result.Buffer;
                int state = Volatile.Read(ref _sendState);
                if (state == SendStopNow)
                {
                    break;
                }

                if (!buffer.IsEmpty)
                {
                    // One send per segment; each await reuses the socket's cached event args, so
                    // nothing is allocated per send.
                    foreach (ReadOnlyMemory<byte> segment in buffer)
                    {
                        int sent = await _socket.SendAsync(segment, SocketFlags.None).ConfigureAwait(false);
                        Volatile.Write(ref _bytesSent, _bytesSent + sent);
                    }
                }

                output.AdvanceTo(buffer.End);

                // A cancelled read while still running cannot come from us (we only cancel to stop); go on.
                if (result.IsCompleted || state == SendDrainThenStop)
                {
                    RecordEnd(TransportEndReason.LocalClosed, SocketError.Success, null);
                    graceful = true;
                    break;
                }
            }
        }
        catch (SocketException e)
        {
            RecordSocketError(e);
        }
        catch (ObjectDisposedException)
        {
            RecordEnd(TransportEndReason.Aborted, SocketError.OperationAborted, null);
        }
        catch (Exception e)
        {
            TransportLog.LoopFaulted(_logger, e, "send", RemoteEndPoint);
            RecordEnd(TransportEndReason.Faulted, SocketError.Success, e.Message);
        }
        finally
        {
            // Releases a writer held in FlushAsync; its result now says IsCompleted.
            await output.CompleteAsync().ConfigureAwait(false);
        }

        // The send side decides when the socket closes: after a graceful end the FIN follows the last
        // byte; otherwise the socket is reset. Closing also ends the receive loop.
        CloseSocket(abortive: !graceful);
    }
}
