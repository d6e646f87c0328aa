using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace Broker.Protocol;

/// <summary>
/// Decodes packet bodies. Fields are parsed from a contiguous span: a single-segment body is used in
/// place; a body spread over segments is copied once into a pooled buffer (bounded by the maximum packet
/// size) and PUBLISH slices are then taken from the original sequence at the same offsets.
/// </summary>
public static class MqttPacketDecoder
{
    /// <summary>Decodes a PUBLISH without allocating (unless it carries 5.0 properties).</summary>
    public static bool TryDecodePublish(in MqttFrame frame, MqttProtocolVersion version, out PublishPacketView view, out MqttDecodeError error)
    {
        using var body = new ContiguousBody(frame);
        return TryDecodePublish(frame, body.Span, version, out view, out error);
    }

    private static bool TryDecodePublish(in MqttFrame frame, ReadOnlySpan<byte> span, MqttProtocolVersion version, out PublishPacketView view, out MqttDecodeError error)
    {
        view = default;
        var qos = (QualityOfService)((frame.Flags >> 1) & 0x03);
        var r = new SpanReader(span);
        if (!r.TryReadUtf8(out var topic, out int topicOffset))
        {
            error = r.Error;
            return false;
        }
        if (!TopicRules.IsValidTopicName(topic))
        {
            error = Errors.TopicNameWithWildcard;
            return false;
        }
        ushort packetId = 0;
        if (qos != QualityOfService.AtMostOnce)
        {
            if (!r.TryReadUInt16(out packetId))
            {
                error = r.Error;
                return false;
            }
            if (packetId == 0)
            {
                error = Errors.ZeroPacketIdentifier;
                return false;
            }
        }
        MqttProperties? properties = null;
        if (version == MqttProtocolVersion.V500 && !MqttPropertiesCodec.TryRead(ref r, PropertyContext.Publish, out properties))
        {
            error = r.Error;
            return false;
        }
        // [MQTT-4.7.3-1] a topic name is at least one character; 5.0 allows an empty one only with a Topic Alias.
        if (topic.IsEmpty && properties?.TopicAlias is null)
        {
            error = Errors.EmptyTopicName;
            return false;
        }
        int payloadOffset = r.Position;
        if (properties?.PayloadFormatIndicator == 1 && !Utf8.IsValid(span[payloadOffset..]))
        {
            error = Errors.PayloadNotUtf8;
            return false;
        }
        var body = frame.Body;
        view = new PublishPacketView(qos, (frame.Flags & 0x01) != 0, (frame.Flags & 0x08) != 0, packetId,
            body.Slice(topicOffset, topic.Length), body.Slice(payloadOffset), properties);
        error = default;
        return true;
    }

    /// <summary>
    /// Decodes PUBACK, PUBREC, PUBREL or PUBCOMP without creating a packet object (properties, when a 5.0
    /// peer sends any, are validated and then dropped: the broker has no use for a reason string here).
    /// </summary>
    public static bool TryDecodePublishResponse(in MqttFrame frame, MqttProtocolVersion version, out ushort packetId, out ReasonCode reasonCode, out MqttDecodeError error)
    {
        packetId = 0;
        reasonCode = ReasonCode.Success;
        if (frame.Type is not (PacketType.PubAck or PacketType.PubRec or PacketType.PubRel or PacketType.PubComp))
        {
            error = Errors.UnexpectedPacketForServer;
            return false;
        }
        using var body = new ContiguousBody(frame);
        var r = new SpanReader(body.Span);
        if (!TryReadPublishResponse(ref r, frame.Type, version == MqttProtocolVersion.V500, out packetId, out reasonCode, out _))
        {
            error = r.Error;
            return false;
        }
        if (!r.End)
        {
            error = Errors.TrailingBytes;
            return false;
        }
        error = default;
        return true;
    }

    /// <summary>
    /// Decodes CONNECT, which tells the protocol version. <paramref name="protocolLevel"/> is the level byte
    /// as sent (0 if not reached), so that a refusal can be answered in the client's own CONNACK format.
    /// </summary>
    public static bool TryDecodeConnect(in MqttFrame frame, out ConnectPacket packet, out byte protocolLevel, out MqttDecodeError error)
    {
        packet = null!;
        protocolLevel = 0;
        if (frame.Type != PacketType.Connect)
        {
            error = Errors.UnexpectedPacketForServer;
            return false;
        }
        using var body = new ContiguousBody(frame);
        return TryDecodeConnect(body.Span, out packet, out protocolLevel, out error);
    }

