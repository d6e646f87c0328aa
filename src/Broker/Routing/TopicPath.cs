namespace Broker.Routing;

/// <summary>
/// Level arithmetic for the path-compressed tries. A node's label is one or more whole levels joined by
/// '/', so that a chain of levels nobody branches from costs one node and the label's characters, not a
/// node per level (a 65,535-character topic of '/' is 65,536 empty levels).
/// </summary>
internal static class TopicPath
{
    /// <summary>The first level of <paramref name="path"/> (all of it when it has no '/').</summary>
    public static ReadOnlySpan<char> FirstLevel(ReadOnlySpan<char> path)
    {
        int slash = path.IndexOf('/');
        return slash < 0 ? path : path[..slash];
    }

    /// <summary>
    /// Whether <paramref name="label"/> is the leading whole levels of <paramref name="path"/>; if so,
    /// <paramref name="rest"/> is what follows it (without the '/') and <paramref name="hasMore"/> says
    /// whether anything does (an empty <paramref name="rest"/> with <paramref name="hasMore"/> is one empty level).
    /// </summary>
    public static bool TryFollow(string label, ReadOnlySpan<char> path, out ReadOnlySpan<char> rest, out bool hasMore)
    {
        if (!path.StartsWith(label, StringComparison.Ordinal))
        {
            rest = default;
            hasMore = false;
            return false;
        }

        if (path.Length == label.Length)
        {
            rest = default;
            hasMore = false;
            return true;
        }

        if (path[label.Length] != '/')
        {
            rest = default;
            hasMore = false;
            return false;
        }

        rest = path[(label.Length + 1)..];
        hasMore = true;
        return true;
    }

    /// <summary>
    /// Length in characters of the longest run of whole levels that <paramref name="label"/> and
    /// <paramref name="path"/> share. The caller has already matched their first levels, so the result
    /// covers at least the first level.
    /// </summary>
    public static int CommonLevels(ReadOnlySpan<char> label, ReadOnlySpan<char> path)
    {
        int same = label.CommonPrefixLength(path);
        bool labelEnds = same == label.Length || label[same] == '/';
        bool pathEnds = same == path.Length || path[same] == '/';
        if (labelEnds && pathEnds)
        {
            return same;
        }

        // The shared characters stop inside a level: back off to the last separator both have.
        return label[..same].LastIndexOf('/');
    }
}
