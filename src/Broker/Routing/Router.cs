using Broker.Diagnostics;
using Broker.Hosting;
using Broker.Persistence;
using Broker.Protocol;
using Broker.Sessions;
using Microsoft.Extensions.Options;

namespace Broker.Routing;

/// <summary>
/// Matches published topics against the subscription tree and hands each subscriber one copy
/// (overlapping subscriptions merged: highest QoS, every Subscription Identifier [MQTT-3.3.4-2..5]).
/// Enqueueing is a short lock on the subscriber's session; the publisher learns which session, if any, is past its
/// high watermark while its client reads (it then waits: back-pressure, see docs/overload.md).
/// </summary>
internal sealed class Router
{
    private readonly SubscriptionTree<Subscription> _tree = new();
    private readonly RetainedMessageStore<ApplicationMessage> _retained;
    private readonly TimeProvider _time;
    private readonly BrokerMetrics _metrics;
    private readonly QueueLimits _queueLimits;
    // Retained messages survive a restart through it; null when persistence is off.
    private readonly IBrokerStateStore? _store;

    public Router(TimeProvider time, IOptions<BrokerLimitsOptions> limits, BrokerMetrics metrics, IBrokerStateStore? store = null)
    {
        _time = time;
        _metrics = metrics;
        _store = store;
        _queueLimits = new QueueLimits(limits.Value.MaxQueuedMessages, limits.Value.MaxQueuedBytes, limits.Value.MaxInflightBytes);
        _retained = new RetainedMessageStore<ApplicationMessage>(
            new RetainedStoreLimits(limits.Value.MaxRetainedMessages, limits.Value.MaxRetainedBytes), RetainedSize);
    }

    /// <summary>The per-session queue limits (Broker:Limits:MaxQueuedMessages / MaxQueuedBytes / MaxInflightBytes) and watermarks.</summary>
    public QueueLimits QueueLimits => _queueLimits;

    public int SubscriptionCount => _tree.Count;
    public int RetainedCount => _retained.Count;
    /// <summary>Bytes of retained messages, as counted against Broker:Limits:MaxRetainedBytes.</summary>
    public long RetainedBytes => _retained.Bytes;
    /// <summary>Retained messages refused (store full) since start.</summary>
    public long RetainedRefused => _retained.Refused;

    /// <summary>Adds or replaces a subscription [MQTT-3.8.4-3]. Returns true when it did not exist before.</summary>
    public bool Subscribe(Subscription subscription)
    {
        subscription.Session.AddOrReplaceSubscription(subscription, out var replaced);
        _tree.Subscribe(subscription.Filter, subscription.Session.ClientId, subscription);
        return replaced is null;
    }

    public bool Unsubscribe(string filter, Session session)
    {
        bool existed = session.RemoveSubscription(filter, out _);
        return _tree.Unsubscribe(filter, session.ClientId) || existed;
    }

    /// <summary>
    /// First phase of a publish: finds who wants <paramref name="topic"/>. No allocation when nobody does,
    /// so a QoS 0 publish without subscribers costs a tree walk and nothing else.
    /// </summary>
    public void Match(ReadOnlySpan<char> topic, string? publisherClientId, RouteBuffer buffer)
    {
        buffer.Reset(publisherClientId);
        _tree.Match(topic, ref buffer);
    }

    /// <summary>
    /// Second phase: hands the built message to every matched session. Returns what the retained store
    /// did with a retained message (null otherwise); a message the store refuses is still delivered.
    /// </summary>
    public RetainOutcome? Deliver(ApplicationMessage message, RouteBuffer buffer) => Deliver(message, buffer, fromClient: true, out _);

    /// <inheritdoc cref="Deliver(ApplicationMessage, RouteBuffer)"/>
    /// <param name="congested">A subscriber's session past its high watermark while its client reads: the publisher
    /// should stop being read until it drains (the first such session; null when none).</param>
    public RetainOutcome? Deliver(ApplicationMessage message, RouteBuffer buffer, out Session? congested) => Deliver(message, buffer, fromClient: true, out congested);

