using System.Text;
using Broker.Protocol;
using Broker.Security;
using Broker.Tests.Security;
using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Conformance.Security;

/// <summary>A broker with a password file (and an ACL file) written for the test, and clients that log in to it.</summary>
internal static class SecurityKit
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    /// <summary>alice and bob, hashed with few iterations (the count is the file's): a first login still hashes, off the socket thread.</summary>
    public static string WritePasswordFile(TempDirectory dir, params (string User, string Password)[] users)
    {
        if (users.Length == 0)
        {
            users = [("alice", "alice-pw"), ("bob", "bob-pw")];
        }
        return dir.Write("passwd", string.Concat(users.Select(u => $"{u.User}:{PasswordHash.Create(Encoding.UTF8.GetBytes(u.Password), 1000).Encode()}\n")));
    }

    public static Task<BrokerInstance> StartAsync(TempDirectory dir, string? acl = null, IDictionary<string, string?>? settings = null,
        Action<IServiceCollection>? services = null)
    {
        var all = new Dictionary<string, string?>
        {
            ["Broker:Auth:PasswordFile"] = WritePasswordFile(dir),
        };
        if (acl is not null)
        {
            all["Broker:Auth:AclFile"] = dir.Write("acl", acl);
        }
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }
        return BrokerInstance.StartAsync(all, services);
    }

    /// <summary>Sends CONNECT with the credentials given and returns the client with the CONNACK (null: closed without one).</summary>
    public static async Task<(RawClient Client, ConnAckPacket? Ack)> ConnectAsync(BrokerInstance broker, MqttProtocolVersion version, string clientId,
        string? user = null, string? password = null, WillMessage? will = null, bool cleanStart = true, MqttProperties? properties = null)
    {
        var client = await RawClient.ConnectAsync(broker);
        await client.SendAsync(Connect(version, clientId, user, password, will, cleanStart, properties), version);
        var packet = await client.ReceiveAsync(version, Wait);
        return (client, packet as ConnAckPacket);
    }

    public static ConnectPacket Connect(MqttProtocolVersion version, string clientId, string? user = null, string? password = null,
        WillMessage? will = null, bool cleanStart = true, MqttProperties? properties = null) => new()
        {
            ProtocolVersion = version,
            ClientId = clientId,
            KeepAliveSeconds = 60,
            CleanStart = cleanStart,
            UserName = user,
            Password = password is null ? null : Encoding.UTF8.GetBytes(password),
            Will = will,
            Properties = properties,
        };

    /// <summary>A client that logged in (CONNACK 0); fails the test otherwise.</summary>
    public static async Task<RawClient> LoggedInAsync(BrokerInstance broker, MqttProtocolVersion version, string clientId, string? user, string? password,
        WillMessage? will = null, bool cleanStart = true, MqttProperties? properties = null)
    {
        var (client, ack) = await ConnectAsync(broker, version, clientId, user, password, will, cleanStart, properties);
        Assert.NotNull(ack);
        Assert.Equal(0, ack.ReasonCode);
        return client;
    }

    public static byte Code(MqttProtocolVersion version, ConnectReturnCode v311, ReasonCode v5) => version == MqttProtocolVersion.V500 ? (byte)v5 : (byte)v311;

    /// <summary>Subscribes and returns the SUBACK's codes.</summary>
    public static async Task<IReadOnlyList<byte>> SubscribeAsync(RawClient client, MqttProtocolVersion version, ushort packetId, params (string Filter, QualityOfService QoS)[] filters)
    {
        await client.SendAsync(new SubscribePacket
        {
            PacketId = packetId,
            Subscriptions = [.. filters.Select(f => new TopicSubscription(f.Filter, f.QoS))],
        }, version);
        var ack = await client.ExpectAsync<SubAckPacket>(version, Wait);
        Assert.Equal(packetId, ack.PacketId);
        return ack.ReasonCodes;
    }

    public static Task PublishAsync(RawClient client, MqttProtocolVersion version, string topic, string payload, QualityOfService qos = QualityOfService.AtMostOnce,
        ushort packetId = 0, bool retain = false) =>
        client.SendAsync(new PublishPacket { Topic = topic, Payload = Encoding.UTF8.GetBytes(payload), QoS = qos, PacketId = packetId, Retain = retain }, version);

    /// <summary>The next PUBLISH the client receives (acknowledged when QoS 1).</summary>
    public static async Task<PublishPacket> NextPublishAsync(RawClient client, MqttProtocolVersion version)
    {
        while (true)
        {
            var packet = await client.ReceiveAsync(version, Wait);
            if (packet is PublishPacket publish)
            {
                if (publish.QoS == QualityOfService.AtLeastOnce)
                {
                    await client.SendAsync(new PubAckPacket { PacketId = publish.PacketId }, version);
                }
                return publish;
            }
            Assert.True(packet is not null, "the broker closed the connection");
        }
    }

    public static string Text(PublishPacket publish) => Encoding.UTF8.GetString(publish.Payload.Span);
}
