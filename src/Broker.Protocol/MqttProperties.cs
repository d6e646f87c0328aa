using System.Buffers.Binary;
using System.Text;

namespace Broker.Protocol;

/// <summary>Where a property list stands; decides which properties are allowed (table of 2.2.2.2).</summary>
public enum PropertyContext : byte
{
    Connect,
    Will,
    ConnAck,
    Publish,
    PublishResponse,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

/// <summary>
/// The MQTT 5.0 properties of one packet. Absent properties are null. Only allocated when a packet
/// actually carries properties, so 3.1.1 traffic and bare 5.0 packets never create one.
/// </summary>
public sealed class MqttProperties
{
    public byte? PayloadFormatIndicator { get; set; }
    public uint? MessageExpiryInterval { get; set; }
    public string? ContentType { get; set; }
    public string? ResponseTopic { get; set; }
    public byte[]? CorrelationData { get; set; }
    /// <summary>One in SUBSCRIBE; one per matching subscription in a PUBLISH sent to a client.</summary>
    public List<int>? SubscriptionIdentifiers { get; set; }
    public uint? SessionExpiryInterval { get; set; }
    public string? AssignedClientIdentifier { get; set; }
    public ushort? ServerKeepAlive { get; set; }
    public string? AuthenticationMethod { get; set; }
    public byte[]? AuthenticationData { get; set; }
    public byte? RequestProblemInformation { get; set; }
    public uint? WillDelayInterval { get; set; }
    public byte? RequestResponseInformation { get; set; }
    public string? ResponseInformation { get; set; }
    public string? ServerReference { get; set; }
    public string? ReasonString { get; set; }
    public ushort? ReceiveMaximum { get; set; }
    public ushort? TopicAliasMaximum { get; set; }
    public ushort? TopicAlias { get; set; }
    public byte? MaximumQoS { get; set; }
    public byte? RetainAvailable { get; set; }
    public List<KeyValuePair<string, string>>? UserProperties { get; set; }
    public uint? MaximumPacketSize { get; set; }
    public byte? WildcardSubscriptionAvailable { get; set; }
    public byte? SubscriptionIdentifierAvailable { get; set; }
    public byte? SharedSubscriptionAvailable { get; set; }

    public MqttProperties Clone()
    {
        var copy = (MqttProperties)MemberwiseClone();
        copy.SubscriptionIdentifiers = SubscriptionIdentifiers is null ? null : [.. SubscriptionIdentifiers];
        copy.UserProperties = UserProperties is null ? null : [.. UserProperties];
        return copy;
    }

    public bool IsEmpty => MqttPropertiesCodec.GetContentLength(this) == 0;
}

/// <summary>Reads and writes the Properties field (2.2.2): a Variable Byte Integer length, then id/value pairs.</summary>
public static class MqttPropertiesCodec
{
    private static ulong Bit(PropertyId id) => 1UL << (int)id;

    private static readonly ulong WillSet = Bit(PropertyId.PayloadFormatIndicator) | Bit(PropertyId.MessageExpiryInterval)
        | Bit(PropertyId.ContentType) | Bit(PropertyId.ResponseTopic) | Bit(PropertyId.CorrelationData)
        | Bit(PropertyId.WillDelayInterval) | Bit(PropertyId.UserProperty);

    private static readonly ulong[] Allowed = BuildAllowed();

