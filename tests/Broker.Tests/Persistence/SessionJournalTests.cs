using Broker.Connections.KeepAlive;
using Broker.Diagnostics;
using Broker.Hosting;
using Broker.Persistence;
using Broker.Protocol;
using Broker.Routing;
using Broker.Sessions;
using Broker.Tests.KeepAlive;
using Microsoft.Extensions.Options;
using Xunit;

namespace Broker.Tests.Persistence;

/// <summary>
/// What the broker writes to the store (docs/persistence.md, "Broker events and what they write"): only what must
/// survive, in the order memory changed, and exactly what memory drops is dropped from the store too.
/// </summary>
public sealed class SessionJournalTests : IDisposable
{
    private readonly WheelHarness _wheel = new();
    private readonly BrokerMetrics _metrics = new();
    private readonly RecordingStore _store = new();
    private readonly Router _router;
    private readonly SessionStore _sessions;

    public SessionJournalTests()
    {
        var limits = Options.Create(new BrokerLimitsOptions { MaxQueuedMessages = 3, MaxQueuedBytes = 1_000_000 });
        _router = new Router(_wheel.Time, limits, _metrics, _store);
        _sessions = new SessionStore(_router, _wheel.Time, _wheel.Wheel, journal: new SessionJournal(_store, _wheel.Time));
    }

    public void Dispose()
    {
        _wheel.Dispose();
        _metrics.Dispose();
    }

    [Fact]
    public void A_clean_session_and_QoS_0_to_it_write_nothing()
    {
        var owner = new Owner();
        var session = _sessions.Attach("clean", cleanStart: true, expiryIntervalSeconds: 0, owner, out _, out _);
        _router.Subscribe(new Subscription(session, "t/#", QualityOfService.AtLeastOnce, false, false, RetainHandling.SendAtSubscribe, null));

        Publish("t/1", QualityOfService.AtMostOnce);
        Publish("t/2", QualityOfService.AtLeastOnce);
        Assert.True(session.TryTakeNext(owner, 10, _router.QueueLimits, out _, out _));
        Assert.True(session.TryTakeNext(owner, 10, _router.QueueLimits, out _, out ushort packetId));
        session.Complete(packetId, QualityOfService.AtLeastOnce);
        _sessions.Detach(session, owner);

        Assert.False(session.AttachWroteStore);
        Assert.Empty(_store.Operations);
    }

    [Fact]
    public void A_persistent_session_writes_its_life_and_its_QoS_1_messages_but_not_QoS_0()
    {
        var owner = new Owner();
        var session = _sessions.Attach("p", cleanStart: false, expiryIntervalSeconds: 60, owner, out _, out _);
        Assert.True(session.AttachWroteStore);
        _router.Subscribe(new Subscription(session, "t/#", QualityOfService.AtLeastOnce, false, false, RetainHandling.SendAtSubscribe, 7));

        Publish("t/0", QualityOfService.AtMostOnce);
        Publish("t/1", QualityOfService.AtLeastOnce);
        Assert.True(session.TryTakeNext(owner, 10, _router.QueueLimits, out var qos0, out _));
        Assert.Equal(0, qos0.Sequence);
        Assert.True(session.TryTakeNext(owner, 10, _router.QueueLimits, out var qos1, out ushort packetId));
        session.Complete(packetId, QualityOfService.AtLeastOnce);
        _sessions.Detach(session, owner);

        Assert.Equal(
        [
            "UpsertSession p 60 connected",
            "UpsertSubscription p t/#",
            "Enqueue p 1 t/1",
            $"MarkInflight p 1 {packetId}",
            "RemoveOutbound p 1",
            "UpsertSession p 60 disconnected",
        ], _store.Describe());
        Assert.Equal(1, qos1.Sequence);
    }

