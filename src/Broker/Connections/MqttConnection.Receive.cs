using System.Buffers;
using System.Net.Sockets;
using Broker.Protocol;
using Broker.Transport;

namespace Broker.Connections;

internal sealed partial class MqttConnection
{
    // Asked of the pool for each read once the zero-byte receive said data is waiting. Most MQTT packets are tiny,
    // so one such buffer holds a whole burst; a larger packet gets a buffer of its own size (see EnsureInputSpace).
    private const int ReceiveChunkSize = 4096;

    // Input: pooled, held only while bytes are in flight (a partial packet between reads keeps it).
    private byte[]? _input;
    private int _inputStart;
    private int _inputEnd;
    // True while the receive path holds bytes taken from the kernel that it has not handled yet: the keep-alive
    // wheel, waking from a stall, must not expire a client whose packet is in hand.
    private bool _receiving;
    // The read loop's thread while it handles a batch (0 otherwise): what it writes is flushed once at the end of
    // the batch, on that thread.
    private int _readThread;
    private bool _wroteInReadBatch;
    // The CONNACK of a CONNECT handled in the last batch waits until the next receive is posted (see EndReadBatch).
    private bool _flushAfterReceivePosted;

    /// <summary>
    /// Posts zero-byte receives until one is pending; each that completes at once is handled here. Reads run on the
    /// socket's completion threads, never on more than one thread at a time for one connection.
    /// </summary>
    private void ReceiveLoop()
    {
        var socket = _socket!;
        while (true)
        {
            if (IsClosed)
            {
                ReleaseInput();
                return;
            }
            bool pending;
            try
            {
                pending = socket.ReceiveAsync(this);
            }
            catch (ObjectDisposedException)
            {
                ReleaseInput();
                return;
            }
            catch (SocketException e)
            {
                TransportEnded(TransportEndReasons.FromSocketError(e.SocketErrorCode), e.SocketErrorCode);
                ReleaseInput();
                return;
            }
            if (_flushAfterReceivePosted)
            {
                _flushAfterReceivePosted = false;
                if (TryStartFlush())
                {
                    RunFlush();
                }
            }
            if (pending || !OnReceiveReady())
            {
                return;
            }
        }
    }

    /// <summary>The zero-byte receive completed asynchronously (on the socket engine's thread, or the thread pool).</summary>
    protected override void OnCompleted(SocketAsyncEventArgs e)
    {
        if (OnReceiveReady())
        {
            ReceiveLoop();
        }
    }

    /// <summary>Handles a completed zero-byte receive; true to post the next one.</summary>
    private bool OnReceiveReady()
    {
        if (SocketError != SocketError.Success)
        {
            if (!IsClosed)
            {
                TransportEnded(TransportEndReasons.FromSocketError(SocketError), SocketError);
            }
            ReleaseInput();
            return false;
        }
        return ReadAvailable() == ReadOutcome.WaitForData;
    }

    private enum ReadOutcome
    {
        /// <summary>Everything the kernel had is handled: wait for more data.</summary>
        WaitForData,
        /// <summary>The broker holds the client back: stop reading; <see cref="Resume"/> continues.</summary>
        Parked,
        /// <summary>The connection is closed, or its input ended: stop for good.</summary>
        Stopped,
    }

    /// <summary>
    /// Takes what the kernel holds with non-blocking reads into a pooled buffer, handles every complete packet in
    /// place, flushes the answers once, and gives the buffer back unless a partial packet (or, while parked, input
    /// not yet handled) is left.
    /// </summary>
    private ReadOutcome ReadAvailable()
    {
        var socket = _socket!;
        bool wasConnected = _connected;
        var outcome = ReadOutcome.Stopped;
        Volatile.Write(ref _receiving, true);
        try
        {
            while (true)
            {
                if (IsClosed)
                {
                    return outcome = ReadOutcome.Stopped;
                }
                int space = EnsureInputSpace();
                int received;
                SocketError error;
                try
                {
                    received = socket.Receive(_input.AsSpan(_inputEnd, space), SocketFlags.None, out error);
                }
                catch (ObjectDisposedException)
                {
                    return outcome = ReadOutcome.Stopped;
                }
                if (error == SocketError.WouldBlock)
                {
                    break;
                }
                if (error != SocketError.Success)
                {
                    TransportEnded(TransportEndReasons.FromSocketError(error), error);
                    return outcome = ReadOutcome.Stopped;
                }
                if (received == 0)
                {
                    OnRemoteFin();
                    return outcome = ReadOutcome.Stopped;
                }
                // Once a packet ended the connection, input is still read and discarded if the close is graceful,
                // so that the client's FIN is seen (the linger deadline bounds it).
                if (!OnBytesReceived(received) && !_closeGracefully)
                {
                    return outcome = ReadOutcome.Stopped;
                }
                if (MustStopReading)
                {
                    return outcome = TryPark() ? ReadOutcome.Parked : ContinueAfterPause();
                }
                if (received < space)
                {
                    // Fewer bytes than asked for: the kernel is drained, so skip the read that would say EAGAIN.
                    break;
                }
            }
            return outcome = IsClosed ? ReadOutcome.Stopped : ReadOutcome.WaitForData;
        }
        finally
        {
            Volatile.Write(ref _receiving, false);
            EndReadBatch(connectedInBatch: !wasConnected && _connected && outcome == ReadOutcome.WaitForData);
            if (outcome == ReadOutcome.Stopped || _inputStart == _inputEnd)
            {
                ReleaseInput();
            }
            WatchPartialPacket();
        }
    }