    private static ulong[] BuildAllowed()
    {
        var a = new ulong[(int)PropertyContext.Auth + 1];
        ulong user = Bit(PropertyId.UserProperty);
        ulong reason = Bit(PropertyId.ReasonString);
        a[(int)PropertyContext.Connect] = user | Bit(PropertyId.SessionExpiryInterval) | Bit(PropertyId.AuthenticationMethod)
            | Bit(PropertyId.AuthenticationData) | Bit(PropertyId.RequestProblemInformation) | Bit(PropertyId.RequestResponseInformation)
            | Bit(PropertyId.ReceiveMaximum) | Bit(PropertyId.TopicAliasMaximum) | Bit(PropertyId.MaximumPacketSize);
        a[(int)PropertyContext.Will] = WillSet;
        a[(int)PropertyContext.ConnAck] = user | reason | Bit(PropertyId.SessionExpiryInterval) | Bit(PropertyId.AssignedClientIdentifier)
            | Bit(PropertyId.ServerKeepAlive) | Bit(PropertyId.AuthenticationMethod) | Bit(PropertyId.AuthenticationData)
            | Bit(PropertyId.ResponseInformation) | Bit(PropertyId.ServerReference) | Bit(PropertyId.ReceiveMaximum)
            | Bit(PropertyId.TopicAliasMaximum) | Bit(PropertyId.MaximumQoS) | Bit(PropertyId.RetainAvailable)
            | Bit(PropertyId.MaximumPacketSize) | Bit(PropertyId.WildcardSubscriptionAvailable)
            | Bit(PropertyId.SubscriptionIdentifierAvailable) | Bit(PropertyId.SharedSubscriptionAvailable);
        a[(int)PropertyContext.Publish] = user | Bit(PropertyId.PayloadFormatIndicator) | Bit(PropertyId.MessageExpiryInterval)
            | Bit(PropertyId.ContentType) | Bit(PropertyId.ResponseTopic) | Bit(PropertyId.CorrelationData)
            | Bit(PropertyId.SubscriptionIdentifier) | Bit(PropertyId.TopicAlias);
        a[(int)PropertyContext.PublishResponse] = user | reason;
        a[(int)PropertyContext.Subscribe] = user | Bit(PropertyId.SubscriptionIdentifier);
        a[(int)PropertyContext.SubAck] = user | reason;
        a[(int)PropertyContext.Unsubscribe] = user;
        a[(int)PropertyContext.UnsubAck] = user | reason;
        a[(int)PropertyContext.Disconnect] = user | reason | Bit(PropertyId.SessionExpiryInterval) | Bit(PropertyId.ServerReference);
        a[(int)PropertyContext.Auth] = user | reason | Bit(PropertyId.AuthenticationMethod) | Bit(PropertyId.AuthenticationData);
        return a;
    }

    public static bool IsAllowed(PropertyContext context, PropertyId id) => (byte)id < 64 && (Allowed[(int)context] & Bit(id)) != 0;

    /// <summary>
    /// Reads a whole Properties field written by <see cref="Write"/> (length prefix and content, nothing after
    /// it), for properties kept outside a packet (the broker's store).
    /// </summary>
    public static bool TryReadField(ReadOnlySpan<byte> field, PropertyContext context, out MqttProperties? properties, out MqttDecodeError error)
    {
        var reader = new SpanReader(field);
        if (TryRead(ref reader, context, out properties) && reader.End)
        {
            error = default;
            return true;
        }
        error = reader.Failed ? reader.Error : Errors.PropertyLengthMismatch;
        properties = null;
        return false;
    }

    /// <summary>Reads the property length and the properties. Returns null properties when the length is 0.</summary>
    internal static bool TryRead(ref SpanReader reader, PropertyContext context, out MqttProperties? properties)
    {
        properties = null;
        if (!reader.TryReadVariableByteInteger(out int length))
        {
            return false;
        }
        if (length == 0)
        {
            return true;
        }
        if (length > reader.Remaining)
        {
            return reader.Fail(Errors.PropertyLengthMismatch);
        }
        int end = reader.Position + length;
        var p = new MqttProperties();
        ulong seen = 0;
        while (reader.Position < end)
        {
            if (!reader.TryReadVariableByteInteger(out int rawId))
            {
                return false;
            }
            if (rawId > 0x2A || !Enum.IsDefined((PropertyId)rawId))
            {
                return reader.Fail(Errors.UnknownProperty);
            }
            var id = (PropertyId)rawId;
            if (!IsAllowed(context, id))
            {
                return reader.Fail(Errors.PropertyNotAllowed);
            }
            bool repeatable = id == PropertyId.UserProperty
                || (id == PropertyId.SubscriptionIdentifier && context == PropertyContext.Publish);
            if (!repeatable && (seen & Bit(id)) != 0)
            {
                return reader.Fail(Errors.DuplicateProperty);
            }
            seen |= Bit(id);
            if (!TryReadValue(ref reader, id, p))
            {
                return false;
            }
            if (reader.Position > end)
            {
                return reader.Fail(Errors.PropertyLengthMismatch);
            }
        }
        properties = p;
        return true;
    }

