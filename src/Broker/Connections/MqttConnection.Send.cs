using System.Buffers;
using System.IO.Pipelines;
using Broker.Diagnostics;
using Broker.Protocol;
using Broker.Sessions;

namespace Broker.Connections;

internal sealed partial class MqttConnection
{
    /// <summary>Writes a control packet into the output pipe and wakes the send loop to flush it.</summary>
    private bool WritePacket(MqttPacket packet)
    {
        lock (_writeLock)
        {
            if (_writesClosed)
            {
                return false;
            }
            int n = MqttPacketWriter.Write(_transport.Output, packet, _version);
            _services.Metrics.BytesSent(n);
        }
        _services.Metrics.PacketSent(packet.Type);
        RingDoorbell();
        return true;
    }

    /// <summary>PUBACK/PUBREC/PUBREL/PUBCOMP without allocating (3.1.1 has no reason code: it is left out there).</summary>
    private void WritePublishResponse(PacketType type, ushort packetId, ReasonCode reasonCode)
    {
        lock (_writeLock)
        {
            if (_writesClosed)
            {
                return;
            }
            _services.Metrics.BytesSent(MqttPacketWriter.WritePublishResponse(_transport.Output, type, packetId, reasonCode, _version));
        }
        _services.Metrics.PacketSent(type);
        RingDoorbell();
    }

    /// <summary>
    /// Wakes the send loop. From the read loop's own thread the wake-up is deferred to the end of the read batch
    /// and then runs the send loop inline (one flush per batch, no thread-pool hop for PINGRESP and acks);
    /// from any other thread it is a thread-pool wake-up.
    /// </summary>
    private void RingDoorbell()
    {
        if (Environment.CurrentManagedThreadId == Volatile.Read(ref _readLoopThread))
        {
            _wroteInReadLoop = true;
            return;
        }
        _sendSignal.Set();
    }

    /// <summary>The read loop ends a batch of packets: whatever it wrote is flushed now, on this thread.</summary>
    private void EndReadBatch()
    {
        Volatile.Write(ref _readLoopThread, 0);
        if (_wroteInReadLoop)
        {
            _wroteInReadLoop = false;
            _sendSignal.Set(runInline: true);
        }
    }

    /// <summary>
    /// Drains the session queue into the output pipe (bounded batches under the write lock) and flushes.
    /// The only caller of FlushAsync, so flushes never overlap. When the client stops reading, FlushAsync
    /// stops completing, the session queue fills, QoS 0 is dropped and QoS 1/2 overflow ends the connection.
    /// </summary>
    private async Task SendLoopAsync()
    {
        var output = _transport.Output;
        try
        {
            while (await _sendSignal.WaitAsync().ConfigureAwait(false))
            {
                bool more;
                do
                {
                    more = _connected && WritePendingMessages();
                    var flushed = await output.FlushAsync().ConfigureAwait(false);
                    if (flushed.IsCanceled)
                    {
                        _transport.Abort("graceful close timed out: the client does not read");
                        return;
                    }
                    if (flushed.IsCompleted)
                    {
                        return;
                    }
                }
                while (more);
            }
            if (Volatile.Read(ref _graceful))
            {
                // Whatever was written after the last flush (a refusal CONNACK, a DISCONNECT) goes out before the close.
                var flushed = await output.FlushAsync().ConfigureAwait(false);
                if (flushed.IsCanceled)
                {
                    _transport.Abort("graceful close timed out: the client does not read");
                    return;
                }
                await _transport.CloseAsync(_gracefulFlushTimeout).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or ObjectDisposedException or System.IO.IOException)
        {
            _transport.Abort(ex.Message);
        }
        finally
        {
            _closeTimer?.Dispose();
        }
    }

    /// <summary>Writes up to one batch of queued messages; true if more are waiting.</summary>
    private bool WritePendingMessages()
    {
        var session = _session;
        if (session is null)
        {
            return false;
        }
        int window = Math.Min(_clientReceiveMaximum, _services.Limits.MaxInflightMessages);
        lock (_writeLock)
        {
            for (int i = 0; i < MaxMessagesPerFlush; i++)
            {
                if (_writesClosed || !session.TryTakeNext(this, window, out var message, out ushort packetId))
                {
                    return false;
                }
                WritePublishLocked(session, message, packetId, dup: false);
            }
        }
        return true;
    }

    /// <summary>After a reconnect with a present session, unacknowledged messages go first, with DUP [MQTT-4.4.0-1].</summary>
    private void ResendInflight(Session session)
    {
        var inflight = session.GetInflight();
        if (inflight.Length == 0)
        {
            return;
        }
        lock (_writeLock)
        {
            foreach (var m in inflight)
            {
                if (m.Released)
                {
                    _services.Metrics.BytesSent(MqttPacketWriter.WritePublishResponse(_transport.Output, PacketType.PubRel, m.PacketId, ReasonCode.Success, _version));
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
        // HOOK(conformance): expiry applies only before the first send. A resend (dup) of a message already
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
        ReadOnlySpan<byte> topic = message.TopicUtf8;
        MqttProperties? props = null;
        if (V5)
        {
            props = message.Properties;
            ushort alias = 0;
            bool aliasKnown = false;
            if (_clientTopicAliasMaximum > 0)
            {
                _outboundAliases ??= new Dictionary<string, ushort>(StringComparer.Ordinal);
                if (_outboundAliases.TryGetValue(message.Topic, out alias))
                {
                    aliasKnown = true;
                }
                else if (_outboundAliases.Count < _clientTopicAliasMaximum)
                {
                    alias = (ushort)(_outboundAliases.Count + 1);
                    _outboundAliases[message.Topic] = alias;
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
        int n = MqttPacketWriter.WritePublish(_transport.Output, _version, topic, outbound.QoS, outbound.Retain, dup, packetId, props, payload);
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
}
