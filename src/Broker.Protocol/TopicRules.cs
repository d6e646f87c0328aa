namespace Broker.Protocol;

/// <summary>Topic Name and Topic Filter rules of 4.7 (both specs).</summary>
public static class TopicRules
{
    public const string SharePrefix = "$share/";

    /// <summary>A PUBLISH topic name: no '+' or '#' [MQTT-3.3.2-2], [MQTT-4.7.1-1].</summary>
    public static bool IsValidTopicName(ReadOnlySpan<byte> utf8) => utf8.IndexOfAny((byte)'+', (byte)'#') < 0;

    public static bool IsValidTopicName(ReadOnlySpan<char> topic) => topic.Length > 0 && topic.IndexOfAny('+', '#') < 0;

    /// <summary>
    /// A topic filter: non-empty; '#' only as the whole last level; '+' only as a whole level
    /// [MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.7.3-1]. A $share filter needs a non-empty share name
    /// without wildcards and a valid filter after it [MQTT-4.8.2-1], [MQTT-4.8.2-2].
    /// </summary>
    public static bool IsValidTopicFilter(ReadOnlySpan<char> filter)
    {
        if (filter.StartsWith(SharePrefix, StringComparison.Ordinal))
        {
            var rest = filter[SharePrefix.Length..];
            int slash = rest.IndexOf('/');
            if (slash <= 0)
            {
                return false;
            }
            var shareName = rest[..slash];
            if (shareName.IndexOfAny('+', '#') >= 0)
            {
                return false;
            }
            return IsValidPlainFilter(rest[(slash + 1)..]);
        }
        return IsValidPlainFilter(filter);
    }

    public static bool IsSharedSubscription(ReadOnlySpan<char> filter) => filter.StartsWith(SharePrefix, StringComparison.Ordinal);

    private static bool IsValidPlainFilter(ReadOnlySpan<char> filter)
    {
        if (filter.IsEmpty)
        {
            return false;
        }
        for (int i = 0; i < filter.Length; i++)
        {
            char c = filter[i];
            if (c == '#')
            {
                bool wholeLevel = (i == 0 || filter[i - 1] == '/') && i == filter.Length - 1;
                if (!wholeLevel)
                {
                    return false;
                }
            }
            else if (c == '+')
            {
                bool startsLevel = i == 0 || filter[i - 1] == '/';
                bool endsLevel = i == filter.Length - 1 || filter[i + 1] == '/';
                if (!startsLevel || !endsLevel)
                {
                    return false;
                }
            }
        }
        return true;
    }
}