    private static bool TryReadValue(ref SpanReader r, PropertyId id, MqttProperties p)
    {
        byte b;
        ushort u16;
        uint u32;
        string s;
        byte[] bytes;
        switch (id)
        {
            case PropertyId.PayloadFormatIndicator:
                if (!r.TryReadByte(out b)) return false;
                if (b > 1) return r.Fail(Errors.InvalidPropertyValue);
                p.PayloadFormatIndicator = b;
                return true;
            case PropertyId.MessageExpiryInterval:
                if (!r.TryReadUInt32(out u32)) return false;
                p.MessageExpiryInterval = u32;
                return true;
            case PropertyId.ContentType:
                if (!r.TryReadString(out s)) return false;
                p.ContentType = s;
                return true;
            case PropertyId.ResponseTopic:
                if (!r.TryReadString(out s)) return false;
                // [MQTT-3.3.2-14] the Response Topic is a Topic Name.
                if (!TopicRules.IsValidTopicName(s)) return r.Fail(Errors.TopicNameWithWildcard);
                p.ResponseTopic = s;
                return true;
            case PropertyId.CorrelationData:
                if (!r.TryReadBytes(out bytes)) return false;
                p.CorrelationData = bytes;
                return true;
            case PropertyId.SubscriptionIdentifier:
                if (!r.TryReadVariableByteInteger(out int subId)) return false;
                if (subId == 0) return r.Fail(Errors.ZeroSubscriptionIdentifier);
                (p.SubscriptionIdentifiers ??= []).Add(subId);
                return true;
            case PropertyId.SessionExpiryInterval:
                if (!r.TryReadUInt32(out u32)) return false;
                p.SessionExpiryInterval = u32;
                return true;
            case PropertyId.AssignedClientIdentifier:
                if (!r.TryReadString(out s)) return false;
                p.AssignedClientIdentifier = s;
                return true;
            case PropertyId.ServerKeepAlive:
                if (!r.TryReadUInt16(out u16)) return false;
                p.ServerKeepAlive = u16;
                return true;
            case PropertyId.AuthenticationMethod:
                if (!r.TryReadString(out s)) return false;
                p.AuthenticationMethod = s;
                return true;
            case PropertyId.AuthenticationData:
                if (!r.TryReadBytes(out bytes)) return false;
                p.AuthenticationData = bytes;
                return true;
            case PropertyId.RequestProblemInformation:
                if (!r.TryReadByte(out b)) return false;
                if (b > 1) return r.Fail(Errors.InvalidPropertyValue);
                p.RequestProblemInformation = b;
                return true;
            case PropertyId.WillDelayInterval:
                if (!r.TryReadUInt32(out u32)) return false;
                p.WillDelayInterval = u32;
                return true;
            case PropertyId.RequestResponseInformation:
                if (!r.TryReadByte(out b)) return false;
                if (b > 1) return r.Fail(Errors.InvalidPropertyValue);
                p.RequestResponseInformation = b;
                return true;
            case PropertyId.ResponseInformation:
                if (!r.TryReadString(out s)) return false;
                p.ResponseInformation = s;
                return true;
            case PropertyId.ServerReference:
                if (!r.TryReadString(out s)) return false;
                p.ServerReference = s;
                return true;
            case PropertyId.ReasonString:
                if (!r.TryReadString(out s)) return false;
                p.ReasonString = s;
                return true;
            case PropertyId.ReceiveMaximum:
                if (!r.TryReadUInt16(out u16)) return false;
                if (u16 == 0) return r.Fail(Errors.ZeroReceiveMaximum);
                p.ReceiveMaximum = u16;
                return true;
            case PropertyId.TopicAliasMaximum:
                if (!r.TryReadUInt16(out u16)) return false;
                p.TopicAliasMaximum = u16;
                return true;
            case PropertyId.TopicAlias:
                if (!r.TryReadUInt16(out u16)) return false;
                if (u16 == 0) return r.Fail(Errors.ZeroTopicAlias);
                p.TopicAlias = u16;
                return true;
            case PropertyId.MaximumQoS:
                if (!r.TryReadByte(out b)) return false;
                if (b > 1) return r.Fail(Errors.InvalidPropertyValue);
                p.MaximumQoS = b;
                return true;
            case PropertyId.RetainAvailable:
                if (!r.TryReadByte(out b)) return false;
                if (b > 1) return r.Fail(Errors.InvalidPropertyValue);
                p.RetainAvailable = b;
                return true;
            case PropertyId.UserProperty:
                if (!r.TryReadString(out string key) || !r.TryReadString(out string value)) return false;
                (p.UserProperties ??= []).Add(new(key, value));
                return true;
            case PropertyId.MaximumPacketSize:
                if (!r.TryReadUInt32(out u32)) return false;
                if (u32 == 0) return r.Fail(Errors.ZeroMaximumPacketSize);
                p.MaximumPacketSize = u32;
                return true;
            case PropertyId.WildcardSubscriptionAvailable:
                if (!r.TryReadByte(out b)) return false;
                if (b > 1) return r.Fail(Errors.InvalidPropertyValue);
                p.WildcardSubscriptionAvailable = b;
                return true;
            case PropertyId.SubscriptionIdentifierAvailable:
                if (!r.TryReadByte(out b)) return false;
                if (b > 1) return r.Fail(Errors.InvalidPropertyValue);
                p.SubscriptionIdentifierAvailable = b;
                return true;
            case PropertyId.SharedSubscriptionAvailable:
                if (!r.TryReadByte(out b)) return false;
                if (b > 1) return r.Fail(Errors.InvalidPropertyValue);
                p.SharedSubscriptionAvailable = b;
                return true;
            default:
                return r.Fail(Errors.UnknownProperty);
        }
    }

