using System.Buffers;
using System.Text;

namespace Broker.Protocol;

/// <summary>
/// The broker's configured bounds on topic names and filters (length in UTF-8 bytes, number of levels):
/// a pure check, called by the connection after decoding, so that no client can make the routing
/// structures hold arbitrarily deep paths. The specs set no such bound beyond the 65,535-byte string
/// encoding; answering a violation is the caller's job (docs/security.md, "Hardening: limits"):
/// PUBLISH and will topics use <see cref="TopicNameTooLong"/> / <see cref="TopicNameTooDeep"/>
/// (0x90 Topic Name Invalid), SUBSCRIBE and UNSUBSCRIBE filters <see cref="TopicFilterTooLong"/> /
/// <see cref="TopicFilterTooDeep"/> (0x8F Topic Filter Invalid).
/// </summary>
public readonly record struct TopicLimits(int MaxLength, int MaxLevels)
{
    public static readonly MqttDecodeError TopicNameTooLong = new(ReasonCode.TopicNameInvalid, "topic name longer than Broker:Limits:MaxTopicLength");
    public static readonly MqttDecodeError TopicNameTooDeep = new(ReasonCode.TopicNameInvalid, "topic name with more levels than Broker:Limits:MaxTopicLevels");
    public static readonly MqttDecodeError TopicFilterTooLong = new(ReasonCode.TopicFilterInvalid, "topic filter longer than Broker:Limits:MaxTopicLength");
    public static readonly MqttDecodeError TopicFilterTooDeep = new(ReasonCode.TopicFilterInvalid, "topic filter with more levels than Broker:Limits:MaxTopicLevels");

    /// <summary>No bound beyond what the encoding allows.</summary>
    public static TopicLimits None => new(ushort.MaxValue, ushort.MaxValue + 1);

    /// <summary>A topic name as received (UTF-8). Levels are counted as separators + 1: "a/b" has 2, "/" has 2.</summary>
    public bool IsTopicNameAllowed(ReadOnlySpan<byte> utf8, out MqttDecodeError error)
    {
        if (utf8.Length > MaxLength)
        {
            error = TopicNameTooLong;
            return false;
        }

        return CheckLevels(utf8.Count((byte)'/'), TopicNameTooDeep, out error);
    }

    /// <summary>A topic name as received, possibly in several segments.</summary>
    public bool IsTopicNameAllowed(in ReadOnlySequence<byte> utf8, out MqttDecodeError error)
    {
        if (utf8.IsSingleSegment)
        {
            return IsTopicNameAllowed(utf8.FirstSpan, out error);
        }

        if (utf8.Length > MaxLength)
        {
            error = TopicNameTooLong;
            return false;
        }

        int separators = 0;
        foreach (var segment in utf8)
        {
            separators += segment.Span.Count((byte)'/');
        }

        return CheckLevels(separators, TopicNameTooDeep, out error);
    }

    /// <summary>A topic name already decoded (e.g. one a 5.0 Topic Alias stands for, or a will topic).</summary>
    public bool IsTopicNameAllowed(ReadOnlySpan<char> topic, out MqttDecodeError error)
    {
        if (Utf8Length(topic) > MaxLength)
        {
            error = TopicNameTooLong;
            return false;
        }

        return CheckLevels(topic.Count('/'), TopicNameTooDeep, out error);
    }

    /// <summary>
    /// A topic filter of SUBSCRIBE or UNSUBSCRIBE. The length is that of the whole filter; the levels are
    /// those of the filter proper, after a "$share/{ShareName}/" prefix, since they are what the
    /// subscription tree stores.
    /// </summary>
    public bool IsTopicFilterAllowed(ReadOnlySpan<char> filter, out MqttDecodeError error)
    {
        if (Utf8Length(filter) > MaxLength)
        {
            error = TopicFilterTooLong;
            return false;
        }

        var levels = filter;
        if (TopicRules.IsSharedSubscription(filter))
        {
            var rest = filter[TopicRules.SharePrefix.Length..];
            int slash = rest.IndexOf('/');
            levels = slash < 0 ? rest : rest[(slash + 1)..];
        }

        return CheckLevels(levels.Count('/'), TopicFilterTooDeep, out error);
    }

    private bool CheckLevels(int separators, MqttDecodeError tooDeep, out MqttDecodeError error)
    {
        // Levels = separators + 1; compared without the addition so that no count can overflow.
        if (separators >= MaxLevels)
        {
            error = tooDeep;
            return false;
        }

        error = default;
        return true;
    }

    // Strings here are at most a few times 65,535 characters; counting bytes is cheaper than encoding.
    private static int Utf8Length(ReadOnlySpan<char> text) => text.Length > ushort.MaxValue * 3 ? int.MaxValue : Encoding.UTF8.GetByteCount(text);
}
