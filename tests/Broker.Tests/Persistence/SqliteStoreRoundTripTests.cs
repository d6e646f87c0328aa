using Broker.Persistence;
using Broker.Protocol;
using Xunit;

namespace Broker.Tests.Persistence;

/// <summary>Everything written comes back after a restart, deletions stay deleted, and a shared message is stored once.</summary>
public sealed class SqliteStoreRoundTripTests : IDisposable
{
    private readonly StoreRig _rig = new();

    public void Dispose() => _rig.Dispose();

    [Fact]
    public async Task Every_kind_of_state_survives_a_restart()
    {
        var (store, opened) = _rig.Open();
        Assert.True(opened.Report.Created);
        var now = _rig.Time.GetUtcNow();
        var properties = new MqttProperties
        {
            ContentType = "application/json",
            UserProperties = [new("k", "v")],
            CorrelationData = [9, 8],
        };
        var m1 = _rig.Message(store, "a/1", [1, 2, 3], QualityOfService.AtLeastOnce, expirySeconds: 600, properties);
        var m2 = _rig.Message(store, "b/2", [4], QualityOfService.ExactlyOnce, retain: true);
        var m3 = _rig.Message(store, "b/3", [], QualityOfService.AtLeastOnce);
        var retained = _rig.Message(store, "s/1", [7, 7], QualityOfService.AtLeastOnce, properties: properties);
        var will = _rig.Message(store, "wills/c1", [], QualityOfService.ExactlyOnce, expirySeconds: 30, properties, retain: true);

        store.Append(StoreOperation.UpsertSession("c1", 3600, now));
        store.Append(StoreOperation.UpsertSession("c2", uint.MaxValue, now));
        store.Append(StoreOperation.UpsertSubscription("c1", "a/+", QualityOfService.AtLeastOnce, noLocal: true, retainAsPublished: true,
            RetainHandling.DoNotSend, subscriptionIdentifier: 7));
        store.Append(StoreOperation.UpsertSubscription("c1", "b/#", QualityOfService.ExactlyOnce, noLocal: false, retainAsPublished: false,
            RetainHandling.SendAtSubscribeIfNew, subscriptionIdentifier: null));
        store.Append(StoreOperation.Enqueue("c1", 1, m1, QualityOfService.AtLeastOnce, retain: false, [7]));
        store.Append(StoreOperation.Enqueue("c1", 2, m2, QualityOfService.ExactlyOnce, retain: true, null));
        store.Append(StoreOperation.Enqueue("c1", 3, m3, QualityOfService.AtLeastOnce, retain: false, [1, 268_435_455]));
        store.Append(StoreOperation.MarkInflight("c1", 2, 42));
        store.Append(StoreOperation.MarkReleased("c1", 2));
        store.Append(StoreOperation.MarkInflight("c1", 3, 43));
        store.Append(StoreOperation.AddInboundQoS2("c1", 5));
        store.Append(StoreOperation.AddInboundQoS2("c1", 9));
        store.Append(StoreOperation.AddInboundQoS2("c1", 11));
        store.Append(StoreOperation.RemoveInboundQoS2("c1", 5));
        store.Append(StoreOperation.SetRetained(retained));
        store.Append(StoreOperation.SetRetained(_rig.Message(store, "s/2", [1], QualityOfService.AtMostOnce)));
        store.Append(StoreOperation.ClearRetained("s/2"));
        store.Append(StoreOperation.SaveWill("c1", will, now.AddSeconds(30)));
        await StoreRig.FlushAsync(store);

        var state = _rig.Reopen(store);

        Assert.False(state.Report.Created);
        Assert.Equal(2, state.Sessions.Count);
        var c1 = Assert.Single(state.Sessions, s => s.ClientId == "c1");
        Assert.Equal(3600u, c1.ExpiryIntervalSeconds);
        Assert.Equal(now, c1.DisconnectedAt);
        Assert.False(c1.WasConnected);
        Assert.Equal(uint.MaxValue, Assert.Single(state.Sessions, s => s.ClientId == "c2").ExpiryIntervalSeconds);

        Assert.Equal(
            [
                new PersistedSubscription("a/+", QualityOfService.AtLeastOnce, true, true, RetainHandling.DoNotSend, 7),
                new PersistedSubscription("b/#", QualityOfService.ExactlyOnce, false, false, RetainHandling.SendAtSubscribeIfNew, null),
            ],
            c1.Subscriptions.OrderBy(s => s.Filter));

        var queued = Assert.Single(c1.Queued);
        Assert.Equal((1L, QualityOfService.AtLeastOnce, false, (ushort?)null, false), (queued.Sequence, queued.QoS, queued.Retain, queued.PacketId, queued.Released));
        Assert.Equal([7], queued.SubscriptionIdentifiers!);
        AssertSameMessage(m1, queued.Message);
        Assert.Equal("application/json", PersistedProperties.Decode(queued.Message.Properties, PropertyContext.Publish)!.ContentType);

        Assert.Equal([2L, 3L], c1.Inflight.Select(o => o.Sequence));
        Assert.Equal(((ushort?)42, true, true, QualityOfService.ExactlyOnce), (c1.Inflight[0].PacketId, c1.Inflight[0].Released, c1.Inflight[0].Retain, c1.Inflight[0].QoS));
        Assert.Null(c1.Inflight[0].SubscriptionIdentifiers);
        AssertSameMessage(m2, c1.Inflight[0].Message);
        Assert.Equal(((ushort?)43, false), (c1.Inflight[1].PacketId, c1.Inflight[1].Released));
        Assert.Equal([1, 268_435_455], c1.Inflight[1].SubscriptionIdentifiers!);
        AssertSameMessage(m3, c1.Inflight[1].Message);
        Assert.Equal(3, c1.LastSequence);

        Assert.Equal([(ushort)9, (ushort)11], c1.InboundQoS2);

        var r = Assert.Single(state.Retained);
        Assert.Equal("s/1", r.Topic);
        Assert.Equal([7, 7], r.Payload.ToArray());
        Assert.Equal(retained.Properties, r.Properties);
        Assert.Null(r.ExpiryIntervalSeconds);
        Assert.Equal(now, r.ReceivedAt);

        var w = Assert.Single(state.Wills);
        Assert.Equal(("c1", "wills/c1", now.AddSeconds(30)), (w.ClientId, w.Message.Topic, w.DueAt));
        Assert.True(w.Message.Payload.IsEmpty);
        Assert.Equal((QualityOfService.ExactlyOnce, true, (uint?)30), (w.Message.QoS, w.Message.Retain, w.Message.ExpiryIntervalSeconds));
        Assert.Equal([new KeyValuePair<string, string>("k", "v")], PersistedProperties.Decode(w.Message.Properties, PropertyContext.Will)!.UserProperties!);

        Assert.Equal((2, 2, 1, 2, 2, 3, 4L, 1, 1), (state.Report.Sessions, state.Report.Subscriptions, state.Report.QueuedMessages,
            state.Report.InflightMessages, state.Report.InboundQoS2, state.Report.Messages, state.Report.MessageBytes, state.Report.RetainedMessages,
            state.Report.Wills));
    }

