using Broker.Protocol;
using Broker.Tests.Security;
using Conformance.Infrastructure;
using Conformance.Security;
using Xunit;

namespace Conformance.Persistence;

/// <summary>
/// The owner of a persistent session is part of what survives a restart: another user still cannot take the session
/// over (Broker:Auth:TakeoverRequiresSameUser), and the owner's ACL still filters what is delivered to it.
/// </summary>
public sealed class OwnerAcrossRestartTests : IDisposable
{
    private static readonly MqttProtocolVersion V500 = MqttProtocolVersion.V500;
    private readonly string _store = BrokerInstance.NewStoreDirectory();
    private readonly TempDirectory _dir = new();

    public void Dispose()
    {
        BrokerInstance.DeleteStoreDirectory(_store);
        _dir.Dispose();
    }

    private Task<BrokerInstance> StartAsync() => SecurityKit.StartAsync(_dir,
        acl: "user alice\ntopic readwrite alice/#\ntopic read public/#\nuser bob\ntopic readwrite #\n",
        settings: new Dictionary<string, string?> { ["Broker:Persistence:Path"] = _store });

    [Fact]
    public async Task After_a_restart_another_user_still_cannot_take_the_session_and_the_owners_ACL_still_filters_its_queue()
    {
        var persistent = new MqttProperties { SessionExpiryInterval = 3600 };
        await using (var broker = await StartAsync())
        {
            await using var alice = await SecurityKit.LoggedInAsync(broker, V500, "device-7", "alice", "alice-pw", properties: persistent);
            Assert.Equal([1, 1], await SecurityKit.SubscribeAsync(alice, V500, 1, ("alice/#", QualityOfService.AtLeastOnce), ("public/#", QualityOfService.AtLeastOnce)));
            await alice.SendAsync(new DisconnectPacket(), V500);
            await alice.ReadUntilClosedAsync(V500, SecurityKit.Wait);
        }

        await using (var broker = await StartAsync())
        {
            // Bob knows the client id; the restored session still belongs to alice.
            var (bob, bobAck) = await SecurityKit.ConnectAsync(broker, V500, "device-7", "bob", "bob-pw", cleanStart: false, properties: persistent);
            await using (bob)
            {
                Assert.Equal((byte)ReasonCode.NotAuthorized, bobAck?.ReasonCode);
            }

            await using var publisher = await SecurityKit.LoggedInAsync(broker, V500, "pub", "bob", "bob-pw");
            await publisher.SendAsync(new PublishPacket { Topic = "alice/state", QoS = QualityOfService.AtLeastOnce, PacketId = 1, Payload = "mine"u8.ToArray() }, V500);
            Assert.IsType<PubAckPacket>(await publisher.ReceiveAsync(V500, SecurityKit.Wait));

            await using var alice = await SecurityKit.LoggedInAsync(broker, V500, "device-7", "alice", "alice-pw", cleanStart: false, properties: persistent);
            var delivered = Assert.IsType<PublishPacket>(await alice.ReceiveAsync(V500, SecurityKit.Wait));
            Assert.Equal("alice/state", delivered.Topic);
        }
    }

    [Fact]
    public async Task A_session_from_a_store_that_did_not_record_owners_goes_to_the_first_client_that_resumes_it()
    {
        var persistent = new MqttProperties { SessionExpiryInterval = 3600 };
        await using (var broker = await StartAsync())
        {
            await using var alice = await SecurityKit.LoggedInAsync(broker, V500, "device-8", "alice", "alice-pw", properties: persistent);
            Assert.Equal([1], await SecurityKit.SubscribeAsync(alice, V500, 1, ("alice/#", QualityOfService.AtLeastOnce)));
            await alice.SendAsync(new DisconnectPacket(), V500);
            await alice.ReadUntilClosedAsync(V500, SecurityKit.Wait);
        }
        // What a broker of schema version 1 left: no owner column.
        using (var raw = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_store, Broker.Persistence.SqliteSchema.FileName)};Pooling=False"))
        {
            raw.Open();
            using var downgrade = new Microsoft.Data.Sqlite.SqliteCommand("ALTER TABLE session DROP COLUMN owner; PRAGMA user_version = 1", raw);
            downgrade.ExecuteNonQuery();
        }

        await using (var broker = await StartAsync())
        {
            // The session's owner is unknown: alice, who resumes it first, gets it (and owns it from now on) ...
            var (alice, aliceAck) = await SecurityKit.ConnectAsync(broker, V500, "device-8", "alice", "alice-pw", cleanStart: false, properties: persistent);
            await using (alice)
            {
                Assert.Equal(((byte)ReasonCode.Success, true), (aliceAck!.ReasonCode, aliceAck.SessionPresent));
                await alice.SendAsync(new DisconnectPacket(), V500);
                await alice.ReadUntilClosedAsync(V500, SecurityKit.Wait);
            }

            // ... so bob cannot take it over afterwards.
            var (bob, bobAck) = await SecurityKit.ConnectAsync(broker, V500, "device-8", "bob", "bob-pw", cleanStart: false, properties: persistent);
            await using (bob)
            {
                Assert.Equal((byte)ReasonCode.NotAuthorized, bobAck?.ReasonCode);
            }
        }
    }
}