    private static bool TryDecodeConnect(ReadOnlySpan<byte> span, out ConnectPacket packet, out byte protocolLevel, out MqttDecodeError error)
    {
        packet = null!;
        protocolLevel = 0;
        var r = new SpanReader(span);
        if (!r.TryReadUtf8(out var name, out _) || !r.TryReadByte(out protocolLevel))
        {
            error = r.Error;
            return false;
        }
        if (!name.SequenceEqual("MQTT"u8))
        {
            // MQTT 3.1 ("MQIsdp", level 3) is a known older protocol: answer it as an unsupported version.
            error = name.SequenceEqual("MQIsdp"u8) ? Errors.UnsupportedProtocolLevel : Errors.InvalidProtocolName;
            return false;
        }
        if (protocolLevel != 4 && protocolLevel != 5)
        {
            error = Errors.UnsupportedProtocolLevel;
            return false;
        }
        var version = (MqttProtocolVersion)protocolLevel;
        if (!r.TryReadByte(out byte flags) || !r.TryReadUInt16(out ushort keepAlive))
        {
            error = r.Error;
            return false;
        }
        if ((flags & 0x01) != 0)
        {
            error = Errors.ConnectReservedFlag;
            return false;
        }
        bool willFlag = (flags & 0x04) != 0;
        int willQoS = (flags >> 3) & 0x03;
        bool willRetain = (flags & 0x20) != 0;
        bool passwordFlag = (flags & 0x40) != 0;
        bool userNameFlag = (flags & 0x80) != 0;
        if (!willFlag && (willQoS != 0 || willRetain))
        {
            error = Errors.WillFlagsWithoutWill;
            return false;
        }
        if (willQoS == 3)
        {
            error = Errors.WillQoS3;
            return false;
        }
        if (version == MqttProtocolVersion.V311 && passwordFlag && !userNameFlag)
        {
            error = Errors.PasswordWithoutUserName;
            return false;
        }
        MqttProperties? properties = null;
        if (version == MqttProtocolVersion.V500 && !MqttPropertiesCodec.TryRead(ref r, PropertyContext.Connect, out properties))
        {
            error = r.Error;
            return false;
        }
        if (!r.TryReadString(out string clientId))
        {
            error = r.Error;
            return false;
        }
        WillMessage? will = null;
        if (willFlag)
        {
            MqttProperties? willProperties = null;
            if (version == MqttProtocolVersion.V500 && !MqttPropertiesCodec.TryRead(ref r, PropertyContext.Will, out willProperties))
            {
                error = r.Error;
                return false;
            }
            if (!r.TryReadString(out string willTopic) || !r.TryReadBytes(out byte[] willPayload))
            {
                error = r.Error;
                return false;
            }
            if (!TopicRules.IsValidTopicName(willTopic))
            {
                error = willTopic.Length == 0 ? Errors.EmptyTopicName : Errors.TopicNameWithWildcard;
                return false;
            }
            if (willProperties?.PayloadFormatIndicator == 1 && !Utf8.IsValid(willPayload))
            {
                error = Errors.PayloadNotUtf8;
                return false;
            }
            will = new WillMessage
            {
                Topic = willTopic,
                Payload = willPayload,
                QoS = (QualityOfService)willQoS,
                Retain = willRetain,
                Properties = willProperties,
            };
        }
        string? userName = null;
        byte[]? password = null;
        if (userNameFlag && !r.TryReadString(out userName!))
        {
            error = r.Error;
            return false;
        }
        if (passwordFlag && !r.TryReadBytes(out password!))
        {
            error = r.Error;
            return false;
        }
        if (!r.End)
        {
            error = Errors.TrailingBytes;
            return false;
        }
        packet = new ConnectPacket
        {
            ProtocolName = "MQTT",
            ProtocolVersion = version,
            CleanStart = (flags & 0x02) != 0,
            KeepAliveSeconds = keepAlive,
            ClientId = clientId,
            Will = will,
            UserName = userName,
            Password = password,
            Properties = properties,
        };
        error = default;
        return true;
    }