    [Fact]
    public async Task Deleted_state_stays_deleted_and_takes_its_messages_with_it()
    {
        var (store, _) = _rig.Open();
        var now = _rig.Time.GetUtcNow();
        var m1 = _rig.Message(store, "t/1", [1]);
        var m2 = _rig.Message(store, "t/2", [2]);
        foreach (string client in new[] { "keep", "drop" })
        {
            store.Append(StoreOperation.UpsertSession(client, 60, now));
            store.Append(StoreOperation.UpsertSubscription(client, "t/#", QualityOfService.AtLeastOnce, false, false, RetainHandling.SendAtSubscribe, null));
            store.Append(StoreOperation.Enqueue(client, 1, m1, QualityOfService.AtLeastOnce, false, null));
            store.Append(StoreOperation.Enqueue(client, 2, m2, QualityOfService.AtLeastOnce, false, null));
            store.Append(StoreOperation.AddInboundQoS2(client, 1));
            store.Append(StoreOperation.SaveWill(client, m1, now));
        }
        await StoreRig.FlushAsync(store);

        store.Append(StoreOperation.DeleteSubscription("keep", "t/#"));
        store.Append(StoreOperation.MarkInflight("keep", 1, 1));
        store.Append(StoreOperation.RemoveOutbound("keep", 1));
        store.Append(StoreOperation.DeleteWill("keep"));
        store.Append(StoreOperation.DeleteSession("drop"));
        await StoreRig.FlushAsync(store);

        var measured = store.Measure();
        // m1 left both queues, m2 is still queued for "keep".
        Assert.Equal((1L, 0L, 1L, 0L, 1L, 1L, 1L, 1L), (measured.Sessions, measured.Subscriptions, measured.QueuedMessages, measured.InflightMessages,
            measured.InboundQoS2, measured.Messages, measured.MessageBytes, measured.Wills));
        var state = _rig.Reopen(store);
        var keep = Assert.Single(state.Sessions);
        Assert.Equal("keep", keep.ClientId);
        Assert.Empty(keep.Subscriptions);
        Assert.Equal([2L], keep.Queued.Select(q => q.Sequence));
        Assert.Empty(keep.Inflight);
        Assert.Equal([(ushort)1], keep.InboundQoS2);
        // DeleteSession leaves the will: a will outlives its session until it is published or cancelled.
        Assert.Equal("drop", Assert.Single(state.Wills).ClientId);
    }

