using Broker.Persistence;
using Broker.Protocol;
using Xunit;

namespace Broker.Tests.Persistence;

/// <summary>A restart drops what expired while the broker was down, by the wall clock, and keeps the rest.</summary>
public sealed class SqliteStoreRestoreTests : IDisposable
{
    private readonly StoreRig _rig = new();

    public void Dispose() => _rig.Dispose();

    [Fact]
    public async Task What_expired_while_the_broker_was_down_is_dropped_at_restore()
    {
        var (store, _) = _rig.Open();
        var t0 = _rig.Time.GetUtcNow();
        var expiring = _rig.Message(store, "m/expiring", [1], expirySeconds: 20);
        var lasting = _rig.Message(store, "m/lasting", [2], expirySeconds: 1000);
        var forever = _rig.Message(store, "m/forever", [3]);
        store.Append(StoreOperation.UpsertSession("keep", 100, t0));
        store.Append(StoreOperation.UpsertSession("gone", 10, t0));
        store.Append(StoreOperation.UpsertSession("never", uint.MaxValue, t0));
        store.Append(StoreOperation.UpsertSession("connected", 5, disconnectedAt: null));
        store.Append(StoreOperation.Enqueue("keep", 1, expiring, QualityOfService.AtLeastOnce, false, null));
        store.Append(StoreOperation.Enqueue("keep", 2, expiring, QualityOfService.AtLeastOnce, false, null));
        store.Append(StoreOperation.MarkInflight("keep", 2, 1));
        store.Append(StoreOperation.Enqueue("keep", 3, lasting, QualityOfService.AtLeastOnce, false, null));
        store.Append(StoreOperation.Enqueue("keep", 4, forever, QualityOfService.AtLeastOnce, false, null));
        store.Append(StoreOperation.Enqueue("gone", 1, lasting, QualityOfService.AtLeastOnce, false, null));
        store.Append(StoreOperation.UpsertSubscription("gone", "m/#", QualityOfService.AtLeastOnce, false, false, RetainHandling.SendAtSubscribe, null));
        store.Append(StoreOperation.AddInboundQoS2("gone", 3));
        store.Append(StoreOperation.SetRetained(_rig.Message(store, "r/expiring", [4], expirySeconds: 20)));
        store.Append(StoreOperation.SetRetained(_rig.Message(store, "r/forever", [5])));
        store.Append(StoreOperation.SaveWill("gone", _rig.Message(store, "w/gone", [6]), t0.AddSeconds(10)));
        await StoreRig.FlushAsync(store);
        store.Dispose();

        _rig.Time.Advance(TimeSpan.FromSeconds(30));
        var state = _rig.Create().Open();

        Assert.Equal(["connected", "keep", "never"], state.Sessions.Select(s => s.ClientId).Order());
        Assert.Equal((1, 1, 1), (state.Report.ExpiredSessions, state.Report.ExpiredQueuedMessages, state.Report.ExpiredRetainedMessages));
        var keep = state.Sessions.Single(s => s.ClientId == "keep");
        // [MQTT-3.3.2-5] the expired copy not yet sent is dropped; the one in flight (delivery started) is kept.
        Assert.Equal([3L, 4L], keep.Queued.Select(q => q.Sequence));
        Assert.Equal([2L], keep.Inflight.Select(q => q.Sequence));
        Assert.Equal("r/forever", Assert.Single(state.Retained).Topic);
        // The will of the expired session stays: it is overdue and is published at start-up.
        var will = Assert.Single(state.Wills);
        Assert.Equal(("gone", t0.AddSeconds(10)), (will.ClientId, will.DueAt));
        Assert.Equal(0, _rig.Count("subscription"));
        Assert.Equal(0, _rig.Count("inbound_qos2"));
        Assert.Equal(3, state.Report.Messages); // "expiring" (in flight), "lasting", "forever"

        var connected = state.Sessions.Single(s => s.ClientId == "connected");
        Assert.True(connected.WasConnected);
        Assert.Equal(_rig.Time.GetUtcNow(), connected.DisconnectedAt);
    }