    /// <summary>Decodes any packet of a connection whose version is known (allocating; PUBLISH is copied).</summary>
    public static bool TryDecode(in MqttFrame frame, MqttProtocolVersion version, out MqttPacket packet, out MqttDecodeError error)
    {
        packet = null!;
        switch (frame.Type)
        {
            case PacketType.Connect:
                bool ok = TryDecodeConnect(frame, out var connect, out _, out error);
                packet = connect;
                return ok;
            case PacketType.Publish:
                if (!TryDecodePublish(frame, version, out var view, out error))
                {
                    return false;
                }
                packet = view.ToPacket();
                return true;
            case PacketType.PingReq:
                packet = PingReqPacket.Instance;
                return EmptyBody(frame, out error);
            case PacketType.PingResp:
                packet = PingRespPacket.Instance;
                return EmptyBody(frame, out error);
            case PacketType.Auth when version == MqttProtocolVersion.V311:
                error = Errors.AuthInV311;
                return false;
        }
        using var body = new ContiguousBody(frame);
        return TryDecodeBody(frame.Type, version, body.Span, out packet, out error);
    }

    private static bool EmptyBody(in MqttFrame frame, out MqttDecodeError error)
    {
        error = frame.RemainingLength == 0 ? default : Errors.NonZeroRemainingLength;
        return frame.RemainingLength == 0;
    }

    /// <summary>The body as one span: in place when single-segment, else copied once into a pooled array.</summary>
    private ref struct ContiguousBody
    {
        private byte[]? _rented;

        public ContiguousBody(in MqttFrame frame)
        {
            var body = frame.Body;
            if (body.IsSingleSegment)
            {
                Span = body.FirstSpan;
                _rented = null;
            }
            else
            {
                _rented = ArrayPool<byte>.Shared.Rent(frame.RemainingLength);
                body.CopyTo(_rented);
                Span = _rented.AsSpan(0, frame.RemainingLength);
            }
        }

        public ReadOnlySpan<byte> Span { get; }

        public void Dispose()
        {
            if (_rented is not null)
            {
                ArrayPool<byte>.Shared.Return(_rented);
                _rented = null;
            }
        }
    }