    [Fact]
    public async Task A_message_queued_for_many_sessions_is_stored_once_and_shared_after_restore()
    {
        var (store, _) = _rig.Open();
        var payload = new byte[10_000];
        var message = _rig.Message(store, "fleet/cmd", payload);
        for (int i = 0; i < 50; i++)
        {
            store.Append(StoreOperation.UpsertSession($"d{i}", 3600, _rig.Time.GetUtcNow()));
            store.Append(StoreOperation.Enqueue($"d{i}", 1, message, QualityOfService.AtLeastOnce, false, null));
        }
        await StoreRig.FlushAsync(store);
        Assert.Equal((1L, 10_000L, 50L), (store.Measure().Messages, store.Measure().MessageBytes, store.Measure().QueuedMessages));

        var state = _rig.Reopen(store);
        var first = state.Sessions[0].Queued[0].Message;
        Assert.All(state.Sessions, s => Assert.Same(first, Assert.Single(s.Queued).Message));
        Assert.Equal((1, 10_000L), (state.Report.Messages, state.Report.MessageBytes));
    }

    [Fact]
    public async Task A_message_row_goes_with_the_last_queue_that_held_it()
    {
        var (store, _) = _rig.Open();
        var message = _rig.Message(store, "t", [1, 2]);
        store.Append(StoreOperation.Enqueue("a", 1, message, QualityOfService.AtLeastOnce, false, null));
        store.Append(StoreOperation.Enqueue("b", 1, message, QualityOfService.AtLeastOnce, false, null));
        await StoreRig.FlushAsync(store);

        store.Append(StoreOperation.RemoveOutbound("a", 1));
        await StoreRig.FlushAsync(store);
        Assert.Equal(1, _rig.Count("message"));

        store.Append(StoreOperation.RemoveOutbound("b", 1));
        await StoreRig.FlushAsync(store);
        Assert.Equal(0, _rig.Count("message"));
    }

    [Fact]
    public async Task Message_ids_continue_above_those_in_the_store_after_a_restart()
    {
        var (store, _) = _rig.Open();
        var message = _rig.Message(store, "t", [1]);
        store.Append(StoreOperation.UpsertSession("c", 60, _rig.Time.GetUtcNow()));
        store.Append(StoreOperation.Enqueue("c", 1, message, QualityOfService.AtLeastOnce, false, null));
        await StoreRig.FlushAsync(store);
        store.Dispose();

        var again = _rig.Create();
        again.Open();
        Assert.True(again.NewMessageId() > message.Id);
    }

    [Fact]
    public async Task The_store_can_be_closed_and_reopened_repeatedly()
    {
        for (int round = 1; round <= 3; round++)
        {
            var store = _rig.Create();
            var state = store.Open();
            Assert.Equal(round - 1, state.Sessions.Count);
            Assert.Equal(round == 1, state.Report.Created);
            store.Append(StoreOperation.UpsertSession($"c{round}", 60, _rig.Time.GetUtcNow()));
            await StoreRig.FlushAsync(store);
            store.Dispose();
            Assert.Equal(StoreHealth.Stopped, store.Health);
            // A clean stop checkpoints the log into the database file: the directory can be copied as it is.
            Assert.False(File.Exists(_rig.DatabasePath + "-wal"));
        }
    }

    [Fact]
    public void Properties_round_trip_through_their_protocol_encoding()
    {
        var p = new MqttProperties
        {
            PayloadFormatIndicator = 1,
            ContentType = "text/plain",
            ResponseTopic = "reply/here",
            CorrelationData = [1, 2, 3],
            UserProperties = [new("a", "1"), new("a", "2")],
        };
        var decoded = PersistedProperties.Decode(PersistedProperties.Encode(p), PropertyContext.Publish)!;
        Assert.Equal((p.PayloadFormatIndicator, p.ContentType, p.ResponseTopic), (decoded.PayloadFormatIndicator, decoded.ContentType, decoded.ResponseTopic));
        Assert.Equal(p.CorrelationData, decoded.CorrelationData);
        Assert.Equal(p.UserProperties, decoded.UserProperties);
        Assert.Null(PersistedProperties.Encode(null));
        Assert.Null(PersistedProperties.Encode(new MqttProperties()));
        Assert.Throws<InvalidDataException>(() => PersistedProperties.Decode([5, 0x03, 0, 9], PropertyContext.Publish));
    }

    private static void AssertSameMessage(PersistedMessage expected, PersistedMessage actual)
    {
        Assert.Equal((expected.Id, expected.Topic, expected.QoS, expected.Retain, expected.ExpiryIntervalSeconds, expected.ReceivedAt),
            (actual.Id, actual.Topic, actual.QoS, actual.Retain, actual.ExpiryIntervalSeconds, actual.ReceivedAt));
        Assert.Equal(expected.Payload.ToArray(), actual.Payload.ToArray());
        Assert.Equal(expected.Properties, actual.Properties);
    }
}
