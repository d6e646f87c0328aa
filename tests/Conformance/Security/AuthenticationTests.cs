using System.Net;
using System.Net.Sockets;
using Broker.Connections;
using Broker.Protocol;
using Broker.Security;
using Broker.Tests.Security;
using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Xunit;
using static Conformance.Security.SecurityKit;

namespace Conformance.Security;

/// <summary>
/// CONNECT through the authenticator (docs/security.md, "Authentication"): refusals with each version's codes, a
/// log line with address and client id and never the password, verification off the socket thread with the
/// client's next packets waiting for the verdict, the cache, the slow-down per address, and takeover by the same
/// user only.
/// </summary>
public sealed class AuthenticationTests : IDisposable
{
    private const int RefusedEvent = 1100;
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(MqttProtocolVersion.V311, "alice", "guess-Zq81", (byte)ConnectReturnCode.BadUserNameOrPassword)]
    [InlineData(MqttProtocolVersion.V500, "alice", "guess-Zq81", (byte)ReasonCode.BadUserNameOrPassword)]
    [InlineData(MqttProtocolVersion.V311, "mallory", "alice-pw", (byte)ConnectReturnCode.BadUserNameOrPassword)]
    [InlineData(MqttProtocolVersion.V500, "mallory", "alice-pw", (byte)ReasonCode.BadUserNameOrPassword)]
    [InlineData(MqttProtocolVersion.V311, "alice", null, (byte)ConnectReturnCode.BadUserNameOrPassword)]
    [InlineData(MqttProtocolVersion.V500, "alice", null, (byte)ReasonCode.BadUserNameOrPassword)]
    [InlineData(MqttProtocolVersion.V311, null, null, (byte)ConnectReturnCode.NotAuthorized)]
    [InlineData(MqttProtocolVersion.V500, null, null, (byte)ReasonCode.NotAuthorized)]
    public async Task Refused_CONNECT_gets_the_versions_code_and_a_log_line_without_the_password(MqttProtocolVersion version, string? user, string? password, byte expected)
    {
        await using var broker = await StartAsync(_dir, settings: new Dictionary<string, string?> { ["Broker:Auth:AllowAnonymous"] = "false" });

        var (client, ack) = await ConnectAsync(broker, version, "refused-1", user, password);
        await using var _ = client;

        Assert.NotNull(ack);
        Assert.Equal(expected, ack.ReasonCode);
        Assert.False(ack.SessionPresent);
        Assert.Null(await client.ReceiveAsync(version, Wait)); // and the connection is closed
        string line = await broker.Logs.WaitForAsync(RefusedEvent, "refused-1", Wait);
        Assert.Contains("127.0.0.1", line);
        Assert.DoesNotContain(broker.Logs.Entries, e => e.Message.Contains("alice-pw", StringComparison.Ordinal) || e.Message.Contains("guess-Zq81", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task The_right_password_is_accepted_and_packets_sent_behind_CONNECT_wait_for_the_verdict(MqttProtocolVersion version)
    {
        await using var broker = await StartAsync(_dir);
        await using var client = await RawClient.ConnectAsync(broker);

        // One write: CONNECT (whose password is hashed off the socket thread), SUBSCRIBE and PINGREQ behind it.
        var burst = new System.Buffers.ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(burst, Connect(version, "eager", "alice", "alice-pw"), version);
        MqttPacketWriter.Write(burst, new SubscribePacket { PacketId = 7, Subscriptions = [new TopicSubscription("a/#", QualityOfService.AtLeastOnce)] }, version);
        MqttPacketWriter.Write(burst, new PingReqPacket(), version);
        await client.Socket.SendAsync(burst.WrittenMemory, SocketFlags.None);

        Assert.Equal(0, (await client.ExpectAsync<ConnAckPacket>(version, Wait)).ReasonCode);
        Assert.Equal(7, (await client.ExpectAsync<SubAckPacket>(version, Wait)).PacketId);
        await client.ExpectAsync<PingRespPacket>(version, Wait);
        var connection = Assert.Single(broker.Services.GetRequiredService<ConnectionRegistry>().Snapshot());
        Assert.Equal("alice", connection.Facts!.UserName);
    }

    [Fact]
    public async Task A_second_login_with_the_same_password_is_answered_from_the_cache()
    {
        await using var broker = await StartAsync(_dir);
        long hashes = 0;
        var meter = broker.Services.GetRequiredService<SecurityMetrics>().Meter;
        using var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter, meter) && instrument.Name == "mqtt.auth.password_hashes")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref hashes, value));
        listener.Start();

        await (await LoggedInAsync(broker, MqttProtocolVersion.V500, "cached-1", "alice", "alice-pw")).DisposeAsync();
        Assert.Equal(1, Interlocked.Read(ref hashes));
        await using var second = await LoggedInAsync(broker, MqttProtocolVersion.V311, "cached-2", "alice", "alice-pw");
        await using var wrong = (await ConnectAsync(broker, MqttProtocolVersion.V311, "cached-3", "alice", "not-it")).Client;
        Assert.Equal(2, Interlocked.Read(ref hashes)); // the second login hashed nothing; the wrong password did
    }

    [Fact]
    public async Task Repeated_failures_from_one_address_are_slowed_down_before_they_are_verified()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var broker = await StartAsync(_dir, settings: new Dictionary<string, string?>
        {
            ["Broker:Auth:FailureDelayMilliseconds"] = "200",
        }, services: s => s.AddSingleton<TimeProvider>(time));
        var authenticator = broker.Services.GetRequiredService<ClientAuthenticator>();

        var (first, firstAck) = await ConnectAsync(broker, MqttProtocolVersion.V500, "guess-1", "alice", "guess");
        await using var _ = first;
        Assert.Equal((byte)ReasonCode.BadUserNameOrPassword, firstAck!.ReasonCode);
        Assert.Equal(TimeSpan.FromMilliseconds(200), authenticator.Throttle.DelayFor(IPAddress.Loopback));

        // The next attempt from 127.0.0.1 waits 200 ms before it is even hashed, even with the right password;
        // meanwhile its connection is held (not read), which is what a state check can see.
        await using var second = await RawClient.ConnectAsync(broker);
        await second.SendAsync(Connect(MqttProtocolVersion.V500, "guess-2", "alice", "alice-pw"), MqttProtocolVersion.V500);
        var registry = broker.Services.GetRequiredService<ConnectionRegistry>();
        await WaitUntilAsync(() => registry.Snapshot().Any(c => c.IsHeldBack), "the second attempt is not waiting");
        time.Advance(TimeSpan.FromMilliseconds(199));
        Assert.Contains(registry.Snapshot(), c => c.IsHeldBack);
        time.Advance(TimeSpan.FromMilliseconds(1));

        Assert.Equal(0, (await second.ExpectAsync<ConnAckPacket>(MqttProtocolVersion.V500, Wait)).ReasonCode);

        // On a fake clock the broker's shutdown would wait for lingering connections: close them first.
        await first.DisposeAsync();
        await second.DisposeAsync();
        await WaitUntilAsync(() => registry.Count == 0, "connections still open");
    }

    [Fact]
    public async Task A_client_gone_while_its_password_waits_is_cleaned_up_by_the_connect_deadline()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var broker = await StartAsync(_dir, settings: new Dictionary<string, string?>
        {
            ["Broker:Auth:FailureDelayMilliseconds"] = "60000",
            ["Broker:Auth:MaxFailureDelaySeconds"] = "60",
            ["Broker:KeepAlive:ConnectTimeoutSeconds"] = "5",
        }, services: s => s.AddSingleton<TimeProvider>(time));

        var (first, _) = await ConnectAsync(broker, MqttProtocolVersion.V311, "slow-1", "alice", "guess");
        await first.DisposeAsync();
        await using var held = await RawClient.ConnectAsync(broker);
        await held.SendAsync(Connect(MqttProtocolVersion.V311, "slow-2", "alice", "alice-pw"), MqttProtocolVersion.V311);
        var registry = broker.Services.GetRequiredService<ConnectionRegistry>();
        await WaitUntilAsync(() => registry.Snapshot().Any(c => c.IsHeldBack), "the attempt is not waiting");

        // The slow-down (60 s) is longer than the connect deadline (5 s): the deadline ends the connection, and with
        // it the wait for the verdict.
        for (int i = 0; i < 60 && registry.Count > 0; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
        Assert.Null(await held.ReceiveAsync(MqttProtocolVersion.V311, Wait));
        await broker.Logs.WaitForAsync(6, "no CONNECT within 5s", Wait);
        await WaitUntilAsync(() => registry.Count == 0, "the connection is still registered");
    }

    [Fact]
    public async Task Anonymous_clients_from_another_address_are_refused_by_default()
    {
        await using var broker = await BrokerInstance.StartAsync();
        var services = broker.Services.GetRequiredService<ConnectionServices>();

        // The stream seam lets the test present any peer address; the bytes still travel over loopback.
        foreach (var (address, expected) in new[] { ("192.0.2.10", (byte)ReasonCode.NotAuthorized), ("127.0.0.1", (byte)ReasonCode.Success) })
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(1);
            await using var client = RawClient.Wrap(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            await client.Socket.ConnectAsync(listener.LocalEndPoint!);
            var serverSide = await listener.AcceptAsync();
            new MqttConnection(new StreamTransport(new NetworkStream(serverSide, ownsSocket: true), serverSide,
                new IPEndPoint(IPAddress.Parse(address), 40000), SupportsZeroByteReads: true), services, "tcp").Start();

            await client.SendAsync(Connect(MqttProtocolVersion.V500, "from-" + address), MqttProtocolVersion.V500);
            Assert.Equal(expected, (await client.ExpectAsync<ConnAckPacket>(MqttProtocolVersion.V500, Wait)).ReasonCode);
        }
        Assert.Contains("192.0.2.10", await broker.Logs.WaitForAsync(RefusedEvent, "from-192.0.2.10", Wait));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Another_user_cannot_take_over_a_session_and_leaves_it_untouched(MqttProtocolVersion version)
    {
        await using var broker = await StartAsync(_dir);
        await using var alice = await LoggedInAsync(broker, version, "device-17", "alice", "alice-pw", cleanStart: false,
            properties: version == MqttProtocolVersion.V500 ? new MqttProperties { SessionExpiryInterval = 300 } : null);
        Assert.Equal([1], await SubscribeAsync(alice, version, 1, ("dev/17/#", QualityOfService.AtLeastOnce)));

        // bob knows the client id; with clean start he would also wipe the session.
        foreach (bool cleanStart in new[] { false, true })
        {
            var (bob, ack) = await ConnectAsync(broker, version, "device-17", "bob", "bob-pw", cleanStart: cleanStart);
            await using var _ = bob;
            Assert.Equal(Code(version, ConnectReturnCode.NotAuthorized, ReasonCode.NotAuthorized), ack!.ReasonCode);
        }
        // An anonymous client is another user too.
        var (anonymous, anonymousAck) = await ConnectAsync(broker, version, "device-17");
        await using var __ = anonymous;
        Assert.Equal(Code(version, ConnectReturnCode.NotAuthorized, ReasonCode.NotAuthorized), anonymousAck!.ReasonCode);
        Assert.Contains("belongs to another user", await broker.Logs.WaitForAsync(RefusedEvent, "device-17", Wait));

        // alice is still connected, subscribed, and gets what is published.
        await using var publisher = await LoggedInAsync(broker, version, "pub", "bob", "bob-pw");
        await PublishAsync(publisher, version, "dev/17/cmd", "on", QualityOfService.AtLeastOnce, 1);
        await publisher.ExpectAsync<PubAckPacket>(version, Wait);
        Assert.Equal(("dev/17/cmd", "on"), (await NextPublishAsync(alice, version)) is var m ? (m.Topic, Text(m)) : default);

        // alice herself takes it over from another connection, and finds her session.
        var (again, againAck) = await ConnectAsync(broker, version, "device-17", "alice", "alice-pw", cleanStart: false,
            properties: version == MqttProtocolVersion.V500 ? new MqttProperties { SessionExpiryInterval = 300 } : null);
        await using var ___ = again;
        Assert.Equal(0, againAck!.ReasonCode);
        Assert.True(againAck.SessionPresent);
    }

    [Fact]
    public async Task An_offline_session_is_kept_for_its_owner()
    {
        await using var broker = await StartAsync(_dir);
        var v5 = MqttProtocolVersion.V500;
        var expiry = new MqttProperties { SessionExpiryInterval = 300 };
        await (await LoggedInAsync(broker, v5, "parked", "alice", "alice-pw", cleanStart: false, properties: expiry)).DisposeAsync();
        await broker.Logs.WaitForAsync(3, "Client parked disconnected", Wait);

        var (bob, ack) = await ConnectAsync(broker, v5, "parked", "bob", "bob-pw", cleanStart: true, properties: expiry);
        await using var _ = bob;
        Assert.Equal((byte)ReasonCode.NotAuthorized, ack!.ReasonCode);

        var (alice, aliceAck) = await ConnectAsync(broker, v5, "parked", "alice", "alice-pw", cleanStart: false, properties: expiry);
        await using var __ = alice;
        Assert.True(aliceAck!.SessionPresent);
    }

    [Fact]
    public async Task With_TakeoverRequiresSameUser_false_any_client_takes_a_session_over_as_MQTT_says()
    {
        await using var broker = await StartAsync(_dir, settings: new Dictionary<string, string?> { ["Broker:Auth:TakeoverRequiresSameUser"] = "false" });
        await using var alice = await LoggedInAsync(broker, MqttProtocolVersion.V500, "shared-id", "alice", "alice-pw");
        await using var bob = await LoggedInAsync(broker, MqttProtocolVersion.V500, "shared-id", "bob", "bob-pw");
        // [MQTT-3.1.4-3] the existing connection is closed (5.0: DISCONNECT 0x8E first).
        Assert.Equal(ReasonCode.SessionTakenOver, (await alice.ExpectAsync<DisconnectPacket>(MqttProtocolVersion.V500, Wait)).ReasonCode);
    }

    private static Task WaitUntilAsync(Func<bool> condition, string failure) => Eventually.TrueAsync(condition, Wait, failure);
}