    private static int StringSize(string? s) => s is null ? 0 : 1 + 2 + Encoding.UTF8.GetByteCount(s);
    private static int BytesSize(byte[]? b) => b is null ? 0 : 1 + 2 + b.Length;

    /// <summary>Length of the properties without the leading Variable Byte Integer.</summary>
    public static int GetContentLength(MqttProperties? p)
    {
        if (p is null)
        {
            return 0;
        }
        int n = 0;
        if (p.PayloadFormatIndicator.HasValue) n += 2;
        if (p.MessageExpiryInterval.HasValue) n += 5;
        n += StringSize(p.ContentType);
        n += StringSize(p.ResponseTopic);
        n += BytesSize(p.CorrelationData);
        if (p.SubscriptionIdentifiers is { } ids)
        {
            foreach (int id in ids) n += 1 + VariableByteInteger.GetSize(id);
        }
        if (p.SessionExpiryInterval.HasValue) n += 5;
        n += StringSize(p.AssignedClientIdentifier);
        if (p.ServerKeepAlive.HasValue) n += 3;
        n += StringSize(p.AuthenticationMethod);
        n += BytesSize(p.AuthenticationData);
        if (p.RequestProblemInformation.HasValue) n += 2;
        if (p.WillDelayInterval.HasValue) n += 5;
        if (p.RequestResponseInformation.HasValue) n += 2;
        n += StringSize(p.ResponseInformation);
        n += StringSize(p.ServerReference);
        n += StringSize(p.ReasonString);
        if (p.ReceiveMaximum.HasValue) n += 3;
        if (p.TopicAliasMaximum.HasValue) n += 3;
        if (p.TopicAlias.HasValue) n += 3;
        if (p.MaximumQoS.HasValue) n += 2;
        if (p.RetainAvailable.HasValue) n += 2;
        if (p.UserProperties is { } ups)
        {
            foreach (var kv in ups) n += 1 + 2 + Encoding.UTF8.GetByteCount(kv.Key) + 2 + Encoding.UTF8.GetByteCount(kv.Value);
        }
        if (p.MaximumPacketSize.HasValue) n += 5;
        if (p.WildcardSubscriptionAvailable.HasValue) n += 2;
        if (p.SubscriptionIdentifierAvailable.HasValue) n += 2;
        if (p.SharedSubscriptionAvailable.HasValue) n += 2;
        return n;
    }

    /// <summary>Size of the whole Properties field: the length prefix plus the content.</summary>
    public static int GetFieldSize(MqttProperties? p)
    {
        int content = GetContentLength(p);
        return VariableByteInteger.GetSize(content) + content;
    }

