using System.Buffers;
using System.Text;
using Broker.Diagnostics;
using Broker.Protocol;
using Broker.Routing;
using Broker.Sessions;

namespace Broker.Connections;

internal sealed partial class MqttConnection
{
    private const int StackTopicChars = 512;

    private bool HandlePublish(in MqttFrame frame)
    {
        if (!MqttPacketDecoder.TryDecodePublish(frame, _version, out var view, out var error))
        {
            return ProtocolViolation(error);
        }
        var props = view.Properties;
        if (props?.SubscriptionIdentifiers is not null)
        {
            // [MQTT-3.3.4-6] a client must not send Subscription Identifiers.
            return ProtocolViolation(new MqttDecodeError(ReasonCode.ProtocolError, "PUBLISH from a client carries a Subscription Identifier [MQTT-3.3.4-6]"));
        }

        // Topic: as sent, or through the 5.0 Topic Alias [MQTT-3.3.2-12].
        ReadOnlySequence<byte> topicBytes = view.Topic;
        // Broker:Limits:MaxTopicLength / MaxTopicLevels: 5.0 DISCONNECT 0x90, 3.1.1 close (docs/security.md).
        // A topic set through an alias was checked when it was set.
        if (!topicBytes.IsEmpty && !_services.Limits.TopicLimits.IsTopicNameAllowed(topicBytes, out var topicLimitError))
        {
            return ProtocolViolation(topicLimitError);
        }
        string? aliasedTopic = null;
        if (props?.TopicAlias is { } alias)
        {
            if (alias > _services.Limits.TopicAliasMaximum)
            {
                return ProtocolViolation(new MqttDecodeError(ReasonCode.TopicAliasInvalid, "topic alias above the Topic Alias Maximum the broker sent [MQTT-3.3.2-10]"));
            }
            var inboundAliases = Extras.InboundAliases ??= new Dictionary<ushort, string>();
            if (topicBytes.IsEmpty)
            {
                if (!inboundAliases.TryGetValue(alias, out aliasedTopic))
                {
                    return ProtocolViolation(new MqttDecodeError(ReasonCode.ProtocolError, "topic alias not set on this connection [MQTT-3.3.2-7]"));
                }
            }
            else
            {
                aliasedTopic = Encoding.UTF8.GetString(topicBytes);
                inboundAliases[alias] = aliasedTopic;
            }
        }

        // The topic as characters, decoded once into a stack buffer: for the ACL check and for matching.
        int length = aliasedTopic is null ? (int)topicBytes.Length : 0;
        char[]? rented = null;
        Span<char> chars = length <= StackTopicChars ? stackalloc char[StackTopicChars] : (rented = ArrayPool<char>.Shared.Rent(length));
        try
        {
            ReadOnlySpan<char> topic = aliasedTopic ?? (ReadOnlySpan<char>)chars[..Encoding.UTF8.GetChars(topicBytes, chars)];
            // The ACL's write access, and $SYS/, the broker's own read-only namespace whatever the ACL says.
            if (!_permissions!.CanPublish(topic))
            {
                return RefuseUnauthorizedPublish(view);
            }
            return AcceptPublish(view, topicBytes, aliasedTopic, topic);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<char>.Shared.Return(rented);
            }
        }
    }

    private bool AcceptPublish(in PublishPacketView view, ReadOnlySequence<byte> topicBytes, string? aliasedTopic, ReadOnlySpan<char> topic)
    {
        var session = _session!;
        if (view.QoS == QualityOfService.ExactlyOnce)
        {
            if (!session.TryAddInboundQoS2(view.PacketId, _services.Limits.ReceiveMaximum, out bool exceeded))
            {
                if (exceeded)
                {
                    // [MQTT-3.3.4-9] more unacknowledged QoS 2 publishes than the broker's Receive Maximum.
                    return ProtocolViolation(new MqttDecodeError(ReasonCode.ReceiveMaximumExceeded, "more QoS 2 publishes in flight than Receive Maximum [MQTT-3.3.4-9]"));
                }
                // A resend of a QoS 2 message already received: acknowledge, do not deliver twice [MQTT-4.3.3-10].
                WritePublishResponse(PacketType.PubRec, view.PacketId, ReasonCode.Success);
                return true;
            }
        }

        int matched = Route(view, topicBytes, aliasedTopic, topic);

        if (view.QoS != QualityOfService.AtMostOnce)
        {
            // Acknowledged once what it wrote to the persistent store is durable.
            WritePublishResponse(view.QoS == QualityOfService.AtLeastOnce ? PacketType.PubAck : PacketType.PubRec, view.PacketId,
                matched == 0 ? ReasonCode.NoMatchingSubscribers : ReasonCode.Success, afterStore: PublishNeedsStore(view.QoS));
        }
        if (_services.EngineOverload is { } gate)
        {
            // The broker as a whole is behind: this publisher's next packet waits until it caught up.
            gate.NotePublish();
            if (gate.IsBehind)
            {
                gate.TryHold(this);
            }
        }
        return true;
    }

    /// <summary>
    /// A PUBLISH the client may not make (the ACL, or <c>$SYS/</c>) is dropped, retained or not. 5.0 learns why
    /// (0x87 Not authorized, which also ends a QoS 2 exchange [MQTT-4.3.3-4]); 3.1.1 has no refusal code, so it is
    /// acknowledged as usual and dropped, as Mosquitto does ([MQTT-3.3.5-2] allows either this or closing).
    /// </summary>
    private bool RefuseUnauthorizedPublish(in PublishPacketView view)
    {
        _services.Metrics.MessageDropped(Diagnostics.DropReason.NotAuthorized);
        if (view.QoS != QualityOfService.AtMostOnce)
        {
            WritePublishResponse(view.QoS == QualityOfService.AtLeastOnce ? PacketType.PubAck : PacketType.PubRec, view.PacketId,
                V5 ? ReasonCode.NotAuthorized : ReasonCode.Success);
        }
        return true;
    }

    /// <summary>
    /// Matches the topic without allocating; the message is built, and the payload copied, only when someone
    /// subscribed or it must be retained.
    /// </summary>
    private int Route(in PublishPacketView view, ReadOnlySequence<byte> topicBytes, string? aliasedTopic, ReadOnlySpan<char> topic)
    {
        var router = _services.Router;
        // Created at the first publish: many devices only ever receive, and idle memory per client counts.
        var routeBuffer = Extras.RouteBuffer ??= new RouteBuffer();
        router.Match(topic, _clientId, routeBuffer);
        int matched = routeBuffer.Targets.Count;
        if (matched == 0 && !view.Retain)
        {
            _services.Metrics.MessageReceived(view.QoS);
            _services.Metrics.MessageDropped(Diagnostics.DropReason.NoSubscribers);
            return 0;
        }
        var message = new ApplicationMessage
        {
            Topic = aliasedTopic ?? topic.ToString(),
            TopicUtf8 = aliasedTopic is null ? topicBytes.ToArray() : Encoding.UTF8.GetBytes(aliasedTopic),
            Payload = view.Payload.ToArray(),
            QoS = view.QoS,
            Retain = view.Retain,
            Properties = ForwardedProperties(view.Properties),
            PublisherClientId = _clientId,
            ExpiryIntervalSeconds = view.Properties?.MessageExpiryInterval,
            ReceivedTimestamp = _services.Time.GetTimestamp(),
        };
        router.Deliver(message, routeBuffer, out var congested);
        OnPublishRouted(message);
        routeBuffer.Reset(null);
        if (congested is not null)
        {
            WaitFor(congested);
        }
        return matched;
    }

    /// <summary>The properties passed to subscribers [MQTT-3.3.2-15..20]: all but the alias and expiry (set per delivery).</summary>
    private static MqttProperties? ForwardedProperties(MqttProperties? p)
    {
        if (p is null)
        {
            return null;
        }
        if (p.TopicAlias is null && p.MessageExpiryInterval is null)
        {
            return p;
        }
        var copy = p.Clone();
        copy.TopicAlias = null;
        copy.MessageExpiryInterval = null;
        return copy.IsEmpty ? null : copy;
    }

    private void HandleSubscribe(SubscribePacket subscribe)
    {
        var session = _session!;
        var permissions = _permissions!;
        var router = _services.Router;
        var limits = _services.Limits;
        int? subscriptionId = subscribe.Properties?.SubscriptionIdentifiers is [var id, ..] ? id : null;
        var codes = new byte[subscribe.Subscriptions.Count];
        // Retained messages to replay, bounded by what the session's queue may hold at all: a SUBSCRIBE repeating
        // '#' thousands of times must not make the broker list millions of messages first.
        int replayBudget = router.QueueLimits.MaxMessages;
        int replayDropped = 0;
        List<(ApplicationMessage Message, QualityOfService QoS)>? retainedToSend = null;
        HashSet<string>? seen = null;
        for (int i = 0; i < codes.Length; i++)
        {
            var s = subscribe.Subscriptions[i];
            // Broker:Limits:MaxTopicLength / MaxTopicLevels: that filter alone is refused (docs/security.md).
            if (!limits.TopicLimits.IsTopicFilterAllowed(s.TopicFilter, out _))
            {
                codes[i] = V5 ? (byte)ReasonCode.TopicFilterInvalid : (byte)0x80; // [MQTT-3.9.3-2] 3.1.1 Failure
                continue;
            }
            // The ACL: a filter that could never deliver anything to this client is refused (docs/security.md).
            if (!permissions.CanSubscribe(s.TopicFilter))
            {
                codes[i] = V5 ? (byte)ReasonCode.NotAuthorized : (byte)0x80;
                continue;
            }
            var subscription = new Subscription(session, s.TopicFilter, s.QoS, s.NoLocal, s.RetainAsPublished, s.RetainHandling, subscriptionId);
            if (session.SubscriptionCountHint >= limits.MaxSubscriptionsPerClient && !session.HasSubscription(s.TopicFilter))
            {
                // Broker:Limits:MaxSubscriptionsPerClient: 5.0 Quota exceeded, 3.1.1 Failure, for that filter only.
                codes[i] = V5 ? (byte)ReasonCode.QuotaExceeded : (byte)0x80;
                _services.Metrics.LimitRefused(LimitKind.SubscriptionsPerClient);
                continue;
            }
            bool isNew = router.Subscribe(subscription);
            // [MQTT-3.9.3-1] the granted QoS; the broker supports QoS 2, so it grants what was asked.
            codes[i] = (byte)s.QoS;
            bool shared = TopicRules.IsSharedSubscription(s.TopicFilter);
            // [MQTT-3.3.1-9], 3.8.3.1 Retain Handling; shared subscriptions get no retained messages [MQTT-4.8.2-?].
            bool sendRetained = !shared && (s.RetainHandling == RetainHandling.SendAtSubscribe
                || (s.RetainHandling == RetainHandling.SendAtSubscribeIfNew && isNew));
            // The same filter twice in one SUBSCRIBE is one subscription [MQTT-3.8.4-3]: its retained messages once.
            if (sendRetained && (seen ??= new HashSet<string>(StringComparer.Ordinal)).Add(s.TopicFilter))
            {
                foreach (var message in router.GetRetained(s.TopicFilter))
                {
                    if (!permissions.CanReceive(message.Topic))
                    {
                        continue;
                    }
                    if (replayBudget == 0)
                    {
                        replayDropped++;
                        continue;
                    }
                    replayBudget--;
                    (retainedToSend ??= []).Add((message, (QualityOfService)Math.Min((int)message.QoS, (int)s.QoS)));
                }
            }
        }
        // [MQTT-3.8.4-1] SUBACK before the retained messages; both once the subscriptions of a persistent session are
        // durable (MqttConnection.Persistence.cs).
        SendSubAck(subscribe, codes, retainedToSend, subscriptionId);
        if (replayDropped > 0)
        {
            _services.Metrics.MessageDropped(Diagnostics.DropReason.QueueFull, replayDropped);
            OnMessagesDropped(Diagnostics.DropReason.QueueFull, replayDropped);
        }
    }

    private void HandleUnsubscribe(UnsubscribePacket unsubscribe)
    {
        var codes = new byte[unsubscribe.TopicFilters.Count];
        for (int i = 0; i < codes.Length; i++)
        {
            bool existed = _services.Router.Unsubscribe(unsubscribe.TopicFilters[i], _session!);
            codes[i] = existed ? (byte)ReasonCode.Success : (byte)ReasonCode.NoSubscriptionExisted;
        }
        // [MQTT-3.10.4-4] UNSUBACK even when nothing was removed; for a persistent session once the removal is durable
        // (else it comes back after a restart).
        WriteReply(new UnsubAckPacket { PacketId = unsubscribe.PacketId, ReasonCodes = V5 ? codes : [] }, afterStore: _session!.IsPersistent);
    }
}
