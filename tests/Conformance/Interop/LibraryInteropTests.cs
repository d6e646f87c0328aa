using System.Globalization;
using System.Text.RegularExpressions;
using Conformance.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;
using Xunit;
using static Conformance.Infrastructure.TestClients;

namespace Conformance.Interop;

/// <summary>What every interop test class knows: its library, protocol version and how to start the library.</summary>
public abstract class InteropTestBase(InteropLibrary library, int protocolLevel)
{
    protected static readonly TimeSpan WillWait = TimeSpan.FromSeconds(10);

    protected InteropLibrary Library => library;
    protected int ProtocolLevel => protocolLevel;
    protected MQTTnet.Formatter.MqttProtocolVersion NetVersion => protocolLevel == 5 ? V500 : V311;

    /// <summary>A client id no other test of this run uses.</summary>
    protected string Id(string what) => $"{library}-{protocolLevel}-{what}".ToLowerInvariant();

    private protected InteropClient StartClient(BrokerInstance broker) => InteropClient.Start(library, broker, protocolLevel);
}

/// <summary>
/// The broker with the client libraries fleets use, driven through their own scripts (<see cref="InteropClient"/>):
/// MQTT.js and paho-mqtt, each at both protocol versions, with MQTTnet on the other end where one is needed.
/// Written once here; one concrete class per library and version, so they run in parallel.
/// </summary>
public abstract class LibraryInteropTests(InteropLibrary library, int protocolLevel) : InteropTestBase(library, protocolLevel)
{
    [Fact]
    public async Task QoS_0_1_2_round_trip_with_a_256_KB_binary_payload()
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var lib = StartClient(broker);
        await lib.ConnectAsync("echo", Id("echo"));
        await lib.SubscribeAsync("echo", "rt/in/#", 2);
        var (mqttnet, replies) = await SubscriberAsync(broker, NetVersion, "rt/out/#");
        using var _ = mqttnet;
        var random = new Random(ProtocolLevel * 10 + (int)Library);
        for (int qos = 0; qos <= 2; qos++)
        {
            byte[] payload = new byte[256 * 1024];
            random.NextBytes(payload);
            await mqttnet.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"rt/in/{qos}").WithPayload(payload)
                .WithQualityOfServiceLevel((MqttQualityOfServiceLevel)qos).Build());
            var received = await lib.NextMessageAsync();
            Assert.Equal(($"rt/in/{qos}", qos), (received.Topic, received.QoS));
            Assert.True(payload.AsSpan().SequenceEqual(received.Payload), $"QoS {qos}: the library received other bytes");
            // And back through the broker from the library.
            await lib.PublishAsync("echo", $"rt/out/{qos}", received.Payload, qos);
            var reply = await replies.NextAsync();
            Assert.Equal(($"rt/out/{qos}", (MqttQualityOfServiceLevel)qos), (reply.Topic, reply.QualityOfServiceLevel));
            Assert.True(payload.AsSpan().SequenceEqual(System.Buffers.BuffersExtensions.ToArray(reply.Payload)), $"QoS {qos}: MQTTnet received other bytes");
        }
    }

    [Fact]
    public async Task Retained_message_is_set_and_cleared()
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var lib = StartClient(broker);
        await lib.ConnectAsync("setter", Id("setter"));
        await lib.PublishAsync("setter", "ret/a", "on"u8.ToArray(), qos: 1, retain: true);
        await lib.ConnectAsync("early", Id("early"));
        await lib.SubscribeAsync("early", "ret/#", 1);
        var retained = await lib.NextMessageAsync();
        Assert.Equal(("early", "ret/a", "on", true), (retained.Client, retained.Topic, System.Text.Encoding.UTF8.GetString(retained.Payload), retained.Retain));
        await lib.DisconnectAsync("early");

        // An empty retained payload clears it: a later subscriber gets nothing before a (live) marker.
        await lib.PublishAsync("setter", "ret/a", [], qos: 1, retain: true);
        await lib.ConnectAsync("late", Id("late"));
        await lib.SubscribeAsync("late", "ret/#", 1);
        using var publisher = await MqttClients.ConnectAsync(broker, NetVersion);
        await publisher.PublishAsync("ret/marker", "marker", MqttQualityOfServiceLevel.AtLeastOnce);
        var next = await lib.NextMessageAsync();
        Assert.Equal(("late", "ret/marker", false), (next.Client, next.Topic, next.Retain));
    }

    [Fact]
    public async Task Will_of_a_killed_client_is_published()
    {
        await using var broker = await BrokerInstance.StartAsync();
        var (subscriber, messages) = await SubscriberAsync(broker, NetVersion, "will/#");
        using var _ = subscriber;
        await using var lib = StartClient(broker);
        await lib.ConnectAsync("device", Id("killed"), will: ("will/" + Id("killed"), "gone"u8.ToArray(), 1, false));
        await lib.KillAsync();
        var will = await messages.NextAsync(WillWait);
        Assert.Equal(("will/" + Id("killed"), "gone"), (will.Topic, will.ConvertPayloadToString()));
    }

    [Fact]
    public async Task Persistent_session_receives_the_QoS_1_messages_sent_while_it_was_offline()
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var lib = StartClient(broker);
        string clientId = Id("persistent");
        Assert.False(await lib.ConnectAsync("device", clientId, clean: false, sessionExpiry: 300));
        await lib.SubscribeAsync("device", "offline/#", 1);
        await lib.DisconnectAsync("device");
        await broker.Logs.WaitForAsync(3, $"Client {clientId} disconnected", TimeSpan.FromSeconds(5));

        using (var publisher = await MqttClients.ConnectAsync(broker, NetVersion))
        {
            for (int i = 0; i < 3; i++)
            {
                await publisher.PublishAsync($"offline/{i}", i.ToString(CultureInfo.InvariantCulture), MqttQualityOfServiceLevel.AtLeastOnce);
            }
        }
        Assert.True(await lib.ConnectAsync("device", clientId, clean: false, sessionExpiry: 300), "session present");
        for (int i = 0; i < 3; i++)
        {
            var m = await lib.NextMessageAsync();
            Assert.Equal(($"offline/{i}", i.ToString(CultureInfo.InvariantCulture), 1), (m.Topic, System.Text.Encoding.UTF8.GetString(m.Payload), m.QoS));
        }
    }

    [Fact]
    public async Task Shared_subscription_splits_the_messages_between_the_members()
    {
        const int count = 10;
        await using var broker = await BrokerInstance.StartAsync();
        await using var lib = StartClient(broker);
        foreach (var member in new[] { "m1", "m2" })
        {
            await lib.ConnectAsync(member, Id(member));
            await lib.SubscribeAsync(member, "$share/workers/split/#", 1);
        }
        using var publisher = await MqttClients.ConnectAsync(broker, NetVersion);
        for (int i = 0; i < count; i++)
        {
            await publisher.PublishAsync($"split/{i}", i.ToString(CultureInfo.InvariantCulture), MqttQualityOfServiceLevel.AtLeastOnce);
        }
        var received = new List<InteropMessage>();
        for (int i = 0; i < count; i++)
        {
            received.Add(await lib.NextMessageAsync());
        }
        // Each message once, to one member; round robin gives each member half.
        Assert.Equal(Enumerable.Range(0, count).Select(i => $"split/{i}"), received.Select(m => m.Topic).Order(StringComparer.Ordinal));
        Assert.Equal(count / 2, received.Count(m => m.Client == "m1"));
        Assert.Equal(count / 2, received.Count(m => m.Client == "m2"));
    }
}