    /// <summary>
    /// A packet begun and not finished must be finished within Broker:Limits:PartialPacketTimeoutSeconds, whatever the
    /// keep-alive (Keep Alive 0 included): a wheel entry, made the first time a client leaves a packet half-sent,
    /// armed while it does. Input held back by the broker (a hold) is not the client's doing and is not timed.
    /// </summary>
    private void WatchPartialPacket()
    {
        bool partial = _input is not null && _inputStart != _inputEnd && !IsReceivePaused && !IsEnded;
        if (partial)
        {
            int seconds = _services.Limits.PartialPacketTimeoutSeconds;
            var extras = Extras;
            if (seconds == 0 || extras.PartialPacketWatchArmed)
            {
                return;
            }
            extras.PartialPacketWatch = ArmWatch(extras.PartialPacketWatch, Connections.KeepAlive.DeadlineKind.PartialPacket, TimeSpan.FromSeconds(seconds));
            extras.PartialPacketWatchArmed = true;
        }
        else if (_extras is { PartialPacketWatchArmed: true } armed)
        {
            armed.PartialPacketWatchArmed = false;
            _services.Wheel.Rearm(armed.PartialPacketWatch!, Connections.KeepAlive.DeadlineKind.PartialPacket, TimeSpan.Zero);
        }
    }

    // A pause lifted while parking: the buffered input is handled here and reading goes on.
    private ReadOutcome ContinueAfterPause()
    {
        // A packet handled here may end the connection gracefully (a CONNECT refused after its credential check): then
        // reading goes on, input is drained and discarded until the client's FIN, as in ReadAvailable.
        if (!HandleBuffered() && !_closeGracefully)
        {
            return ReadOutcome.Stopped;
        }
        if (MustStopReading)
        {
            return TryPark() ? ReadOutcome.Parked : ContinueAfterPause();
        }
        return IsClosed ? ReadOutcome.Stopped : ReadOutcome.WaitForData;
    }

    /// <summary>New bytes are in the input buffer: handles them. False once the connection has ended.</summary>
    private bool OnBytesReceived(int received)
    {
        _inputEnd += received;
        return HandleBuffered();
    }

    /// <summary>Handles the complete packets held in the input buffer. False once the connection has ended.</summary>
    private bool HandleBuffered()
    {
        _stoppedForHold = false;
        if (!TryEnterProcessing())
        {
            // Closing: input is drained and discarded so that the client's FIN (or its reset) can be seen.
            _inputStart = _inputEnd = 0;
            return false;
        }
        bool keepGoing;
        try
        {
            keepGoing = HandleInput();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Diagnostics.BrokerLog.ConnectionFault(_services.Logger, LogClientId, ex);
            End(Diagnostics.DisconnectCause.InternalError, ex.Message);
            keepGoing = false;
        }
        finally
        {
            ExitProcessing();
        }
        return keepGoing;
    }

