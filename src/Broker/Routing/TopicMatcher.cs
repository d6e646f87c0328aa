namespace Broker.Routing;

/// <summary>
/// Straightforward filter-against-topic comparison, level by level. The tries do not use it: it is
/// the reference their results are checked against, and it serves one-off checks off the hot path.
/// Inputs are assumed already validated (the codec rejects misplaced wildcards).
/// </summary>
internal static class TopicMatcher
{
    public static bool Matches(ReadOnlySpan<char> filter, ReadOnlySpan<char> topic)
    {
        // [MQTT-4.7.2-1] a filter starting with a wildcard does not match a topic starting with '$'.
        if (!topic.IsEmpty && topic[0] == '$' && !filter.IsEmpty && (filter[0] == '+' || filter[0] == '#'))
        {
            return false;
        }

        while (true)
        {
            var filterLevel = NextLevel(ref filter, out bool filterHasMore);
            if (filterLevel is "#")
            {
                // [MQTT-4.7.1-2] '#' also matches the parent level, so it matches whatever is left,
                // including nothing.
                return true;
            }

            var topicLevel = NextLevel(ref topic, out bool topicHasMore);
            if (!(filterLevel is "+") && !filterLevel.SequenceEqual(topicLevel))
            {
                return false;
            }

            if (!filterHasMore)
            {
                return !topicHasMore;
            }

            if (!topicHasMore)
            {
                // Topic exhausted: only a trailing "/#" can still match ("sport/#" matches "sport").
                return filter is "#";
            }
        }
    }

    /// <summary>Cuts the first level off <paramref name="rest"/>; empty levels are real levels.</summary>
    internal static ReadOnlySpan<char> NextLevel(ref ReadOnlySpan<char> rest, out bool hasMore)
    {
        int slash = rest.IndexOf('/');
        if (slash < 0)
        {
            var last = rest;
            rest = default;
            hasMore = false;
            return last;
        }

        var level = rest[..slash];
        rest = rest[(slash + 1)..];
        hasMore = true;
        return level;
    }
}