    [Fact]
    public async Task A_session_expires_exactly_when_its_interval_has_passed()
    {
        var (store, _) = _rig.Open();
        store.Append(StoreOperation.UpsertSession("s", 10, _rig.Time.GetUtcNow()));
        await StoreRig.FlushAsync(store);
        store.Dispose();

        _rig.Time.Advance(TimeSpan.FromMilliseconds(9_999));
        var before = _rig.Create();
        Assert.Single(before.Open().Sessions);
        before.Dispose();

        _rig.Time.Advance(TimeSpan.FromMilliseconds(1));
        var at = _rig.Create().Open();
        Assert.Empty(at.Sessions);
        Assert.Equal(1, at.Report.ExpiredSessions);
    }

    [Fact]
    public async Task A_message_expires_exactly_when_its_interval_has_passed()
    {
        var (store, _) = _rig.Open();
        store.Append(StoreOperation.UpsertSession("s", uint.MaxValue, _rig.Time.GetUtcNow()));
        store.Append(StoreOperation.Enqueue("s", 1, _rig.Message(store, "t", [1], expirySeconds: 10), QualityOfService.AtLeastOnce, false, null));
        store.Append(StoreOperation.SetRetained(_rig.Message(store, "t", [1], expirySeconds: 10)));
        await StoreRig.FlushAsync(store);
        store.Dispose();

        _rig.Time.Advance(TimeSpan.FromMilliseconds(9_999));
        var before = _rig.Create();
        var kept = before.Open();
        Assert.Single(kept.Sessions[0].Queued);
        Assert.Single(kept.Retained);
        Assert.Equal(1, kept.Sessions[0].Queued[0].Message.RemainingExpirySeconds(_rig.Time.GetUtcNow()));
        before.Dispose();

        _rig.Time.Advance(TimeSpan.FromMilliseconds(1));
        var at = _rig.Create().Open();
        Assert.Empty(at.Sessions[0].Queued);
        Assert.Empty(at.Retained);
        Assert.Equal(0, at.Report.Messages);
        Assert.Equal(0, _rig.Count("message"));
    }

    [Fact]
    public async Task A_session_whose_client_was_connected_at_a_crash_counts_down_from_the_first_restart()
    {
        var (store, _) = _rig.Open();
        store.Append(StoreOperation.UpsertSession("c", 5, disconnectedAt: null));
        await StoreRig.FlushAsync(store);
        store.Dispose();

        _rig.Time.Advance(TimeSpan.FromHours(1));
        var first = _rig.Create();
        Assert.True(Assert.Single(first.Open().Sessions).WasConnected);
        first.Dispose();

        // A second restart does not restart the countdown: it began at the first one.
        _rig.Time.Advance(TimeSpan.FromSeconds(5));
        Assert.Empty(_rig.Create().Open().Sessions);
    }

    [Fact]
    public async Task A_clock_set_back_while_down_expires_nothing()
    {
        var (store, _) = _rig.Open();
        // Written while the clock was a day ahead of the one the restart reads.
        var ahead = _rig.Time.GetUtcNow().AddDays(1);
        var message = new PersistedMessage
        {
            Id = store.NewMessageId(), Topic = "t", Payload = new byte[] { 1 }, QoS = QualityOfService.AtLeastOnce, ExpiryIntervalSeconds = 10, ReceivedAt = ahead,
        };
        store.Append(StoreOperation.UpsertSession("s", 10, ahead));
        store.Append(StoreOperation.Enqueue("s", 1, message, QualityOfService.AtLeastOnce, false, null));
        await StoreRig.FlushAsync(store);

        var state = _rig.Reopen(store);

        var restored = Assert.Single(Assert.Single(state.Sessions).Queued).Message;
        Assert.Equal(10, restored.RemainingExpirySeconds(_rig.Time.GetUtcNow()));
    }

    [Fact]
    public async Task The_restore_report_counts_what_was_loaded()
    {
        var (store, _) = _rig.Open();
        for (int i = 0; i < 20; i++)
        {
            store.Append(StoreOperation.UpsertSession($"c{i}", 60, _rig.Time.GetUtcNow()));
            store.Append(StoreOperation.SetRetained(_rig.Message(store, $"r/{i}", new byte[100])));
        }
        await StoreRig.FlushAsync(store);
        var state = _rig.Reopen(store);
        Assert.Equal((20, 20, 2000L), (state.Report.Sessions, state.Report.RetainedMessages, state.Report.RetainedBytes));
        Assert.Equal(_rig.DatabasePath, state.Report.DatabasePath);
    }
}
