using Broker.Persistence;
using Broker.Protocol;

namespace Broker.Sessions;

/// <summary>
/// What sessions write to the persistent store, in the broker's own terms (sessions, queued messages, subscriptions),
/// translated into store operations. Only persistent sessions (expiry above 0) hold one; a session calls it under its
/// own lock, so that its operations reach the store in the order its memory changed (see docs/persistence.md).
/// Appending never waits for the disk.
/// </summary>
internal sealed class SessionJournal(IBrokerStateStore store, TimeProvider time)
{
    public IBrokerStateStore Store => store;

    public TimeProvider Time => time;

    public void UpsertSession(string clientId, uint expiryIntervalSeconds, bool connected, string? ownerUserName)
        => store.Append(StoreOperation.UpsertSession(clientId, expiryIntervalSeconds, connected ? null : time.GetUtcNow(), ownerUserName));

    public void DeleteSession(string clientId) => store.Append(StoreOperation.DeleteSession(clientId));

    public void UpsertSubscription(Subscription s)
        => store.Append(StoreOperation.UpsertSubscription(s.Session.ClientId, s.Filter, s.QoS, s.NoLocal, s.RetainAsPublished, s.RetainHandling,
            s.SubscriptionIdentifier));

    public void DeleteSubscription(string clientId, string filter) => store.Append(StoreOperation.DeleteSubscription(clientId, filter));

    public void Enqueue(string clientId, in OutboundMessage message)
        => store.Append(StoreOperation.Enqueue(clientId, message.Sequence, message.Message.ToPersisted(store, time), message.QoS, message.Retain,
            message.SubscriptionIdentifiers));

    public void MarkInflight(string clientId, long sequence, ushort packetId) => store.Append(StoreOperation.MarkInflight(clientId, sequence, packetId));

    public void MarkReleased(string clientId, long sequence) => store.Append(StoreOperation.MarkReleased(clientId, sequence));

    public void RemoveOutbound(string clientId, long sequence) => store.Append(StoreOperation.RemoveOutbound(clientId, sequence));

    public void AddInboundQoS2(string clientId, ushort packetId) => store.Append(StoreOperation.AddInboundQoS2(clientId, packetId));

    public void RemoveInboundQoS2(string clientId, ushort packetId) => store.Append(StoreOperation.RemoveInboundQoS2(clientId, packetId));

    /// <summary>Whether a message delivered at <paramref name="qos"/> is written for a persistent session: QoS 0 never is.</summary>
    public static bool IsStored(QualityOfService qos) => qos != QualityOfService.AtMostOnce;
}