    /// <summary>Frames and handles every complete packet in the input buffer.</summary>
    private bool HandleInput()
    {
        if (!_connected && _extras?.PendingConnect is { } pending)
        {
            // A CONNECT awaiting its verdict comes first; nothing behind it is handled until it is decided.
            if (!TryFinishPendingConnect(pending, out bool accepted))
            {
                _stoppedForHold = true;
                return true;
            }
            if (!accepted || IsEnded)
            {
                return false;
            }
        }
        if (_input is null)
        {
            // Held with nothing buffered (the hold came with the last packet of a read, and the buffer went back to the
            // pool while parked): on resume there is nothing to handle; reading the socket goes on.
            return true;
        }
        var all = new ReadOnlySequence<byte>(_input, _inputStart, _inputEnd - _inputStart);
        var buffer = all;
        int maxPacketSize = _services.Limits.MaxPacketSize;
        bool keepGoing = true;
        Volatile.Write(ref _readThread, Environment.CurrentManagedThreadId);
        while (keepGoing)
        {
            var status = MqttFrameReader.TryReadFrame(buffer, maxPacketSize, out var frame, out var error);
            if (status == ReadStatus.NeedMoreData)
            {
                break;
            }
            if (status == ReadStatus.Error)
            {
                keepGoing = ProtocolViolation(error);
                break;
            }
            // [MQTT-3.1.2-24] any control packet counts as activity, not only PINGREQ.
            _deadline.Touch();
            _services.Metrics.PacketReceived(frame.Type);
            keepGoing = HandleFrame(frame) && !IsEnded;
            buffer = buffer.Slice(frame.End);
            if (IsReceivePaused || (!_connected && keepGoing))
            {
                // Held back (back-pressure, a credential check: then the CONNECT is not accepted yet): the rest stays
                // buffered until the hold is lifted, and the caller must look again then.
                _stoppedForHold = true;
                break;
            }
        }
        int consumed = (int)(all.Length - buffer.Length);
        _services.Metrics.BytesReceived(consumed);
        _inputStart += consumed;
        if (_inputStart == _inputEnd)
        {
            _inputStart = _inputEnd = 0;
        }
        return keepGoing;
    }

    /// <summary>
    /// Makes room for the next read and returns how much: a fresh pooled buffer, or, with a partial packet held, a
    /// larger one. A large packet's buffer grows by doubling as its bytes arrive (never beyond the packet, which the
    /// frame reader has already checked against the maximum packet size): a header that announces a megabyte costs a
    /// megabyte only once the megabyte has been sent.
    /// </summary>
    private int EnsureInputSpace()
    {
        if (_input is null)
        {
            _input = ArrayPool<byte>.Shared.Rent(ReceiveChunkSize);
            _inputStart = _inputEnd = 0;
            return _input.Length;
        }
        int held = _inputEnd - _inputStart;
        if (_inputEnd < _input.Length)
        {
            return _input.Length - _inputEnd;
        }
        if (_inputStart > 0 && held < _input.Length / 2)
        {
            Compact();
            return _input.Length - _inputEnd;
        }
        long needed = MqttFrameReader.TryGetPacketLength(_input.AsSpan(_inputStart, held), out long packetLength)
            ? Math.Min(packetLength, Math.Max((long)held * 2, held + ReceiveChunkSize))
            : held + ReceiveChunkSize;
        if (needed <= _input.Length)
        {
            Compact();
            return _input.Length - _inputEnd;
        }
        var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min(needed, Array.MaxLength));
        _input.AsSpan(_inputStart, held).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(_input);
        _input = larger;
        _inputStart = 0;
        _inputEnd = held;
        return _input.Length - _inputEnd;
    }

    private void Compact()
    {
        int held = _inputEnd - _inputStart;
        _input.AsSpan(_inputStart, held).CopyTo(_input);
        _inputStart = 0;
        _inputEnd = held;
    }

    /// <summary>Gives the input buffer back to the pool. Only the receive path calls this.</summary>
    private void ReleaseInput()
    {
        if (_input is { } input)
        {
            _input = null;
            _inputStart = _inputEnd = 0;
            ArrayPool<byte>.Shared.Return(input);
        }
    }

    /// <summary>The client sent FIN.</summary>
    private void OnRemoteFin()
    {
        if (_inputEnd > _inputStart && !IsEnded)
        {
            End(Diagnostics.DisconnectCause.SocketClosed, "connection closed inside a packet");
        }
        TransportEnded(TransportEndReason.RemoteClosed, SocketError.Success);
    }

    /// <summary>Bytes in the kernel's receive buffer that nobody has taken yet.</summary>
    private int TransportAvailable()
    {
        var socket = _socket ?? _stream?.Socket;
        if (socket is null)
        {
            return 0;
        }
        try
        {
            return socket.Available;
        }
        catch (Exception e) when (e is ObjectDisposedException or SocketException)
        {
            return 0;
        }
    }
}
