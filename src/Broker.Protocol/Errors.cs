namespace Broker.Protocol;

/// <summary>
/// Every way the codec rejects input, with the reason code it maps to. Kept in one place so the
/// mapping can be reviewed against the specs (documented in docs/codec.md).
/// </summary>
public static class Errors
{
    private static MqttDecodeError Malformed(string m) => new(ReasonCode.MalformedPacket, m);
    private static MqttDecodeError Protocol(string m) => new(ReasonCode.ProtocolError, m);

    // Framing
    public static readonly MqttDecodeError VbiTooLong = Malformed("variable byte integer longer than 4 bytes [MQTT-1.5.5]");
    public static readonly MqttDecodeError VbiNotMinimal = Malformed("variable byte integer not in minimal form [MQTT-1.5.5-1]");
    public static readonly MqttDecodeError PacketTooLarge = new(ReasonCode.PacketTooLarge, "packet larger than the maximum packet size");
    public static readonly MqttDecodeError ReservedPacketType = Malformed("reserved packet type 0");
    public static readonly MqttDecodeError AuthInV311 = Malformed("packet type 15 (AUTH) is reserved in MQTT 3.1.1");
    public static readonly MqttDecodeError InvalidFixedHeaderFlags = Malformed("invalid fixed header flags for this packet type [MQTT-2.1.3-1]");
    public static readonly MqttDecodeError PublishQoS3 = Malformed("PUBLISH with QoS 3 [MQTT-3.3.1-4]");
    public static readonly MqttDecodeError PublishDupWithQoS0 = Malformed("PUBLISH with DUP set and QoS 0 [MQTT-3.3.1-2]");
    public static readonly MqttDecodeError UnexpectedPacketForServer = Protocol("packet type a client must not send to a server");

    // Lengths
    public static readonly MqttDecodeError Truncated = Malformed("a field runs past the remaining length");
    public static readonly MqttDecodeError TrailingBytes = Malformed("bytes left over after the last field of the packet");
    public static readonly MqttDecodeError NonZeroRemainingLength = Malformed("remaining length must be 0 for this packet type");

    // Data representation
    public static readonly MqttDecodeError InvalidUtf8 = Malformed("string is not well-formed UTF-8 [MQTT-1.5.4-1]");
    public static readonly MqttDecodeError NullCharacter = Malformed("string contains U+0000 [MQTT-1.5.4-2]");

    // Properties
    public static readonly MqttDecodeError UnknownProperty = Malformed("unknown property identifier");
    public static readonly MqttDecodeError PropertyNotAllowed = Malformed("property not allowed on this packet");
    public static readonly MqttDecodeError DuplicateProperty = Protocol("property that may appear once appears more than once");
    public static readonly MqttDecodeError InvalidPropertyValue = Protocol("property has a value the spec forbids");
    public static readonly MqttDecodeError PropertyLengthMismatch = Malformed("property length does not match the properties");
    public static readonly MqttDecodeError ZeroSubscriptionIdentifier = Protocol("subscription identifier 0 [MQTT-3.8.2.1.2]");
    public static readonly MqttDecodeError ZeroReceiveMaximum = Protocol("receive maximum 0 [MQTT-3.1.2.11.3]");
    public static readonly MqttDecodeError ZeroMaximumPacketSize = Protocol("maximum packet size 0 [MQTT-3.1.2.11.4]");
    public static readonly MqttDecodeError ZeroTopicAlias = new(ReasonCode.TopicAliasInvalid, "topic alias 0 [MQTT-3.3.2-8]");

    // CONNECT
    public static readonly MqttDecodeError InvalidProtocolName = new(ReasonCode.UnsupportedProtocolVersion, "protocol name is not \"MQTT\" [MQTT-3.1.2-1]");
    public static readonly MqttDecodeError UnsupportedProtocolLevel = new(ReasonCode.UnsupportedProtocolVersion, "unsupported protocol level (4 and 5 are supported) [MQTT-3.1.2-2]");
    public static readonly MqttDecodeError ConnectReservedFlag = Malformed("CONNECT reserved flag is set [MQTT-3.1.2-3]");
    public static readonly MqttDecodeError WillFlagsWithoutWill = Malformed("will QoS or will retain set without the will flag [MQTT-3.1.2-11]");
    public static readonly MqttDecodeError WillQoS3 = Malformed("will QoS 3 [MQTT-3.1.2-14]");
    public static readonly MqttDecodeError PasswordWithoutUserName = Malformed("password flag set without the user name flag [MQTT-3.1.2-22]");

    // PUBLISH / acknowledgements
    public static readonly MqttDecodeError ZeroPacketIdentifier = Protocol("packet identifier 0 where a non-zero one is required [MQTT-2.2.1-3]");
    public static readonly MqttDecodeError TopicNameWithWildcard = new(ReasonCode.TopicNameInvalid, "topic name contains a wildcard [MQTT-3.3.2-2]");
    public static readonly MqttDecodeError EmptyTopicName = new(ReasonCode.TopicNameInvalid, "empty topic name without a topic alias [MQTT-4.7.3-1]");
    public static readonly MqttDecodeError PayloadNotUtf8 = new(ReasonCode.PayloadFormatInvalid, "payload format indicator says UTF-8 but the payload is not [MQTT-3.3.2-4]");

    // SUBSCRIBE / UNSUBSCRIBE
    public static readonly MqttDecodeError NoTopicFilters = Protocol("SUBSCRIBE or UNSUBSCRIBE without a topic filter [MQTT-3.8.3-3]");
    public static readonly MqttDecodeError InvalidTopicFilter = new(ReasonCode.TopicFilterInvalid, "topic filter with a misplaced wildcard or empty [MQTT-4.7.1]");
    public static readonly MqttDecodeError SubscriptionQoS3 = Malformed("subscription requests QoS 3 [MQTT-3.8.3-4]");
    public static readonly MqttDecodeError SubscriptionReservedBits = Malformed("reserved bits of the subscription options are set [MQTT-3.8.3-5]");
    public static readonly MqttDecodeError RetainHandling3 = Protocol("retain handling 3 [MQTT-3.8.3.1]");
    public static readonly MqttDecodeError SharedSubscriptionNoLocal = Protocol("No Local on a shared subscription [MQTT-3.8.3-4]");

    // DISCONNECT / AUTH / acks
    public static readonly MqttDecodeError InvalidReasonCode = Malformed("reason code not allowed on this packet");
}
