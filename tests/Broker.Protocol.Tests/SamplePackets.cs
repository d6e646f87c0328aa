namespace Broker.Protocol.Tests;

/// <summary>
/// One packet of every type per version; in 5.0 each carries every property its packet allows
/// (table of 2.2.2.2), so that round trips cover every property identifier.
/// </summary>
internal static class SamplePackets
{
    private static List<KeyValuePair<string, string>> Users() =>
        [new("region", "eu"), new("region", "us"), new("empty", ""), new("ключ", "值")];

    public static MqttProperties ConnectProperties() => new()
    {
        SessionExpiryInterval = 0xFFFFFFFF,
        AuthenticationMethod = "SCRAM-SHA-1",
        AuthenticationData = [1, 2, 3, 0],
        RequestProblemInformation = 0,
        RequestResponseInformation = 1,
        ReceiveMaximum = 20,
        TopicAliasMaximum = 10,
        MaximumPacketSize = 1024 * 1024,
        UserProperties = Users(),
    };

    public static MqttProperties WillProperties() => new()
    {
        PayloadFormatIndicator = 1,
        MessageExpiryInterval = 120,
        ContentType = "text/plain",
        ResponseTopic = "replies/will",
        CorrelationData = [0xDE, 0xAD],
        WillDelayInterval = 30,
        UserProperties = Users(),
    };

    public static MqttProperties ConnAckProperties() => new()
    {
        SessionExpiryInterval = 300,
        AssignedClientIdentifier = "auto-1234",
        ServerKeepAlive = 45,
        AuthenticationMethod = "SCRAM-SHA-1",
        AuthenticationData = [9, 8, 7],
        ResponseInformation = "resp/",
        ServerReference = "other.example:1883",
        ReasonString = "welcome",
        ReceiveMaximum = 100,
        TopicAliasMaximum = 16,
        MaximumQoS = 1,
        RetainAvailable = 0,
        MaximumPacketSize = 65_536,
        WildcardSubscriptionAvailable = 1,
        SubscriptionIdentifierAvailable = 0,
        SharedSubscriptionAvailable = 1,
        UserProperties = Users(),
    };

    public static MqttProperties PublishProperties() => new()
    {
        PayloadFormatIndicator = 1,
        MessageExpiryInterval = 60,
        ContentType = "application/json",
        ResponseTopic = "replies/1",
        CorrelationData = [1, 2, 3, 4],
        SubscriptionIdentifiers = [1, 127, 128, 268_435_455],
        TopicAlias = 3,
        UserProperties = Users(),
    };

    private static MqttProperties ReasonAndUsers(string reason) => new() { ReasonString = reason, UserProperties = Users() };

