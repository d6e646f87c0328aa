using System.Buffers;
using System.Net.Sockets;
using Broker.Diagnostics;
using Broker.Protocol;
using Broker.Sessions;
using Broker.Transport;

namespace Broker.Connections;

internal sealed partial class MqttConnection : IBufferWriter<byte>
{
    private const int MaxMessagesPerFlush = 256;
    private const int MinimumOutputBuffer = 512;

    // _flushState: one flush loop at a time. Idle = nothing running; Running = a flush loop owns the send buffer
    // (sending, or waiting for an asynchronous send); Again = it runs and was asked to look once more.
    private const int FlushIdle = 0;
    private const int FlushRunning = 1;
    private const int FlushAgain = 2;

    // Output being written (guarded by lock (this)): packets are serialised here by whoever has something to say.
    private byte[]? _output;
    private int _outputLength;
    private bool _writesClosed;
    // Output being sent (owned by the running flush loop): swapped out of _output as a whole, so writers never wait
    // for the network.
    private byte[]? _sending;
    private int _sendingOffset;
    private int _sendingLength;
    private int _flushState;
    // Bytes written and not yet handed to the kernel: what the router's congestion check reads.
    private long _pendingOutputBytes;
    // Created the first time the kernel's send buffer was full: an idle or keeping-up client never needs it.
    private SendOperation? _sendOperation;

    // The client's 5.0 limits (defaults for 3.1.1).
    private int _clientReceiveMaximum = ushort.MaxValue;
    private uint _clientMaximumPacketSize = uint.MaxValue;
    private int _clientTopicAliasMaximum;

    /// <summary>Bytes written towards the client that the kernel has not taken yet.</summary>
    public long PendingOutputBytes => Volatile.Read(ref _pendingOutputBytes);

    /// <summary>The client reads more slowly than the broker writes: its pending output reached the limit.</summary>
    public bool IsOutputCongested => PendingOutputBytes >= _services.MaxPendingOutputBytes;

    // IBufferWriter<byte>: the codec writes packets straight into the output buffer (callers hold lock (this)).

    void IBufferWriter<byte>.Advance(int count)
    {
        _outputLength += count;
        Interlocked.Add(ref _pendingOutputBytes, count);
    }

    Memory<byte> IBufferWriter<byte>.GetMemory(int sizeHint) => EnsureOutput(sizeHint).AsMemory(_outputLength);

    Span<byte> IBufferWriter<byte>.GetSpan(int sizeHint) => EnsureOutput(sizeHint).AsSpan(_outputLength);