    [Fact]
    public void Drop_oldest_of_an_offline_queue_drops_the_same_messages_from_the_store()
    {
        var owner = new Owner();
        var session = _sessions.Attach("off", cleanStart: false, expiryIntervalSeconds: 60, owner, out _, out _);
        _router.Subscribe(new Subscription(session, "t", QualityOfService.AtLeastOnce, false, false, RetainHandling.SendAtSubscribe, null));
        _sessions.Detach(session, owner);
        _store.Clear();

        for (int i = 1; i <= 5; i++)
        {
            Publish("t", QualityOfService.AtLeastOnce);
        }

        // MaxQueuedMessages 3: the fourth and fifth push out the first and second, in memory and in the store.
        Assert.Equal(3, session.PendingCount);
        Assert.Equal(
        [
            "Enqueue off 1 t", "Enqueue off 2 t", "Enqueue off 3 t",
            "RemoveOutbound off 1", "Enqueue off 4 t",
            "RemoveOutbound off 2", "Enqueue off 5 t",
        ], _store.Describe());
    }

    [Fact]
    public void A_message_for_many_persistent_sessions_is_one_stored_message()
    {
        var sessions = Enumerable.Range(0, 3).Select(i =>
        {
            var owner = new Owner();
            var s = _sessions.Attach($"s{i}", cleanStart: false, expiryIntervalSeconds: 60, owner, out _, out _);
            _router.Subscribe(new Subscription(s, "fan", QualityOfService.ExactlyOnce, false, false, RetainHandling.SendAtSubscribe, null));
            return s;
        }).ToList();
        _store.Clear();

        Publish("fan", QualityOfService.ExactlyOnce);

        var enqueues = _store.Operations.Where(o => o.Kind == StoreOperationKind.Enqueue).ToList();
        Assert.Equal(3, enqueues.Count);
        Assert.Single(enqueues.Select(o => o.Message).Distinct());
    }

    [Fact]
    public void QoS_2_exchange_in_both_directions_is_written_step_by_step()
    {
        var owner = new Owner();
        var session = _sessions.Attach("q2", cleanStart: false, expiryIntervalSeconds: 60, owner, out _, out _);
        _router.Subscribe(new Subscription(session, "x", QualityOfService.ExactlyOnce, false, false, RetainHandling.SendAtSubscribe, null));
        _store.Clear();

        Assert.True(session.TryAddInboundQoS2(9, 10, out _));
        Publish("x", QualityOfService.ExactlyOnce);
        Assert.True(session.RemoveInboundQoS2(9));
        Assert.True(session.TryTakeNext(owner, 10, _router.QueueLimits, out _, out ushort packetId));
        Assert.True(session.Release(packetId));
        Assert.True(session.Release(packetId)); // a repeated PUBREC writes nothing more
        Assert.True(session.Complete(packetId, QualityOfService.ExactlyOnce));

        Assert.Equal(
        [
            "AddInboundQoS2 q2 9", "Enqueue q2 1 x", "RemoveInboundQoS2 q2 9",
            $"MarkInflight q2 1 {packetId}", "MarkReleased q2 1", "RemoveOutbound q2 1",
        ], _store.Describe());
    }

    [Fact]
    public void A_session_taken_over_with_an_expiry_is_written_whole_and_one_resumed_with_expiry_0_is_deleted()
    {
        var first = new Owner();
        var session = _sessions.Attach("t", cleanStart: true, expiryIntervalSeconds: 0, first, out _, out _);
        _router.Subscribe(new Subscription(session, "a", QualityOfService.AtLeastOnce, false, false, RetainHandling.SendAtSubscribe, null));
        Publish("a", QualityOfService.AtLeastOnce);
        Publish("a", QualityOfService.AtLeastOnce);
        Assert.True(session.TryTakeNext(first, 10, _router.QueueLimits, out _, out ushort inflightId));
        Assert.Empty(_store.Operations);

        var second = new Owner();
        _sessions.Attach("t", cleanStart: false, expiryIntervalSeconds: 30, second, out bool present, out _);

        Assert.True(present);
        Assert.True(session.AttachWroteStore);
        Assert.Equal(
        [
            "UpsertSession t 30 connected", "UpsertSubscription t a",
            "Enqueue t 1 a", $"MarkInflight t 1 {inflightId}", "Enqueue t 2 a",
        ], _store.Describe());

        _store.Clear();
        _sessions.Attach("t", cleanStart: false, expiryIntervalSeconds: 0, new Owner(), out _, out _);
        Assert.Equal(["DeleteSession t"], _store.Describe());
    }

