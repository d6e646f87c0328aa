using Broker.Persistence;
using Broker.Protocol;
using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using static Conformance.Persistence.PersistenceRestartTests;

namespace Conformance.Persistence;

/// <summary>
/// A commit that fails (the disk is full) is never an acknowledgement (docs/persistence.md, "Failures while running"):
/// 5.0 clients get 0x80 Unspecified error (CONNACK 0x88 Server unavailable), 3.1.1 clients, which have no negative
/// acknowledgement, are disconnected; once the disk has room again, acknowledgements are positive again.
/// </summary>
public sealed class StoreFailureReplyTests
{
    private static readonly MqttProtocolVersion V311 = MqttProtocolVersion.V311;
    private static readonly MqttProtocolVersion V500 = MqttProtocolVersion.V500;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_full_disk_answers_with_error_codes_or_a_close_never_with_an_acknowledgement_and_recovers()
    {
        await using var broker = await BrokerInstance.StartAsync();
        var store = (SqliteBrokerStateStore)broker.Services.GetRequiredService<IBrokerStateStore>();
        var session = new MqttProperties { SessionExpiryInterval = 600 };
        await using var pub5 = await ConnectAsync(broker.EndPoint, V500, "full-pub5", cleanStart: true, expectPresent: false);
        await using var pub3 = await ConnectAsync(broker.EndPoint, V311, "full-pub3", cleanStart: true, expectPresent: false);
        await using var sub5 = await ConnectAsync(broker.EndPoint, V500, "full-sub5", cleanStart: true, expectPresent: false, session);

        // The database may not grow any more: every commit that needs a new page fails with SQLITE_FULL.
        store.SetMaxPageCountForTest(1);
        var big = new string('x', 64 * 1024);

        await pub5.SendAsync(Publish("full/a", big, QualityOfService.AtLeastOnce, 1, retain: true), V500);
        Assert.Equal(ReasonCode.UnspecifiedError, (await pub5.ExpectAsync<PubAckPacket>(V500)).ReasonCode);
        await pub5.SendAsync(Publish("full/b", big, QualityOfService.ExactlyOnce, 2, retain: true), V500);
        Assert.Equal(ReasonCode.UnspecifiedError, (await pub5.ExpectAsync<PubRecPacket>(V500)).ReasonCode);

        await sub5.SendAsync(new SubscribePacket { PacketId = 3, Subscriptions = [new TopicSubscription("full/#", QualityOfService.AtLeastOnce)] }, V500);
        var suback = await sub5.ExpectAsync<SubAckPacket>(V500);
        Assert.Equal([(byte)ReasonCode.UnspecifiedError], suback.ReasonCodes);

        // 3.1.1 has no negative PUBACK: the connection is closed without one, and the client resends after reconnecting.
        await pub3.SendAsync(Publish("full/c", big, QualityOfService.AtLeastOnce, 4, retain: true), V311);
        var beforeClose = await pub3.ReadUntilClosedAsync(V311, Bound);
        Assert.DoesNotContain(beforeClose, p => p is PubAckPacket);

        // A persistent session cannot be created or resumed while its state cannot be written.
        await using (var refused5 = await RawClient.ConnectAsync(broker.EndPoint))
        {
            var connack = await refused5.HandshakeAsync(V500, "full-new5", 60, cleanStart: false, session);
            Assert.Equal((byte)ReasonCode.ServerUnavailable, connack.ReasonCode);
            Assert.False(connack.SessionPresent);
        }
        await using (var refused3 = await RawClient.ConnectAsync(broker.EndPoint))
        {
            var connack = await refused3.HandshakeAsync(V311, "full-new3", 60, cleanStart: false);
            Assert.Equal((byte)ConnectReturnCode.ServerUnavailable, connack.ReasonCode);
        }

        // Room again: the store's retry succeeds and replies are positive again.
        store.SetMaxPageCountForTest(1_000_000_000);
        Assert.True(SpinWait.SpinUntil(() => store.Health == StoreHealth.Healthy && store.PendingOperations == 0, Bound), "the store did not recover");
        await pub5.SendAsync(Publish("full/d", "small", QualityOfService.AtLeastOnce, 5, retain: true), V500);
        // No subscriber (full/# was refused above): 0x10, a success code.
        Assert.Equal(ReasonCode.NoMatchingSubscribers, (await pub5.ExpectAsync<PubAckPacket>(V500)).ReasonCode);
        await sub5.SendAsync(new SubscribePacket { PacketId = 6, Subscriptions = [new TopicSubscription("other/#", QualityOfService.AtLeastOnce)] }, V500);
        var recovered = await sub5.ExpectAsync<SubAckPacket>(V500);
        Assert.Equal([(byte)1], recovered.ReasonCodes);
        Assert.Contains(broker.Logs.Errors, e => e.Contains("[42]", StringComparison.Ordinal) && e.Contains("DiskFull", StringComparison.Ordinal));
    }
}
