using System.Runtime.CompilerServices;

namespace Broker.Routing;

/// <summary>
/// Topic trie of subscriptions, with '+', '#' and shared subscriptions ($share/{ShareName}/{filter}).
/// </summary>
/// <remarks>
/// Matching (every PUBLISH, many threads at once) takes no lock and allocates nothing: it reads
/// nodes whose fields are only ever replaced by fully built objects. Subscribe, Unsubscribe and
/// RemoveClient take one lock for the whole tree, which keeps node creation and pruning race-free;
/// they are far rarer than publishes and never block a matcher.
/// </remarks>
internal sealed partial class SubscriptionTree<TValue>
{
    private const string SharePrefix = "$share/";

    private readonly Node _root = new(parent: null, level: string.Empty);
    private readonly Lock _writeLock = new();
    private int _count;

    /// <summary>Number of subscriptions: one per (client, filter), shared memberships included.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>
    /// Adds the subscription, or replaces the value of the client's existing subscription to the
    /// same filter [MQTT-3.8.4-3]. Returns true if it is new.
    /// </summary>
    public bool Subscribe(string filter, string clientId, TValue value)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        string? shareName = SplitShared(filter, out var topicFilter);
        lock (_writeLock)
        {
            var node = _root;
            var rest = topicFilter;
            bool hasMore = true;
            while (hasMore)
            {
                node = node.GetOrAddChild(TopicMatcher.NextLevel(ref rest, out hasMore));
            }

            bool added = shareName is null
                ? node.SetSubscriber(clientId, value)
                : node.SetSharedMember(shareName, clientId, value);
            if (added)
            {
                Volatile.Write(ref _count, _count + 1);
            }

            return added;
        }
    }

    /// <summary>Removes the client's subscription to exactly this filter. Returns false if it had none.</summary>
    public bool Unsubscribe(string filter, string clientId)
    {
        string? shareName = SplitShared(filter, out var topicFilter);
        lock (_writeLock)
        {
            return RemoveLocked(topicFilter, shareName, clientId);
        }
    }

    /// <summary>
    /// Removes the client's subscriptions to the given filters (the session knows them; the tree does
    /// not index by client). Returns how many were removed.
    /// </summary>
    public int RemoveClient(string clientId, IEnumerable<string> filters)
    {
        int removed = 0;
        lock (_writeLock)
        {
            foreach (string filter in filters)
            {
                string? shareName = SplitShared(filter, out var topicFilter);
                if (RemoveLocked(topicFilter, shareName, clientId))
                {
                    removed++;
                }
            }
        }

        return removed;
    }

    /// <summary>
    /// Calls <paramref name="visitor"/> for every ordinary subscription whose filter matches
    /// <paramref name="topic"/>, and once per matching shared group with one member picked round-robin.
    /// </summary>
    public void Match<TVisitor>(ReadOnlySpan<char> topic, ref TVisitor visitor)
        where TVisitor : ISubscriptionVisitor<TValue>, allows ref struct
    {
        // [MQTT-4.7.2-1] filters starting with a wildcard do not match topics starting with '$'.
        bool isDollarTopic = !topic.IsEmpty && topic[0] == '$';
        MatchBelow(_root, topic, skipWildcards: isDollarTopic, ref visitor);
    }

    // Literal levels are followed in a loop; only '+' branches recurse, so the recursion depth is
    // bounded by the '+' levels of the stored filters, never by the length of the topic.
    private static void MatchBelow<TVisitor>(Node node, ReadOnlySpan<char> rest, bool skipWildcards, ref TVisitor visitor)
        where TVisitor : ISubscriptionVisitor<TValue>, allows ref struct
    {
        while (true)
        {
            var level = TopicMatcher.NextLevel(ref rest, out bool hasMore);
            if (!skipWildcards)
            {
                if (node.MultiLevel is { } multiLevel)
                {
                    VisitSubscribers(multiLevel, ref visitor);
                }

                if (node.SingleLevel is { } singleLevel)
                {
                    if (hasMore)
                    {
                        // A filter of tens of thousands of '+' levels must not take the process down
                        // with a stack overflow; this throws a catchable exception instead.
                        RuntimeHelpers.EnsureSufficientExecutionStack();
                        MatchBelow(singleLevel, rest, skipWildcards: false, ref visitor);
                    }
                    else
                    {
                        VisitTopicEnd(singleLevel, ref visitor);
                    }
                }
            }

            skipWildcards = false;
            if (!node.TryGetChild(level, out var child))
            {
                return;
            }

            if (!hasMore)
            {
                VisitTopicEnd(child, ref visitor);
                return;
            }

            node = child;
        }
    }

    // The topic's last level is this node: its own filters match, and so does a '#' right below it,
    // because '#' also matches the parent level ("sport/#" matches "sport") [MQTT-4.7.1-2].
    private static void VisitTopicEnd<TVisitor>(Node node, ref TVisitor visitor)
        where TVisitor : ISubscriptionVisitor<TValue>, allows ref struct
    {
        VisitSubscribers(node, ref visitor);
        if (node.MultiLevel is { } multiLevel)
        {
            VisitSubscribers(multiLevel, ref visitor);
        }
    }

    private static void VisitSubscribers<TVisitor>(Node node, ref TVisitor visitor)
        where TVisitor : ISubscriptionVisitor<TValue>, allows ref struct
    {
        foreach (ref readonly var subscriber in node.Subscribers.AsSpan())
        {
            visitor.Visit(subscriber.ClientId, subscriber.Value, shareName: null);
        }

        foreach (var group in node.SharedGroups)
        {
            // Each matching group delivers a message to exactly one of its members.
            if (group.TryPickMember(ref visitor, out var member))
            {
                visitor.Visit(member.ClientId, member.Value, group.ShareName);
            }
        }
    }

    // Number of trie nodes below the root; lets tests check that unsubscribing prunes.
    internal int CountNodes()
    {
        int count = 0;
        var pending = new Stack<Node>();
        pending.Push(_root);
        while (pending.TryPop(out var node))
        {
            foreach (var child in node.EnumerateChildren())
            {
                count++;
                pending.Push(child);
            }
        }

        return count;
    }

    private bool RemoveLocked(ReadOnlySpan<char> topicFilter, string? shareName, string clientId)
    {
        var node = _root;
        var rest = topicFilter;
        bool hasMore = true;
        while (hasMore)
        {
            if (!node.TryGetChildForFilterLevel(TopicMatcher.NextLevel(ref rest, out hasMore), out var child))
            {
                return false;
            }

            node = child;
        }

        bool removed = shareName is null
            ? node.RemoveSubscriber(clientId)
            : node.RemoveSharedMember(shareName, clientId);
        if (!removed)
        {
            return false;
        }

        Volatile.Write(ref _count, _count - 1);

        // Empty nodes would otherwise accumulate forever with clients that subscribe to unique topics.
        while (node.Parent is { } parent && node.IsEmpty)
        {
            parent.RemoveChild(node);
            node = parent;
        }

        return true;
    }

    // Splits "$share/{ShareName}/{filter}" [MQTT-4.8.2]. The codec has already validated the filter
    // [MQTT-4.8.2-1], [MQTT-4.8.2-2]; a malformed shared filter here is a caller bug.
    private static string? SplitShared(string filter, out ReadOnlySpan<char> topicFilter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        if (!filter.StartsWith(SharePrefix, StringComparison.Ordinal))
        {
            topicFilter = filter;
            return null;
        }

        var rest = filter.AsSpan(SharePrefix.Length);
        int slash = rest.IndexOf('/');
        if (slash <= 0 || slash == rest.Length - 1)
        {
            throw new ArgumentException($"'{filter}' is not a valid shared subscription filter.", nameof(filter));
        }

        topicFilter = rest[(slash + 1)..];
        return rest[..slash].ToString();
    }
}