/// <summary>
/// Keep-alive with a real library on a real clock (K = 2 s): a class of its own per library and version, so its
/// seconds of waiting overlap the other interop tests instead of following them.
/// </summary>
public abstract class LibraryKeepAliveInteropTests(InteropLibrary library, int protocolLevel) : InteropTestBase(library, protocolLevel)
{
    private const int KeepAliveTimeoutEvent = 4;

    [Fact]
    public async Task Keep_alive_is_kept_by_the_library_and_a_frozen_client_is_closed_at_1_5_K_with_its_will()
    {
        const int keepAlive = 2;
        await using var broker = await BrokerInstance.StartAsync();
        using var pings = new PacketCounter(broker, Broker.Protocol.PacketType.PingReq);
        var (subscriber, messages) = await SubscriberAsync(broker, NetVersion, "will/#");
        using var _ = subscriber;
        await using var lib = StartClient(broker);
        string clientId = Id("frozen");
        await lib.ConnectAsync("device", clientId, keepAlive: keepAlive, will: ("will/" + clientId, "frozen"u8.ToArray(), 1, false));

        // Two PINGREQs from the idle library (no other client here pings within seconds): it kept the connection
        // for about 2 K, past the 1.5 K limit.
        await pings.WaitForAsync(2, TimeSpan.FromSeconds(8 * keepAlive));
        Assert.False(lib.AnyClosed, "the library's connection closed while it was pinging");
        await lib.PublishAsync("device", "alive", "still here"u8.ToArray(), 1);

        // Frozen (SIGSTOP): sockets stay open, nothing is sent. The broker closes at 1.5 K of silence and publishes the will.
        lib.Freeze();
        var will = await messages.NextAsync(WillWait);
        Assert.Equal(("will/" + clientId, "frozen"), (will.Topic, will.ConvertPayloadToString()));
        string line = Assert.Single(broker.Logs.Messages(KeepAliveTimeoutEvent), m => m.Contains(clientId, StringComparison.Ordinal));
        var match = Regex.Match(line, @"no packet for ([0-9.]+)s \(limit ([0-9.]+)s\)");
        Assert.True(match.Success, line);
        double silent = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        double limit = double.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture);
        Assert.Equal(1.5 * keepAlive, limit, 3);
        // At the limit, not before; late by at most the wheel's tick plus scheduling on a busy machine.
        Assert.InRange(silent, limit, limit + 1.0);
    }
}