    private static bool TryDecodeBody(PacketType type, MqttProtocolVersion version, ReadOnlySpan<byte> span, out MqttPacket packet, out MqttDecodeError error)
    {
        var r = new SpanReader(span);
        bool v5 = version == MqttProtocolVersion.V500;
        packet = null!;
        switch (type)
        {
            case PacketType.ConnAck:
            {
                if (!r.TryReadByte(out byte ackFlags) || !r.TryReadByte(out byte code))
                {
                    break;
                }
                if ((ackFlags & 0xFE) != 0)
                {
                    r.Fail(Errors.InvalidFixedHeaderFlags);
                    break;
                }
                MqttProperties? props = null;
                if (v5 && !MqttPropertiesCodec.TryRead(ref r, PropertyContext.ConnAck, out props))
                {
                    break;
                }
                packet = new ConnAckPacket { SessionPresent = (ackFlags & 1) != 0, ReasonCode = code, Properties = props };
                break;
            }
            case PacketType.PubAck:
            case PacketType.PubRec:
            case PacketType.PubRel:
            case PacketType.PubComp:
            {
                if (!TryReadPublishResponse(ref r, type, v5, out ushort id, out var code, out var props))
                {
                    break;
                }
                PublishResponsePacket p = type switch
                {
                    PacketType.PubAck => new PubAckPacket(),
                    PacketType.PubRec => new PubRecPacket(),
                    PacketType.PubRel => new PubRelPacket(),
                    _ => new PubCompPacket(),
                };
                p.PacketId = id;
                p.ReasonCode = code;
                p.Properties = props;
                packet = p;
                break;
            }
            case PacketType.Subscribe:
                packet = DecodeSubscribe(ref r, v5)!;
                break;
            case PacketType.SubAck:
            {
                if (!r.TryReadUInt16(out ushort id))
                {
                    break;
                }
                MqttProperties? props = null;
                if (v5 && !MqttPropertiesCodec.TryRead(ref r, PropertyContext.SubAck, out props))
                {
                    break;
                }
                var codes = r.ReadRest().ToArray();
                if (codes.Length == 0)
                {
                    r.Fail(Errors.Truncated);
                    break;
                }
                packet = new SubAckPacket { PacketId = id, ReasonCodes = codes, Properties = props };
                break;
            }
            case PacketType.Unsubscribe:
                packet = DecodeUnsubscribe(ref r, v5)!;
                break;
            case PacketType.UnsubAck:
            {
                if (!r.TryReadUInt16(out ushort id))
                {
                    break;
                }
                MqttProperties? props = null;
                byte[] codes = [];
                if (v5)
                {
                    if (!MqttPropertiesCodec.TryRead(ref r, PropertyContext.UnsubAck, out props))
                    {
                        break;
                    }
                    codes = r.ReadRest().ToArray();
                }
                packet = new UnsubAckPacket { PacketId = id, ReasonCodes = codes, Properties = props };
                break;
            }
            case PacketType.Disconnect:
            {
                var code = ReasonCode.NormalDisconnection;
                MqttProperties? props = null;
                if (v5 && !r.End)
                {
                    if (!r.TryReadByte(out byte rc))
                    {
                        break;
                    }
                    code = (ReasonCode)rc;
                    if (!IsValidDisconnectCode(code))
                    {
                        r.Fail(Errors.InvalidReasonCode);
                        break;
                    }
                    if (!r.End && !MqttPropertiesCodec.TryRead(ref r, PropertyContext.Disconnect, out props))
                    {
                        break;
                    }
                }
                packet = new DisconnectPacket { ReasonCode = code, Properties = props };
                break;
            }
            case PacketType.Auth:
            {
                var code = ReasonCode.Success;
                MqttProperties? props = null;
                if (!r.End)
                {
                    if (!r.TryReadByte(out byte rc))
                    {
                        break;
                    }
                    code = (ReasonCode)rc;
                    if (code is not (ReasonCode.Success or ReasonCode.ContinueAuthentication or ReasonCode.ReAuthenticate))
                    {
                        r.Fail(Errors.InvalidReasonCode);
                        break;
                    }
                    if (!r.End && !MqttPropertiesCodec.TryRead(ref r, PropertyContext.Auth, out props))
                    {
                        break;
                    }
                }
                packet = new AuthPacket { ReasonCode = code, Properties = props };
                break;
            }
            default:
                r.Fail(Errors.ReservedPacketType);
                break;
        }
        if (!r.Failed && !r.End)
        {
            r.Fail(Errors.TrailingBytes);
        }
        if (r.Failed)
        {
            packet = null!;
            error = r.Error;
            return false;
        }
        error = default;
        return true;
    }

    /// <summary>The common body of PUBACK, PUBREC, PUBREL and PUBCOMP (3.4 to 3.7); trailing bytes are left to the caller.</summary>
    private static bool TryReadPublishResponse(ref SpanReader r, PacketType type, bool v5, out ushort packetId, out ReasonCode code, out MqttProperties? properties)
    {
        code = ReasonCode.Success;
        properties = null;
        if (!r.TryReadUInt16(out packetId))
        {
            return false;
        }
        if (packetId == 0)
        {
            return r.Fail(Errors.ZeroPacketIdentifier);
        }
        if (v5 && !r.End)
        {
            // 3.4.2.1: the reason code and properties may be omitted when 0x00 and none.
            if (!r.TryReadByte(out byte rc))
            {
                return false;
            }
            code = (ReasonCode)rc;
            if (!IsValidPublishResponseCode(type, code))
            {
                return r.Fail(Errors.InvalidReasonCode);
            }
            if (!r.End && !MqttPropertiesCodec.TryRead(ref r, PropertyContext.PublishResponse, out properties))
            {
                return false;
            }
        }
        return true;
    }