    private byte[] EnsureOutput(int sizeHint)
    {
        int needed = _outputLength + Math.Max(sizeHint, 1);
        var output = _output;
        if (output is not null && needed <= output.Length)
        {
            return output;
        }
        var larger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, Math.Max(MinimumOutputBuffer, (output?.Length ?? 0) * 2)));
        if (output is not null)
        {
            output.AsSpan(0, _outputLength).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(output);
        }
        _output = larger;
        return larger;
    }

    /// <summary>Writes a control packet and flushes it (at the end of the read batch, or on the thread pool).</summary>
    private bool WritePacket(MqttPacket packet, bool flush = true)
    {
        lock (this)
        {
            if (_writesClosed)
            {
                return false;
            }
            int n = MqttPacketWriter.Write(this, packet, _version);
            _services.Metrics.BytesSent(n);
        }
        _services.Metrics.PacketSent(packet.Type);
        if (flush)
        {
            RequestFlush();
        }
        return true;
    }

    private void WritePingResp()
    {
        lock (this)
        {
            if (_writesClosed)
            {
                return;
            }
            MqttPacketWriter.WritePingResp(this);
        }
        _services.Metrics.PacketSent(PacketType.PingResp);
        _services.Metrics.BytesSent(2);
        RequestFlush();
    }

    /// <summary>
    /// PUBACK/PUBREC/PUBREL/PUBCOMP without allocating (3.1.1 has no reason code: it is left out there).
    /// <paramref name="afterStore"/>: what it acknowledges was written to the persistent store, so it goes out once
    /// that is durable; and any response goes out after those already waiting (MqttConnection.Persistence.cs).
    /// </summary>
    private void WritePublishResponse(PacketType type, ushort packetId, ReasonCode reasonCode, bool afterStore = false)
    {
        lock (this)
        {
            if (_writesClosed)
            {
                return;
            }
            if ((afterStore || RepliesWaiting) && WaitForStoreLocked(StoreReply.ForPublishResponse(type, packetId, reasonCode, afterStore)))
            {
                return;
            }
            _services.Metrics.BytesSent(MqttPacketWriter.WritePublishResponse(this, type, packetId, reasonCode, _version));
        }
        _services.Metrics.PacketSent(type);
        RequestFlush();
    }

    /// <summary>
    /// A DISCONNECT before the broker closes, only when the client reads: a DISCONNECT stuck behind a full buffer
    /// would only hold the close. Written before <see cref="End"/> closes writes.
    /// </summary>
    private bool TryWriteDisconnect(ReasonCode code, string? reason, bool flush = true)
    {
        if (IsOutputCongested)
        {
            return false;
        }
        var packet = new DisconnectPacket { ReasonCode = code };
        // A short Reason String unless the client asked for none [MQTT-3.1.2-29] or it would exceed its maximum packet size.
        ProblemInformation.Attach(packet, reason, _problemInformation, _clientMaximumPacketSize);
        return WritePacket(packet, flush);
    }

    /// <summary>
    /// Gets what was written onto the wire. From the connection's own read loop the flush waits for the end of the
    /// read batch and runs on that thread (one send for all the answers of a batch, no thread-pool hop for
    /// PINGRESP); from any other thread (a publisher fanning out) it is queued to the thread pool, so a publisher
    /// never makes its subscribers' sends itself.
    /// </summary>
    private void RequestFlush()
    {
        if (Environment.CurrentManagedThreadId == Volatile.Read(ref _readThread))
        {
            _wroteInReadBatch = true;
            return;
        }
        if (TryStartFlush())
        {
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
    }

    /// <summary>The read loop finished a batch: whatever it wrote goes out now, on this thread.</summary>
    /// <param name="connectedInBatch">
    /// The batch accepted the client's CONNECT and the socket receive loop goes on: its CONNACK is flushed only once the
    /// next receive is posted (ReceiveLoop). The client's next packet, sent after it read the CONNACK, then completes
    /// through the socket engine's queue in arrival order with every other client's, even when this batch ran on a
    /// thread-pool thread (the accept path): a SUBSCRIBE sent right after CONNACK is in effect for a PUBLISH another
    /// client sends after it.
    /// </param>
    private void EndReadBatch(bool connectedInBatch = false)
    {
        Volatile.Write(ref _readThread, 0);
        if (_wroteInReadBatch || (_closeGracefully && Volatile.Read(ref _flushState) == FlushIdle))
        {
            _wroteInReadBatch = false;
            if (connectedInBatch && _stream is null)
            {
                _flushAfterReceivePosted = true;
                return;
            }
            if (TryStartFlush())
            {
                RunFlush();
            }
        }
    }

    /// <summary>True when the caller must run the flush loop; false when one runs and will look again.</summary>
    private bool TryStartFlush()
    {
        int state = Volatile.Read(ref _flushState);
        while (true)
        {
            int next = state == FlushIdle ? FlushRunning : FlushAgain;
            if (state == FlushAgain)
            {
                return false;
            }
            int seen = Interlocked.CompareExchange(ref _flushState, next, state);
            if (seen == state)
            {
                return state == FlushIdle;
            }
            state = seen;
        }
    }

    void IThreadPoolWorkItem.Execute() => RunFlush();

    /// <summary>
    /// The flush loop: serialises queued messages (bounded batches), sends what was written with non-blocking sends,
    /// and returns when there is nothing left or the kernel's buffer is full (the send completion resumes it).
    /// After a graceful end it also closes the connection once the last byte is out.
    /// </summary>
    private void RunFlush()
    {
        while (true)
        {
            if (_sending is null && !TakeOutput())
            {
                if (_connected && (_session?.PendingCount ?? 0) > 0)
                {
                    // Everything written is in the kernel, but messages wait for the in-flight window: a client that
                    // never acknowledges stalls its queue as surely as one that never reads.
                    WatchForStall();
                }
                else
                {
                    OnOutputDrained();
                }
                if (TryFinishFlush())
                {
                    if (_closeGracefully && !IsClosed)
                    {
                        CloseAfterFlush();
                    }
                    return;
                }
                continue;
            }
            if (IsClosed)
            {
                ReleaseSending();
                FinishFlushAfterClose();
                return;
            }
            if (!SendTaken())
            {
                // Pending asynchronously (the completion calls RunFlush) or failed (the connection is closing).
                return;
            }
        }
    }

    /// <summary>Fills the output with queued messages and swaps it out for sending; false when there is nothing to send.</summary>
    private bool TakeOutput()
    {
        lock (this)
        {
            // Queued messages follow the CONNACK, which may wait for the store.
            if (!_writesClosed && _connected && !ConnAckWaiting)
            {
                WritePendingMessagesLocked();
            }
            if (_outputLength == 0)
            {
                return false;
            }
            _sending = _output;
            _sendingOffset = 0;
            _sendingLength = _outputLength;
            _output = null;
            _outputLength = 0;
            return true;
        }
    }

    /// <summary>Idle again unless someone asked for another look meanwhile.</summary>
    private bool TryFinishFlush()
    {
        if (Interlocked.CompareExchange(ref _flushState, FlushIdle, FlushRunning) == FlushRunning)
        {
            // Something written after TakeOutput looked but before the state went idle has requested its own flush.
            return true;
        }
        Volatile.Write(ref _flushState, FlushRunning);
        return false;
    }

    private void FinishFlushAfterClose()
    {
        Volatile.Write(ref _flushState, FlushIdle);
        ReleaseOutput();
    }

    /// <summary>Sends the taken buffer; true when all of it is in the kernel.</summary>
    private bool SendTaken()
    {
        if (_stream is not null)
        {
            return SendTakenToStream();
        }
        var socket = _socket!;
        while (_sendingOffset < _sendingLength)
        {
            int sent;
            SocketError error;
            try
            {
                sent = socket.Send(_sending.AsSpan(_sendingOffset, _sendingLength - _sendingOffset), SocketFlags.None, out error);
            }
            catch (ObjectDisposedException)
            {
                ReleaseSending();
                FinishFlushAfterClose();
                return false;
            }
            if (error == SocketError.Success)
            {
                Sent(sent);
                continue;
            }
            if (error == SocketError.WouldBlock)
            {
                // The client does not keep up: let the kernel tell us when there is room again.
                var operation = _sendOperation ??= new SendOperation(this);
                operation.SetBuffer(_sending, _sendingOffset, _sendingLength - _sendingOffset);
                bool pending;
                try
                {
                    pending = socket.SendAsync(operation);
                }
                catch (ObjectDisposedException)
                {
                    ReleaseSending();
                    FinishFlushAfterClose();
                    return false;
                }
                if (pending)
                {
                    WatchForStall();
                    return false;
                }
                if (!OnSendCompleted(operation))
                {
                    return false;
                }
                continue;
            }
            ReleaseSending();
            FinishFlushAfterClose();
            TransportEnded(TransportEndReasons.FromSocketError(error), error);
            return false;
        }
        ReleaseSending();
        return true;
    }

    /// <summary>An asynchronous send finished; false when the connection failed.</summary>
    private bool OnSendCompleted(SocketAsyncEventArgs operation)
    {
        if (operation.SocketError != SocketError.Success)
        {
            var error = operation.SocketError;
            ReleaseSending();
            FinishFlushAfterClose();
            if (!IsClosed)
            {
                TransportEnded(TransportEndReasons.FromSocketError(error), error);
            }
            return false;
        }
        Sent(operation.BytesTransferred);
        return true;
    }

    private void OnAsyncSendCompleted(SocketAsyncEventArgs operation)
    {
        if (OnSendCompleted(operation))
        {
            RunFlush();
        }
    }

    private void Sent(int bytes)
    {
        _sendingOffset += bytes;
        Interlocked.Add(ref _pendingOutputBytes, -bytes);
        if (bytes > 0)
        {
            OnSendProgress();
        }
    }

    private void ReleaseSending()
    {
        if (_sending is { } sending)
        {
            _sending = null;
            Interlocked.Add(ref _pendingOutputBytes, -(_sendingLength - _sendingOffset));
            _sendingOffset = _sendingLength = 0;
            ArrayPool<byte>.Shared.Return(sending);
        }
    }

    private void ReleaseOutput()
    {
        lock (this)
        {
            _writesClosed = true;
            if (_output is { } output)
            {
                _output = null;
                Interlocked.Add(ref _pendingOutputBytes, -_outputLength);
                _outputLength = 0;
                ArrayPool<byte>.Shared.Return(output);
            }
        }
    }

    /// <summary>Writes up to one batch of queued messages, as long as the client's pending output is under the limit.</summary>
    private void WritePendingMessagesLocked()
    {
        var session = _session;
        if (session is null)
        {
            return;
        }
        int window = Math.Min(_clientReceiveMaximum, _services.Limits.MaxInflightMessages);
        long limit = _services.MaxPendingOutputBytes;
        for (int i = 0; i < MaxMessagesPerFlush && PendingOutputBytes < limit; i++)
        {
            if (!session.TryTakeNext(this, window, _services.Router.QueueLimits, out var message, out ushort packetId))
            {
                return;
            }
            // A QoS 2 PUBLISH of a persistent session goes out once its packet id is durable.
            if (HoldPublishForStoreLocked(session, message, packetId))
            {
                continue;
            }
            WritePublishLocked(session, message, packetId, dup: false);
        }
    }

    /// <summary>After a reconnect with a present session, unacknowledged messages go first, with DUP [MQTT-4.4.0-1].</summary>
    private void ResendInflight(Session session)
    {
        var inflight = session.GetInflight();
        if (inflight.Length == 0)
        {
            return;
        }
        lock (this)
        {
            foreach (var m in inflight)
            {
                if (m.Released)
                {
                    _services.Metrics.BytesSent(MqttPacketWriter.WritePublishResponse(this, PacketType.PubRel, m.PacketId, ReasonCode.Success, _version));
                    _services.Metrics.PacketSent(PacketType.PubRel);
                }
                else
                {
                    WritePublishLocked(session, m.Outbound, m.PacketId, dup: true);
                }
            }
        }
    }

    private void WritePublishLocked(Session session, in OutboundMessage outbound, ushort packetId, bool dup)
    {
        var message = outbound.Message;
        var time = _services.Time;
        long? remaining = message.RemainingExpirySeconds(time.GetTimestamp(), time.TimestampFrequency);
        // Expiry applies only before the first send. A resend (DUP) of a message already
        // sent goes out whatever its age [MQTT-4.3.3-7], [MQTT-3.3.2-5: "not managed to start onward delivery"],
        // with an expiry of 0 left rather than none.
        if (dup && remaining is < 0)
        {
            remaining = 0;
        }
        if (!dup && remaining is <= 0)
        {
            // [MQTT-3.3.2-5] an expired message is not delivered.
            Discard(session, outbound, packetId, DropReason.Expired);
            return;
        }
        // Security (issue #12): the router checked the subscriber's ACL when it queued the message; one queued before
        // this connection (a resumed session, perhaps of another user) or before an ACL reload is checked again.
        if (_permissions is { } permissions && !permissions.CanReceive(message.Topic))
        {
            Discard(session, outbound, packetId, DropReason.NotAuthorized);
            return;
        }
        ReadOnlySpan<byte> topic = message.TopicUtf8;
        MqttProperties? props = null;
        if (V5)
        {
            props = message.Properties;
            ushort alias = 0;
            bool aliasKnown = false;
            if (_clientTopicAliasMaximum > 0)
            {
                var aliases = Extras.OutboundAliases ??= new Dictionary<string, ushort>(StringComparer.Ordinal);
                if (aliases.TryGetValue(message.Topic, out alias))
                {
                    aliasKnown = true;
                }
                else if (aliases.Count < _clientTopicAliasMaximum)
                {
                    alias = (ushort)(aliases.Count + 1);
                    aliases[message.Topic] = alias;
                }
            }
            if (remaining is not null || outbound.SubscriptionIdentifiers is not null || alias != 0)
            {
                props = props?.Clone() ?? new MqttProperties();
                // [MQTT-3.3.2-6] the expiry sent is what is left of it.
                props.MessageExpiryInterval = remaining is { } r ? (uint)r : null;
                props.SubscriptionIdentifiers = outbound.SubscriptionIdentifiers is { } ids ? [.. ids] : null;
                props.TopicAlias = alias != 0 ? alias : null;
            }
            if (aliasKnown)
            {
                topic = default;
            }
        }
        var payload = new ReadOnlySequence<byte>(message.Payload);
        int size = MqttPacketWriter.GetPublishSize(_version, topic.Length, outbound.QoS, props, payload.Length);
        if ((uint)size > _clientMaximumPacketSize)
        {
            // [MQTT-3.1.2-25] too large for the client: discarded as if sent.
            Discard(session, outbound, packetId, DropReason.PacketTooLarge);
            return;
        }
        int n = MqttPacketWriter.WritePublish(this, _version, topic, outbound.QoS, outbound.Retain, dup, packetId, props, payload);
        _services.Metrics.BytesSent(n);
        _services.Metrics.PacketSent(PacketType.Publish);
        _services.Metrics.MessageDelivered(outbound.QoS);
    }

    private void Discard(Session session, in OutboundMessage outbound, ushort packetId, DropReason reason)
    {
        if (outbound.QoS != QualityOfService.AtMostOnce)
        {
            session.Drop(packetId);
        }
        _services.Metrics.MessageDropped(reason);
    }

    /// <summary>
    /// Everything written is on the wire and the connection ends gracefully: shut the send side down (FIN after
    /// the last byte) and close once the client's FIN has been seen; until then the receive path drains and
    /// discards its input, bounded by the linger deadline.
    /// </summary>
    private void CloseAfterFlush()
    {
        if (_stream is not null)
        {
            CloseStreamAfterFlush();
            return;
        }
        try
        {
            _socket!.Shutdown(_remoteFinSeen ? SocketShutdown.Both : SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already reset or closed by the peer: nothing left to say to it.
        }
        if (_remoteFinSeen)
        {
            CloseTransport(TransportEndReason.LocalClosed, abortive: false);
        }
    }

    /// <summary>Closes at once: pending output is dropped and the socket is reset, so a dead peer costs no retransmissions.</summary>
    private void Abort(TransportEndReason reason) => CloseTransport(reason, abortive: true);

    private void CloseTransport(TransportEndReason reason, bool abortive)
    {
        int seen = Volatile.Read(ref _lifecycle);
        while (true)
        {
            if ((seen & Closed) != 0)
            {
                return;
            }
            int previous = Interlocked.CompareExchange(ref _lifecycle, seen | Closed, seen);
            if (previous == seen)
            {
                break;
            }
            seen = previous;
        }
        Interlocked.CompareExchange(ref _transportEndValue, (int)reason, (int)TransportEndReason.None);
        if (!IsEnded)
        {
            End(DisconnectCause.SocketError, reason.ToString());
        }
        _services.Wheel.Remove(_deadline);
        if (_extras is { } extras)
        {
            // The watches of a closed connection must not keep it referenced from the wheel.
            if (extras.StallWatch is { } stall)
            {
                _services.Wheel.Remove(stall);
            }
            if (extras.PartialPacketWatch is { } partial)
            {
                _services.Wheel.Remove(partial);
            }
        }
        if (_stream is not null)
        {
            CloseStream(abortive);
        }
        else
        {
            var socket = _socket!;
            try
            {
                if (abortive)
                {
                    // Linger 0: close() sends RST and drops unsent data instead of retrying it to a dead peer.
                    socket.LingerState = new LingerOption(enable: true, seconds: 0);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
            // Wakes a pending receive (and send) with OperationAborted; they release their buffers.
            socket.Dispose();
        }
        if (Volatile.Read(ref _flushState) == FlushIdle)
        {
            ReleaseOutput();
        }
        else
        {
            RequestFlush();
        }
        _services.Registry.Remove(this);
    }

    /// <summary>The send operation used while the client's kernel buffer is full; its completion resumes the flush loop.</summary>
    private sealed class SendOperation(MqttConnection owner) : SocketAsyncEventArgs(unsafeSuppressExecutionContextFlow: true)
    {
        protected override void OnCompleted(SocketAsyncEventArgs e) => owner.OnAsyncSendCompleted(e);
    }
}
