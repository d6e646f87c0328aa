using Broker.Routing;

namespace Broker.Security;

/// <summary>
/// Relations between two topic filters, for judging a SUBSCRIBE against ACL rules before any message exists.
/// Both follow the matching rules of 4.7: '+' is one level, '#' any number of levels including the parent
/// ("a/#" matches "a"), and a filter starting with a wildcard never matches a topic starting with '$'
/// [MQTT-4.7.2-1].
/// </summary>
internal static class AclFilters
{
    /// <summary>True when at least one topic name is matched by both filters.</summary>
    public static bool Intersect(ReadOnlySpan<char> a, ReadOnlySpan<char> b)
    {
        if ((StartsWithWildcard(a) && b.StartsWith('$')) || (StartsWithWildcard(b) && a.StartsWith('$')))
        {
            return false;
        }
        for (bool firstLevel = true; ; firstLevel = false)
        {
            var levelA = TopicMatcher.NextLevel(ref a, out bool moreA);
            var levelB = TopicMatcher.NextLevel(ref b, out bool moreB);
            if (levelA is "#" || levelB is "#")
            {
                return true;
            }
            if (!(levelA is "+") && !(levelB is "+") && !levelA.SequenceEqual(levelB))
            {
                return false;
            }
            if (moreA && moreB)
            {
                continue;
            }
            if (!moreA && !moreB)
            {
                return true;
            }
            // One filter ended: the other still matches that topic only through a trailing "#". When that topic
            // is a single empty level ("+" and "/#") it is the zero-length topic, which no PUBLISH can carry.
            return (moreA ? a is "#" : b is "#") && !(firstLevel && (levelA.IsEmpty || levelB.IsEmpty));
        }
    }

    /// <summary>True when every topic name matched by <paramref name="inner"/> is also matched by <paramref name="outer"/>.</summary>
    public static bool Covers(ReadOnlySpan<char> outer, ReadOnlySpan<char> inner)
    {
        if (StartsWithWildcard(outer) && inner.StartsWith('$'))
        {
            return false;
        }
        // True while the levels consumed so far can only form the zero-length topic (none yet, or one empty level).
        bool parentIsEmptyTopic = true;
        for (bool firstLevel = true; ; firstLevel = false)
        {
            var levelOuter = TopicMatcher.NextLevel(ref outer, out bool moreOuter);
            if (levelOuter is "#")
            {
                return true;
            }
            var levelInner = TopicMatcher.NextLevel(ref inner, out bool moreInner);
            if (levelInner is "#")
            {
                // Any depth from here, including none (the parent), unless the parent would be the zero-length
                // topic, which no PUBLISH can carry: then "+/#" is as wide as "#".
                return parentIsEmptyTopic && levelOuter is "+" && moreOuter && outer is "#";
            }
            parentIsEmptyTopic = firstLevel && levelInner.IsEmpty;
            if (!(levelOuter is "+") && (levelInner is "+" || !levelOuter.SequenceEqual(levelInner)))
            {
                return false;
            }
            if (moreOuter && moreInner)
            {
                continue;
            }
            if (!moreOuter)
            {
                return !moreInner;
            }
            // The inner filter ended: the outer one matches that topic only through a trailing "#".
            return outer is "#";
        }
    }

    private static bool StartsWithWildcard(ReadOnlySpan<char> filter) => !filter.IsEmpty && (filter[0] == '+' || filter[0] == '#');
}
