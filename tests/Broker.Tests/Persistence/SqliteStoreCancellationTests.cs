using Broker.Persistence;
using Broker.Protocol;
using Xunit;

namespace Broker.Tests.Persistence;

/// <summary>
/// A queue entry enqueued and removed within one batch (a message delivered to an online subscriber and acknowledged
/// before the commit) is not written at all; the store still ends each batch as if every operation had been applied.
/// </summary>
public sealed class SqliteStoreCancellationTests : IDisposable
{
    private readonly StoreRig _rig = new();

    public void Dispose() => _rig.Dispose();

    [Fact]
    public async Task An_entry_enqueued_and_removed_in_one_batch_writes_no_row_while_another_queue_keeps_the_message()
    {
        // A long flush interval on a clock nobody advances: everything below is one batch, committed by the Flush.
        var (store, _) = _rig.Open(flushIntervalMs: 1000);
        var message = _rig.Message(store, "t", [1, 2, 3]);
        var alone = _rig.Message(store, "u", [4]);
        store.Append(StoreOperation.UpsertSession("online", 60, null));
        store.Append(StoreOperation.UpsertSession("offline", 60, _rig.Time.GetUtcNow()));
        store.Append(StoreOperation.Enqueue("online", 1, message, QualityOfService.ExactlyOnce, false, null));
        store.Append(StoreOperation.Enqueue("offline", 1, message, QualityOfService.AtLeastOnce, false, null));
        store.Append(StoreOperation.Enqueue("online", 2, alone, QualityOfService.AtLeastOnce, false, null));
        store.Append(StoreOperation.MarkInflight("online", 1, 10));
        store.Append(StoreOperation.MarkInflight("online", 2, 11));
        store.Append(StoreOperation.MarkReleased("online", 1));
        store.Append(StoreOperation.RemoveOutbound("online", 1));
        store.Append(StoreOperation.RemoveOutbound("online", 2));
        await StoreRig.FlushAsync(store);

        Assert.Equal(1, _rig.Count("session_message"));
        Assert.Equal(1, _rig.Count("message"));
        var state = _rig.Reopen(store);
        Assert.Empty(state.Sessions.Single(s => s.ClientId == "online").Queued);
        Assert.Empty(state.Sessions.Single(s => s.ClientId == "online").Inflight);
        Assert.Equal("t", Assert.Single(state.Sessions.Single(s => s.ClientId == "offline").Queued).Message.Topic);
    }

    [Fact]
    public async Task A_removal_pairs_with_the_latest_enqueue_of_its_key_and_never_across_a_deleted_session()
    {
        var (store, _) = _rig.Open(flushIntervalMs: 1000);
        var old = _rig.Message(store, "old", [1]);
        var kept = _rig.Message(store, "kept", [2]);
        var gone = _rig.Message(store, "gone", [3]);
        // The first session of "c" queues sequence 1; Clean Start deletes it; the next session reuses sequence 1.
        store.Append(StoreOperation.UpsertSession("c", 60, null));
        store.Append(StoreOperation.Enqueue("c", 1, old, QualityOfService.AtLeastOnce, false, null));
        store.Append(StoreOperation.DeleteSession("c"));
        store.Append(StoreOperation.UpsertSession("c", 60, null));
        store.Append(StoreOperation.Enqueue("c", 1, gone, QualityOfService.AtLeastOnce, false, null));
        store.Append(StoreOperation.RemoveOutbound("c", 1));
        store.Append(StoreOperation.Enqueue("c", 2, kept, QualityOfService.AtLeastOnce, false, null));
        await StoreRig.FlushAsync(store);

        var c = Assert.Single(_rig.Reopen(store).Sessions);
        Assert.Equal([(2L, "kept")], c.Queued.Select(q => (q.Sequence, q.Message.Topic)));
        Assert.Equal(1, _rig.Count("message"));
    }

    [Fact]
    public async Task An_entry_written_by_an_earlier_batch_is_removed_as_usual()
    {
        var (store, _) = _rig.Open(flushIntervalMs: 1000);
        var message = _rig.Message(store, "t", [1]);
        store.Append(StoreOperation.UpsertSession("c", 60, null));
        store.Append(StoreOperation.Enqueue("c", 1, message, QualityOfService.AtLeastOnce, false, null));
        await StoreRig.FlushAsync(store);
        Assert.Equal(1, _rig.Count("session_message"));

        store.Append(StoreOperation.MarkInflight("c", 1, 5));
        store.Append(StoreOperation.RemoveOutbound("c", 1));
        await StoreRig.FlushAsync(store);

        Assert.Equal(0, _rig.Count("session_message"));
        Assert.Equal(0, _rig.Count("message"));
    }
}