    public static IEnumerable<MqttPacket> All(MqttProtocolVersion version)
    {
        bool v5 = version == MqttProtocolVersion.V500;
        yield return new ConnectPacket
        {
            ProtocolVersion = version,
            CleanStart = true,
            KeepAliveSeconds = 65_535,
            ClientId = "client-1",
            UserName = "user",
            Password = [0, 1, 2, 255],
            Properties = v5 ? ConnectProperties() : null,
            Will = new WillMessage
            {
                Topic = "clients/1/status",
                Payload = "offline"u8.ToArray(),
                QoS = QualityOfService.ExactlyOnce,
                Retain = true,
                Properties = v5 ? WillProperties() : null,
            },
        };
        // Will at QoS 1 without retain, user name without password, empty client id, no clean start.
        yield return new ConnectPacket
        {
            ProtocolVersion = version,
            KeepAliveSeconds = 0,
            ClientId = "",
            UserName = "only-user",
            Will = new WillMessage { Topic = "w", Payload = [], QoS = QualityOfService.AtLeastOnce },
        };
        yield return new ConnectPacket { ProtocolVersion = version, ClientId = "bare", KeepAliveSeconds = 60 };
        yield return new ConnAckPacket { SessionPresent = true, ReasonCode = 0, Properties = v5 ? ConnAckProperties() : null };
        yield return new ConnAckPacket { SessionPresent = false, ReasonCode = v5 ? (byte)ReasonCode.BadUserNameOrPassword : (byte)ConnectReturnCode.BadUserNameOrPassword };
        yield return new PublishPacket { Topic = "a/b", Payload = "hello"u8.ToArray() };
        yield return new PublishPacket
        {
            Topic = "sensors/température/1",
            Payload = "{\"t\":21.5}"u8.ToArray(),
            QoS = QualityOfService.AtLeastOnce,
            Retain = true,
            Dup = true,
            PacketId = 1,
            Properties = v5 ? PublishProperties() : null,
        };
        yield return new PublishPacket { Topic = "x", Payload = new byte[300], QoS = QualityOfService.ExactlyOnce, PacketId = 65_535 };
        yield return new PublishPacket { Topic = "$SYS/empty-payload", QoS = QualityOfService.AtMostOnce };
        foreach (var ack in PublishResponses(v5))
        {
            yield return ack;
        }
        yield return new SubscribePacket
        {
            PacketId = 7,
            Properties = v5 ? new MqttProperties { SubscriptionIdentifiers = [268_435_455], UserProperties = Users() } : null,
            Subscriptions =
            [
                new TopicSubscription("a/+/c", QualityOfService.AtMostOnce),
                new TopicSubscription("#", QualityOfService.AtLeastOnce, NoLocal: v5, RetainAsPublished: false, RetainHandling: v5 ? RetainHandling.SendAtSubscribeIfNew : RetainHandling.SendAtSubscribe),
                new TopicSubscription("+", QualityOfService.ExactlyOnce, NoLocal: false, RetainAsPublished: v5, RetainHandling: v5 ? RetainHandling.DoNotSend : RetainHandling.SendAtSubscribe),
                new TopicSubscription("$share/group/sport/+/scores", QualityOfService.AtLeastOnce),
                new TopicSubscription("/", QualityOfService.AtMostOnce),
            ],
        };
        yield return new SubAckPacket { PacketId = 7, ReasonCodes = [0, 1, 2, 0x80], Properties = v5 ? ReasonAndUsers("partly granted") : null };
        yield return new UnsubscribePacket
        {
            PacketId = 8,
            TopicFilters = ["a/+/c", "#", "$share/g/x"],
            Properties = v5 ? new MqttProperties { UserProperties = Users() } : null,
        };
        yield return new UnsubAckPacket
        {
            PacketId = 8,
            ReasonCodes = v5 ? [0x00, 0x11, 0x87] : [],
            Properties = v5 ? ReasonAndUsers("done") : null,
        };
        yield return PingReqPacket.Instance;
        yield return PingRespPacket.Instance;
        yield return new DisconnectPacket();
        if (v5)
        {
            yield return new DisconnectPacket { ReasonCode = ReasonCode.ServerShuttingDown };
            yield return new DisconnectPacket
            {
                ReasonCode = ReasonCode.UseAnotherServer,
                Properties = new MqttProperties
                {
                    SessionExpiryInterval = 0,
                    ServerReference = "b.example",
                    ReasonString = "moving",
                    UserProperties = Users(),
                },
            };
            yield return new AuthPacket();
            yield return new AuthPacket { ReasonCode = ReasonCode.ReAuthenticate };
            yield return new AuthPacket
            {
                ReasonCode = ReasonCode.ContinueAuthentication,
                Properties = new MqttProperties
                {
                    AuthenticationMethod = "SCRAM-SHA-1",
                    AuthenticationData = [1, 2],
                    ReasonString = "next step",
                    UserProperties = Users(),
                },
            };
        }
    }

    private static IEnumerable<PublishResponsePacket> PublishResponses(bool v5)
    {
        yield return new PubAckPacket { PacketId = 1 };
        yield return new PubRecPacket { PacketId = 2 };
        yield return new PubRelPacket { PacketId = 3 };
        yield return new PubCompPacket { PacketId = 65_535 };
        if (v5)
        {
            yield return new PubAckPacket { PacketId = 4, ReasonCode = ReasonCode.NoMatchingSubscribers };
            yield return new PubAckPacket { PacketId = 5, ReasonCode = ReasonCode.QuotaExceeded, Properties = ReasonAndUsers("quota") };
            yield return new PubRecPacket { PacketId = 6, ReasonCode = ReasonCode.PayloadFormatInvalid, Properties = ReasonAndUsers("bad payload") };
            yield return new PubRelPacket { PacketId = 7, ReasonCode = ReasonCode.PacketIdentifierNotFound, Properties = ReasonAndUsers("unknown") };
            yield return new PubCompPacket { PacketId = 8, ReasonCode = ReasonCode.PacketIdentifierNotFound };
            yield return new PubCompPacket { PacketId = 9, ReasonCode = ReasonCode.Success, Properties = ReasonAndUsers("ok") };
        }
    }

    /// <summary>Every sample of both versions, encoded: the corpus for splitting and fuzzing.</summary>
    public static IEnumerable<(MqttProtocolVersion Version, MqttPacket Packet, byte[] Bytes)> Encoded()
    {
        foreach (var version in new[] { MqttProtocolVersion.V311, MqttProtocolVersion.V500 })
        {
            foreach (var packet in All(version))
            {
                yield return (version, packet, Codec.Encode(packet, version));
            }
        }
    }
}