    /// <summary>Writes the Properties field (length prefix and content); returns the bytes written.</summary>
    public static int Write(Span<byte> destination, MqttProperties? p, int contentLength)
    {
        int i = VariableByteInteger.Write(destination, contentLength);
        if (p is null || contentLength == 0)
        {
            return i;
        }
        var w = new SpanWriter(destination[i..]);
        if (p.PayloadFormatIndicator is { } pfi) { w.Byte((byte)PropertyId.PayloadFormatIndicator); w.Byte(pfi); }
        if (p.MessageExpiryInterval is { } mei) { w.Byte((byte)PropertyId.MessageExpiryInterval); w.UInt32(mei); }
        if (p.ContentType is { } ct) { w.Byte((byte)PropertyId.ContentType); w.String(ct); }
        if (p.ResponseTopic is { } rt) { w.Byte((byte)PropertyId.ResponseTopic); w.String(rt); }
        if (p.CorrelationData is { } cd) { w.Byte((byte)PropertyId.CorrelationData); w.Binary(cd); }
        if (p.SubscriptionIdentifiers is { } ids)
        {
            foreach (int id in ids) { w.Byte((byte)PropertyId.SubscriptionIdentifier); w.Vbi(id); }
        }
        if (p.SessionExpiryInterval is { } sei) { w.Byte((byte)PropertyId.SessionExpiryInterval); w.UInt32(sei); }
        if (p.AssignedClientIdentifier is { } aci) { w.Byte((byte)PropertyId.AssignedClientIdentifier); w.String(aci); }
        if (p.ServerKeepAlive is { } ska) { w.Byte((byte)PropertyId.ServerKeepAlive); w.UInt16(ska); }
        if (p.AuthenticationMethod is { } am) { w.Byte((byte)PropertyId.AuthenticationMethod); w.String(am); }
        if (p.AuthenticationData is { } ad) { w.Byte((byte)PropertyId.AuthenticationData); w.Binary(ad); }
        if (p.RequestProblemInformation is { } rpi) { w.Byte((byte)PropertyId.RequestProblemInformation); w.Byte(rpi); }
        if (p.WillDelayInterval is { } wdi) { w.Byte((byte)PropertyId.WillDelayInterval); w.UInt32(wdi); }
        if (p.RequestResponseInformation is { } rri) { w.Byte((byte)PropertyId.RequestResponseInformation); w.Byte(rri); }
        if (p.ResponseInformation is { } ri) { w.Byte((byte)PropertyId.ResponseInformation); w.String(ri); }
        if (p.ServerReference is { } sr) { w.Byte((byte)PropertyId.ServerReference); w.String(sr); }
        if (p.ReasonString is { } rs) { w.Byte((byte)PropertyId.ReasonString); w.String(rs); }
        if (p.ReceiveMaximum is { } rm) { w.Byte((byte)PropertyId.ReceiveMaximum); w.UInt16(rm); }
        if (p.TopicAliasMaximum is { } tam) { w.Byte((byte)PropertyId.TopicAliasMaximum); w.UInt16(tam); }
        if (p.TopicAlias is { } ta) { w.Byte((byte)PropertyId.TopicAlias); w.UInt16(ta); }
        if (p.MaximumQoS is { } mq) { w.Byte((byte)PropertyId.MaximumQoS); w.Byte(mq); }
        if (p.RetainAvailable is { } ra) { w.Byte((byte)PropertyId.RetainAvailable); w.Byte(ra); }
        if (p.UserProperties is { } ups)
        {
            foreach (var kv in ups) { w.Byte((byte)PropertyId.UserProperty); w.String(kv.Key); w.String(kv.Value); }
        }
        if (p.MaximumPacketSize is { } mps) { w.Byte((byte)PropertyId.MaximumPacketSize); w.UInt32(mps); }
        if (p.WildcardSubscriptionAvailable is { } wsa) { w.Byte((byte)PropertyId.WildcardSubscriptionAvailable); w.Byte(wsa); }
        if (p.SubscriptionIdentifierAvailable is { } sia) { w.Byte((byte)PropertyId.SubscriptionIdentifierAvailable); w.Byte(sia); }
        if (p.SharedSubscriptionAvailable is { } ssa) { w.Byte((byte)PropertyId.SharedSubscriptionAvailable); w.Byte(ssa); }
        return i + w.Written;
    }
}

/// <summary>Writes big-endian fields into a span that the caller sized exactly.</summary>
internal ref struct SpanWriter
{
    private readonly Span<byte> _span;
    public int Written;

    public SpanWriter(Span<byte> span)
    {
        _span = span;
        Written = 0;
    }

    public void Byte(byte value) => _span[Written++] = value;

    public void UInt16(ushort value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(_span[Written..], value);
        Written += 2;
    }

    public void UInt32(uint value)
    {
        BinaryPrimitives.WriteUInt32BigEndian(_span[Written..], value);
        Written += 4;
    }

    public void Vbi(int value) => Written += VariableByteInteger.Write(_span[Written..], value);

    public void String(string value)
    {
        int n = Encoding.UTF8.GetBytes(value, _span[(Written + 2)..]);
        BinaryPrimitives.WriteUInt16BigEndian(_span[Written..], checked((ushort)n));
        Written += 2 + n;
    }

    public void Utf8(ReadOnlySpan<byte> value) => Binary(value);

    public void Binary(ReadOnlySpan<byte> value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(_span[Written..], checked((ushort)value.Length));
        value.CopyTo(_span[(Written + 2)..]);
        Written += 2 + value.Length;
    }

    public void Raw(ReadOnlySpan<byte> value)
    {
        value.CopyTo(_span[Written..]);
        Written += value.Length;
    }

    public Span<byte> Remaining => _span[Written..];
}