    /// <param name="fromClient">False for the broker's own messages ($SYS): they are not counted as received from
    /// clients, nor as dropped when nobody subscribed (most of the time nobody reads $SYS).</param>
    private RetainOutcome? Deliver(ApplicationMessage message, RouteBuffer buffer, bool fromClient, out Session? congested)
    {
        congested = null;
        if (fromClient)
        {
            _metrics.MessageReceived(message.QoS);
        }
        RetainOutcome? retained = message.Retain ? SetRetained(message, persist: fromClient) : null;
        var targets = buffer.Targets;
        for (int i = 0; i < targets.Count; i++)
        {
            var t = targets[i];
            // Security (issue #12): the subscriber's ACL decides per message (null: no ACL, nothing to check).
            if (t.Session.Permissions is { } permissions && !permissions.CanReceive(message.Topic))
            {
                continue;
            }
            var qos = (QualityOfService)Math.Min((int)message.QoS, (int)t.MaxQoS);
            var outbound = new OutboundMessage(message, qos, t.RetainAsPublished && message.Retain, t.SubscriptionIdentifiers?.ToArray());
            var result = t.Session.Enqueue(outbound, _queueLimits, out int droppedOldest);
            switch (result)
            {
                case EnqueueResult.QueuedAboveHighWatermark:
                    congested ??= t.Session;
                    break;
                case EnqueueResult.DroppedQoS0:
                    Dropped(t.Session, DropReason.QoS0Congestion, 1);
                    break;
                case EnqueueResult.QueuedDroppingOldest:
                    Dropped(t.Session, DropReason.QueueFull, droppedOldest);
                    break;
            }
        }
        if (targets.Count == 0 && fromClient)
        {
            _metrics.MessageDropped(DropReason.NoSubscribers);
        }
        return retained;
    }

    /// <summary>Retained messages replayed at SUBSCRIBE go into the session's queue within its limits, never past them.</summary>
    public void EnqueueRetainedReplay(Session session, in OutboundMessage message)
    {
        var result = session.Enqueue(message, _queueLimits, out int droppedOldest, retainedReplay: true);
        if (result == EnqueueResult.DroppedRetainedReplay)
        {
            Dropped(session, DropReason.QueueFull, 1);
        }
        else if (result == EnqueueResult.DroppedQoS0)
        {
            Dropped(session, DropReason.QoS0Congestion, 1);
        }
        else if (droppedOldest > 0)
        {
            Dropped(session, DropReason.QueueFull, droppedOldest);
        }
    }

    private void Dropped(Session session, DropReason reason, int count)
    {
        _metrics.MessageDropped(reason, count);
        session.Owner?.OnMessagesDropped(reason, count);
    }

    /// <summary>Publish in one step (wills, server messages): allocation is fine off the hot path.</summary>
    public void Publish(ApplicationMessage message)
    {
        var buffer = new RouteBuffer();
        Match(message.Topic, message.PublisherClientId, buffer);
        Deliver(message, buffer, fromClient: true, out _);
    }

    /// <summary>Publishes a message of the broker's own ($SYS): routed and retained like any other, not counted as a client's.</summary>
    public void PublishServerMessage(ApplicationMessage message)
    {
        var buffer = new RouteBuffer();
        Match(message.Topic, null, buffer);
        Deliver(message, buffer, fromClient: false, out _);
    }

    private RetainOutcome SetRetained(ApplicationMessage message, bool persist)
    {
        // [MQTT-3.3.1-10/11] an empty retained payload removes the retained message and is not stored.
        var outcome = _retained.Set(message.Topic, message.Payload.IsEmpty ? null : message);
        if (persist && _store is not null)
        {
            PersistRetained(message, outcome);
        }
        return outcome;
    }