    [Fact]
    public void Clean_start_over_a_stored_session_deletes_it_and_its_CONNACK_waits()
    {
        var owner = new Owner();
        var old = _sessions.Attach("c", cleanStart: false, expiryIntervalSeconds: 60, owner, out _, out _);
        _sessions.Detach(old, owner);
        _store.Clear();

        var fresh = _sessions.Attach("c", cleanStart: true, expiryIntervalSeconds: 0, new Owner(), out bool present, out _);

        Assert.False(present);
        Assert.True(fresh.AttachWroteStore);
        Assert.Equal(["DeleteSession c"], _store.Describe());
    }

    [Fact]
    public void The_old_connection_of_a_session_discarded_by_Clean_Start_writes_nothing_when_it_ends_after_the_takeover()
    {
        var first = new Owner();
        var old = _sessions.Attach("k", cleanStart: false, expiryIntervalSeconds: 60, first, out _, out _);
        _router.Subscribe(new Subscription(old, "k/#", QualityOfService.AtLeastOnce, false, false, RetainHandling.SendAtSubscribe, null));
        _store.Clear();

        _sessions.Attach("k", cleanStart: true, expiryIntervalSeconds: 60, new Owner(), out _, out _);
        _sessions.Detach(old, first);

        // Not the discarded session written back over the new one.
        Assert.Equal(["DeleteSession k", "UpsertSession k 60 connected"], _store.Describe());
    }

    [Fact]
    public void Session_expiry_deletes_the_session_from_the_store()
    {
        var owner = new Owner();
        var session = _sessions.Attach("e", cleanStart: false, expiryIntervalSeconds: 2, owner, out _, out _);
        _router.Subscribe(new Subscription(session, "e/#", QualityOfService.AtLeastOnce, false, false, RetainHandling.SendAtSubscribe, null));
        _sessions.Detach(session, owner);
        _store.Clear();

        _wheel.RunUntil(TimeSpan.FromSeconds(3));

        Assert.False(_sessions.TryGet("e", out _));
        Assert.Equal(["DeleteSession e"], _store.Describe());
    }

    [Fact]
    public void Retained_messages_are_written_whatever_their_QoS_except_the_brokers_own_and_refused_ones()
    {
        Publish("r/a", QualityOfService.AtMostOnce, retain: true);
        Publish("r/a", QualityOfService.AtMostOnce, retain: true, payload: []);
        _router.PublishServerMessage(Message("$SYS/broker/uptime", QualityOfService.AtMostOnce, retain: true, payload: [1]));

        Assert.Equal(["SetRetained r/a", "ClearRetained r/a"], _store.Describe());
    }

    [Fact]
    public void A_delayed_will_its_ACL_refuses_when_due_is_deleted_from_the_store_not_kept_for_the_next_start()
    {
        var wills = new WillPublisher(_router, _wheel.Wheel, new SessionJournal(_store, _wheel.Time));
        var receiver = new Owner();
        var session = _sessions.Attach("receiver", cleanStart: true, expiryIntervalSeconds: 0, receiver, out _, out _);
        _router.Subscribe(new Subscription(session, "will/#", QualityOfService.AtMostOnce, false, false, RetainHandling.SendAtSubscribe, null));
        _store.Clear();

        wills.Publish("gone", Message("will/gone", QualityOfService.AtMostOnce, retain: false, [1]), delaySeconds: 5, new RefusingPermissions());
        _wheel.RunUntil(TimeSpan.FromSeconds(6));

        Assert.Equal(0, wills.PendingCount);
        Assert.Equal(0, session.PendingCount);
        Assert.Equal(["SaveWill gone will/gone", "DeleteWill gone"], _store.Describe());
    }

    [Fact]
    public void A_session_a_Clean_Start_discarded_while_online_is_not_kept_for_its_expiry_when_its_connection_ends()
    {
        var first = new Owner();
        var old = _sessions.Attach("c", cleanStart: false, expiryIntervalSeconds: 3600, first, out _, out _);
        var second = new Owner();
        var replacement = _sessions.Attach("c", cleanStart: true, expiryIntervalSeconds: 3600, second, out _, out _);
        Assert.NotSame(old, replacement);
        _store.Clear();

        Assert.True(_sessions.Detach(old, first));

        Assert.Null(old.ExpiryDeadline);
        Assert.Empty(_store.Operations);
        Assert.True(_sessions.TryGet("c", out var current));
        Assert.Same(replacement, current);
    }