/// <summary>The 5.0 scenarios on top of those for both versions.</summary>
public abstract class LibraryInteropV5Tests(InteropLibrary library) : LibraryInteropTests(library, 5)
{
    [Fact]
    public async Task Request_response_carries_the_response_topic_and_correlation_data_both_ways()
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var lib = StartClient(broker);
        await lib.ConnectAsync("responder", Id("responder"));
        await lib.SubscribeAsync("responder", "svc/request", 1);
        string replyTopic = "svc/reply/" + Guid.NewGuid().ToString("N");
        var (requester, replies) = await SubscriberAsync(broker, V500, replyTopic);
        using var _ = requester;
        byte[] correlation = [0x00, 0xFF, 0x10, 0x42];
        await requester.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("svc/request").WithPayload("ping")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithResponseTopic(replyTopic).WithCorrelationData(correlation).Build());

        var request = await lib.NextMessageAsync();
        Assert.Equal(replyTopic, request.ResponseTopic);
        Assert.Equal(correlation, request.CorrelationData);
        // The library answers as a responder does: to the response topic, with the correlation data it was given.
        await lib.PublishAsync("responder", request.ResponseTopic!, "pong"u8.ToArray(), 1, correlationData: request.CorrelationData);
        var reply = await replies.NextAsync();
        Assert.Equal("pong", reply.ConvertPayloadToString());
        Assert.Equal(correlation, reply.CorrelationData);
    }

    [Fact]
    public async Task User_properties_and_message_expiry_pass_through_both_ways()
    {
        (string, string)[] properties = [("b", "2"), ("a", "1"), ("c", "3")];
        await using var broker = await BrokerInstance.StartAsync();
        await using var lib = StartClient(broker);
        await lib.ConnectAsync("device", Id("props"));
        await lib.SubscribeAsync("device", "props/to-library", 1);
        var (mqttnet, messages) = await SubscriberAsync(broker, V500, "props/to-mqttnet");
        using var _ = mqttnet;

        var builder = new MqttApplicationMessageBuilder().WithTopic("props/to-library").WithPayload("x")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithMessageExpiryInterval(60);
        foreach (var (k, v) in properties)
        {
            builder.WithUserProperty(k, v);
        }
        await mqttnet.PublishAsync(builder.Build());
        var atLibrary = await lib.NextMessageAsync();
        Assert.Equal(properties, atLibrary.UserProperties);
        Assert.InRange(atLibrary.MessageExpiry ?? 0, 1u, 60u);

        await lib.PublishAsync("device", "props/to-mqttnet", "y"u8.ToArray(), 1, userProperties: properties, messageExpiry: 30);
        var atMqttnet = await messages.NextAsync();
        Assert.Equal(properties, atMqttnet.UserProperties.Select(p => (p.Name, p.Value)));
        Assert.InRange(atMqttnet.MessageExpiryInterval, 1u, 30u);
    }
}

public sealed class MqttJsV311InteropTests() : LibraryInteropTests(InteropLibrary.MqttJs, 4);

public sealed class MqttJsV500InteropTests() : LibraryInteropV5Tests(InteropLibrary.MqttJs);

public sealed class PahoV311InteropTests() : LibraryInteropTests(InteropLibrary.Paho, 4);

public sealed class PahoV500InteropTests() : LibraryInteropV5Tests(InteropLibrary.Paho);

public sealed class MqttJsV311KeepAliveInteropTests() : LibraryKeepAliveInteropTests(InteropLibrary.MqttJs, 4);

public sealed class MqttJsV500KeepAliveInteropTests() : LibraryKeepAliveInteropTests(InteropLibrary.MqttJs, 5);

public sealed class PahoV311KeepAliveInteropTests() : LibraryKeepAliveInteropTests(InteropLibrary.Paho, 4);

public sealed class PahoV500KeepAliveInteropTests() : LibraryKeepAliveInteropTests(InteropLibrary.Paho, 5);