    private static SubscribePacket? DecodeSubscribe(ref SpanReader r, bool v5)
    {
        if (!TryReadRequiredPacketId(ref r, out ushort id))
        {
            return null;
        }
        MqttProperties? props = null;
        if (v5 && !MqttPropertiesCodec.TryRead(ref r, PropertyContext.Subscribe, out props))
        {
            return null;
        }
        var subscriptions = new List<TopicSubscription>();
        while (!r.End)
        {
            if (!r.TryReadString(out string filter) || !r.TryReadByte(out byte options))
            {
                return null;
            }
            int qos = options & 0x03;
            if (qos == 3)
            {
                r.Fail(Errors.SubscriptionQoS3);
                return null;
            }
            int reservedMask = v5 ? 0xC0 : 0xFC;
            if ((options & reservedMask) != 0)
            {
                r.Fail(Errors.SubscriptionReservedBits);
                return null;
            }
            int retainHandling = (options >> 4) & 0x03;
            if (retainHandling == 3)
            {
                r.Fail(Errors.RetainHandling3);
                return null;
            }
            if (!TopicRules.IsValidTopicFilter(filter))
            {
                r.Fail(Errors.InvalidTopicFilter);
                return null;
            }
            bool noLocal = v5 && (options & 0x04) != 0;
            if (noLocal && TopicRules.IsSharedSubscription(filter))
            {
                r.Fail(Errors.SharedSubscriptionNoLocal);
                return null;
            }
            subscriptions.Add(new TopicSubscription(filter, (QualityOfService)qos, noLocal,
                v5 && (options & 0x08) != 0, (RetainHandling)retainHandling));
        }
        if (subscriptions.Count == 0)
        {
            r.Fail(Errors.NoTopicFilters);
            return null;
        }
        return new SubscribePacket { PacketId = id, Subscriptions = subscriptions, Properties = props };
    }

    private static UnsubscribePacket? DecodeUnsubscribe(ref SpanReader r, bool v5)
    {
        if (!TryReadRequiredPacketId(ref r, out ushort id))
        {
            return null;
        }
        MqttProperties? props = null;
        if (v5 && !MqttPropertiesCodec.TryRead(ref r, PropertyContext.Unsubscribe, out props))
        {
            return null;
        }
        var filters = new List<string>();
        while (!r.End)
        {
            if (!r.TryReadString(out string filter))
            {
                return null;
            }
            if (!TopicRules.IsValidTopicFilter(filter))
            {
                r.Fail(Errors.InvalidTopicFilter);
                return null;
            }
            filters.Add(filter);
        }
        if (filters.Count == 0)
        {
            r.Fail(Errors.NoTopicFilters);
            return null;
        }
        return new UnsubscribePacket { PacketId = id, TopicFilters = filters, Properties = props };
    }

    private static bool TryReadRequiredPacketId(ref SpanReader r, out ushort id)
    {
        if (!r.TryReadUInt16(out id))
        {
            return false;
        }
        return id != 0 || r.Fail(Errors.ZeroPacketIdentifier);
    }

    private static bool IsValidPublishResponseCode(PacketType type, ReasonCode code) => type switch
    {
        PacketType.PubAck or PacketType.PubRec => code is ReasonCode.Success or ReasonCode.NoMatchingSubscribers
            or ReasonCode.UnspecifiedError or ReasonCode.ImplementationSpecificError or ReasonCode.NotAuthorized
            or ReasonCode.TopicNameInvalid or ReasonCode.PacketIdentifierInUse or ReasonCode.QuotaExceeded
            or ReasonCode.PayloadFormatInvalid,
        _ => code is ReasonCode.Success or ReasonCode.PacketIdentifierNotFound,
    };

    /// <summary>The DISCONNECT reason codes of 3.14.2.1.</summary>
    public static bool IsValidDisconnectCode(ReasonCode code) => code is ReasonCode.NormalDisconnection
        or ReasonCode.DisconnectWithWillMessage or ReasonCode.UnspecifiedError or ReasonCode.MalformedPacket
        or ReasonCode.ProtocolError or ReasonCode.ImplementationSpecificError or ReasonCode.NotAuthorized
        or ReasonCode.ServerBusy or ReasonCode.ServerShuttingDown or ReasonCode.KeepAliveTimeout
        or ReasonCode.SessionTakenOver or ReasonCode.TopicFilterInvalid or ReasonCode.TopicNameInvalid
        or ReasonCode.ReceiveMaximumExceeded or ReasonCode.TopicAliasInvalid or ReasonCode.PacketTooLarge
        or ReasonCode.MessageRateTooHigh or ReasonCode.QuotaExceeded or ReasonCode.AdministrativeAction
        or ReasonCode.PayloadFormatInvalid or ReasonCode.RetainNotSupported or ReasonCode.QoSNotSupported
        or ReasonCode.UseAnotherServer or ReasonCode.ServerMoved or ReasonCode.SharedSubscriptionsNotSupported
        or ReasonCode.ConnectionRateExceeded or ReasonCode.MaximumConnectTime
        or ReasonCode.SubscriptionIdentifiersNotSupported or ReasonCode.WildcardSubscriptionsNotSupported;
}