    /// <summary>
    /// The store keeps what the retained store kept, whatever the QoS (retained messages are state, the
    /// last known value of a topic): a refused message (limits) is not written, a removal is. The broker's own
    /// $SYS messages are not written (they are republished at start-up).
    /// </summary>
    private void PersistRetained(ApplicationMessage message, RetainOutcome outcome)
    {
        switch (outcome)
        {
            case RetainOutcome.Stored or RetainOutcome.Replaced:
                _store!.Append(StoreOperation.SetRetained(message.ToPersisted(_store, _time)));
                break;
            case RetainOutcome.Deleted or RetainOutcome.RefusedBytes:
                // RefusedBytes removed the topic's older message from memory as well.
                _store!.Append(StoreOperation.ClearRetained(message.Topic));
                break;
        }
    }

    /// <summary>
    /// Start-up: a retained message read back from the store, not written again. False when the retained store's
    /// limits (lowered since it was written) refuse it; the caller then removes it from the store too.
    /// </summary>
    public bool RestoreRetained(ApplicationMessage message)
        => _retained.Set(message.Topic, message) is RetainOutcome.Stored or RetainOutcome.Replaced;

    // What MaxRetainedBytes counts: the message as the client sent it (the broker's own objects per
    // message are bounded by MaxRetainedMessages).
    private static long RetainedSize(ApplicationMessage message) =>
        message.TopicUtf8.Length + message.Payload.Length + MqttPropertiesCodec.GetContentLength(message.Properties);

    /// <summary>Retained messages matching a new subscription's filter, expired ones left out [MQTT-3.3.2-5].</summary>
    public List<ApplicationMessage> GetRetained(string filter)
    {
        var found = new List<ApplicationMessage>();
        _retained.Match(filter, found);
        long now = _time.GetTimestamp();
        found.RemoveAll(m => m.RemainingExpirySeconds(now, _time.TimestampFrequency) is <= 0);
        return found;
    }
}

/// <summary>
/// The subscribers of one publish, merged per session. Owned by one connection and reused for every
/// packet it reads, so routing allocates nothing when nobody subscribed.
/// </summary>
internal sealed class RouteBuffer : ISubscriptionVisitor<Subscription>
{
    private readonly List<RouteTarget> _targets = new();
    private Dictionary<Session, int>? _indexBySession;
    private string? _publisher;

    public List<RouteTarget> Targets => _targets;

    public void Reset(string? publisherClientId)
    {
        _publisher = publisherClientId;
        _targets.Clear();
        _indexBySession?.Clear();
    }

    // [MQTT-4.8.2] a shared group's message goes to one member: prefer one that is connected.
    public bool PrefersSharedMember(Subscription subscription) => subscription.Session.IsOnline;

    public void Visit(string clientId, Subscription subscription, string? shareName)
    {
        // [MQTT-3.8.3-3] No Local: not back to the publisher.
        if (subscription.NoLocal && string.Equals(_publisher, clientId, StringComparison.Ordinal))
        {
            return;
        }
        var session = subscription.Session;
        if (_indexBySession is not null && _indexBySession.TryGetValue(session, out int index))
        {
            var merged = _targets[index];
            if (subscription.QoS > merged.MaxQoS)
            {
                merged.MaxQoS = subscription.QoS;
            }
            merged.RetainAsPublished |= subscription.RetainAsPublished;
            if (subscription.SubscriptionIdentifier is { } id)
            {
                (merged.SubscriptionIdentifiers ??= new List<int>()).Add(id);
            }
            _targets[index] = merged;
            return;
        }
        // Overlap is only possible when the session has more than one subscription: skip the map otherwise.
        if (session.SubscriptionCountHint > 1)
        {
            (_indexBySession ??= new Dictionary<Session, int>(ReferenceEqualityComparer.Instance))[session] = _targets.Count;
        }
        _targets.Add(new RouteTarget
        {
            Session = session,
            MaxQoS = subscription.QoS,
            RetainAsPublished = subscription.RetainAsPublished,
            SubscriptionIdentifiers = subscription.SubscriptionIdentifier is { } sid ? new List<int> { sid } : null,
        });
    }
}

internal struct RouteTarget
{
    public Session Session;
    public QualityOfService MaxQoS;
    public bool RetainAsPublished;
    public List<int>? SubscriptionIdentifiers;
}