    private sealed class RefusingPermissions : ITopicPermissions
    {
        public bool IsUnrestricted => false;

        public bool CanReceive(ReadOnlySpan<char> topic) => true;

        public bool CanPublish(ReadOnlySpan<char> topic) => false;
    }

    private void Publish(string topic, QualityOfService qos, bool retain = false, byte[]? payload = null)
        => _router.Publish(Message(topic, qos, retain, payload ?? [1, 2, 3]));

    private ApplicationMessage Message(string topic, QualityOfService qos, bool retain, byte[] payload) => new()
    {
        Topic = topic,
        TopicUtf8 = System.Text.Encoding.UTF8.GetBytes(topic),
        Payload = payload,
        QoS = qos,
        Retain = retain,
        PublisherClientId = "publisher",
        ReceivedTimestamp = _wheel.Time.GetTimestamp(),
    };

    private sealed class Owner : IDeliveryTarget
    {
        public bool IsStalled => false;
        public bool IsHeldBack => false;
        public void NotifyPending()
        {
        }

        public void OnMessagesDropped(DropReason reason, int count)
        {
        }
    }
}

/// <summary>An in-memory <see cref="IBrokerStateStore"/> that records what is appended, for tests of what the broker writes.</summary>
internal sealed class RecordingStore : IBrokerStateStore
{
    private readonly Lock _lock = new();
    private readonly List<StoreOperation> _operations = [];
    private long _lastId;

    public IReadOnlyList<StoreOperation> Operations
    {
        get
        {
            lock (_lock)
            {
                return [.. _operations.Where(o => o.Kind is not (StoreOperationKind.Barrier or StoreOperationKind.Flush))];
            }
        }
    }

    public void Clear()
    {
        lock (_lock)
        {
            _operations.Clear();
        }
    }

    /// <summary>One line per operation: kind, client, then what identifies it.</summary>
    public IReadOnlyList<string> Describe() => [.. Operations.Select(o => o.Kind switch
    {
        StoreOperationKind.UpsertSession => $"UpsertSession {o.ClientId} {o.SessionExpirySeconds} {(o.WallTimeMs is null ? "connected" : "disconnected")}",
        StoreOperationKind.DeleteSession or StoreOperationKind.DeleteWill => $"{o.Kind} {o.ClientId}",
        StoreOperationKind.UpsertSubscription or StoreOperationKind.DeleteSubscription => $"{o.Kind} {o.ClientId} {o.Topic}",
        StoreOperationKind.Enqueue => $"Enqueue {o.ClientId} {o.Sequence} {o.Message!.Topic}",
        StoreOperationKind.MarkInflight => $"MarkInflight {o.ClientId} {o.Sequence} {o.PacketId}",
        StoreOperationKind.MarkReleased or StoreOperationKind.RemoveOutbound => $"{o.Kind} {o.ClientId} {o.Sequence}",
        StoreOperationKind.AddInboundQoS2 or StoreOperationKind.RemoveInboundQoS2 => $"{o.Kind} {o.ClientId} {o.PacketId}",
        StoreOperationKind.SetRetained => $"SetRetained {o.Message!.Topic}",
        StoreOperationKind.ClearRetained => $"ClearRetained {o.Topic}",
        StoreOperationKind.SaveWill => $"SaveWill {o.ClientId} {o.Message!.Topic}",
        _ => o.Kind.ToString(),
    })];

    public RestoredState Open() => throw new NotSupportedException();

    public long NewMessageId() => Interlocked.Increment(ref _lastId);

    public void Append(in StoreOperation operation)
    {
        lock (_lock)
        {
            _operations.Add(operation);
        }
    }

    public void Append(in StoreOperation operation, IStoreCompletion completion, long token)
    {
        Append(operation);
        completion.OnStoreCompleted(token, StoreOutcome.Durable);
    }

    public int PendingOperations => 0;
    public bool IsBehind => false;
    public Task WhenCaughtUp() => Task.CompletedTask;
    public StoreHealth Health => StoreHealth.Healthy;
    public StoreMeasurement Measure() => default;

    public void Dispose()
    {
    }
}
