using System.Runtime.CompilerServices;

namespace Broker.Routing;

/// <summary>
/// Topic trie of subscriptions, with '+', '#' and shared subscriptions ($share/{ShareName}/{filter}).
/// </summary>
/// <remarks>
/// Matching (every PUBLISH, many threads at once) takes no lock and allocates nothing: it reads
/// nodes whose labels never change and whose other fields are only ever replaced by fully built
/// objects. Subscribe, Unsubscribe and RemoveClient take one lock for the whole tree, which keeps node
/// creation, splitting, merging and pruning race-free; they are far rarer than publishes and never
/// block a matcher.
/// The trie is path-compressed: a run of levels ('+' included, '#' always a node of its own) that
/// nothing branches from or subscribes to in between is one node whose label holds all of them, so a
/// filter costs O(its length) memory however many levels it has, and the subscribers of one node
/// cost O(1) amortized per change (<see cref="SlotList{T}"/>).
/// </remarks>
internal sealed partial class SubscriptionTree<TValue>
{
    private const string SharePrefix = "$share/";

    private readonly Node _root = new(string.Empty);
    private readonly Lock _writeLock = new();

    // Scratch for writers (lock held): the nodes from the root down to the one being changed.
    private readonly List<Node> _path = [];
    private int _count;

    // Counts additions (lock held); a matcher reads it once and ignores entries added after (SlotList).
    private long _sequence;

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
            var node = GetOrAddNode(topicFilter);
            long sequence = _sequence + 1;
            bool added = shareName is null
                ? node.SetSubscriber(clientId, value, sequence)
                : node.SetSharedMember(shareName, clientId, value, sequence);
            Volatile.Write(ref _sequence, sequence);
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
        long sequence = Volatile.Read(ref _sequence);
        MatchBelow(_root, topic, skipWildcards: isDollarTopic, sequence, ref visitor);
    }

    // `rest` is the part of the topic below `node`: at least one level (possibly empty).
    // Literal labels are followed in a loop; only '+' branches recurse, so the recursion depth is
    // bounded by the '+' levels of the stored filters, never by the length of the topic.
    private static void MatchBelow<TVisitor>(Node node, ReadOnlySpan<char> rest, bool skipWildcards, long sequence, ref TVisitor visitor)
        where TVisitor : ISubscriptionVisitor<TValue>, allows ref struct
    {
        while (true)
        {
            var level = TopicPath.FirstLevel(rest);
            if (!skipWildcards)
            {
                if (node.MultiLevel is { } multiLevel)
                {
                    VisitSubscribers(multiLevel, sequence, ref visitor);
                }

                if (node.SingleLevel is { } singleLevel && FollowTopic(singleLevel, rest, out var below, out bool more))
                {
                    if (more)
                    {
                        // A filter of tens of thousands of '+' levels must not take the process down
                        // with a stack overflow; this throws a catchable exception instead.
                        RuntimeHelpers.EnsureSufficientExecutionStack();
                        MatchBelow(singleLevel, below, skipWildcards: false, sequence, ref visitor);
                    }
                    else
                    {
                        VisitTopicEnd(singleLevel, sequence, ref visitor);
                    }
                }
            }

            skipWildcards = false;

            if (!node.TryGetChild(level, out var child) || !FollowTopic(child, rest, out rest, out bool hasMore))
            {
                return;
            }

            if (!hasMore)
            {
                VisitTopicEnd(child, sequence, ref visitor);
                return;
            }

            node = child;
        }
    }

    // Whether the topic (`rest`, at least one level) goes through all of `child`'s label; if so `below`
    // is what follows. The levels inside a label have no subscribers and no other children, so a topic
    // that ends inside it or leaves it matches nothing more there.
    private static bool FollowTopic(Node child, ReadOnlySpan<char> rest, out ReadOnlySpan<char> below, out bool hasMore)
    {
        if (!child.HasWildcard)
        {
            return TopicPath.TryFollow(child.Label, rest, out below, out hasMore);
        }

        ReadOnlySpan<char> label = child.Label;
        while (true)
        {
            var labelLevel = TopicMatcher.NextLevel(ref label, out bool labelHasMore);
            var topicLevel = TopicMatcher.NextLevel(ref rest, out bool topicHasMore);
            if (labelLevel is not "+" && !labelLevel.SequenceEqual(topicLevel))
            {
                break;
            }

            if (!labelHasMore)
            {
                below = rest;
                hasMore = topicHasMore;
                return true;
            }

            if (!topicHasMore)
            {
                break;
            }
        }

        below = default;
        hasMore = false;
        return false;
    }

    // The topic's last level is this node: its own filters match, and so does a '#' right below it,
    // because '#' also matches the parent level ("sport/#" matches "sport") [MQTT-4.7.1-2].
    private static void VisitTopicEnd<TVisitor>(Node node, long sequence, ref TVisitor visitor)
        where TVisitor : ISubscriptionVisitor<TValue>, allows ref struct
    {
        VisitSubscribers(node, sequence, ref visitor);
        if (node.MultiLevel is { } multiLevel)
        {
            VisitSubscribers(multiLevel, sequence, ref visitor);
        }
    }

    private static void VisitSubscribers<TVisitor>(Node node, long sequence, ref TVisitor visitor)
        where TVisitor : ISubscriptionVisitor<TValue>, allows ref struct
    {
        foreach (var subscriber in node.Subscribers)
        {
            if (subscriber is not null && subscriber.Sequence <= sequence)
            {
                visitor.Visit(subscriber.ClientId, subscriber.Value, shareName: null);
            }
        }

        foreach (var group in node.SharedGroups)
        {
            // Each matching group delivers a message to exactly one of its members.
            if (group is not null && group.Sequence <= sequence && group.TryPickMember(sequence, ref visitor, out var member))
            {
                visitor.Visit(member.ClientId, member.Value, group.ShareName);
            }
        }
    }

    // Number of trie nodes below the root; lets tests check that unsubscribing prunes and merges.
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

    // Slots of the subscriber array of the node for this plain filter (0 if none); lets tests check
    // that mass unsubscribing gives memory back.
    internal int SubscriberCapacity(string filter)
    {
        lock (_writeLock)
        {
            return FindPathLocked(filter) ? _path[^1].SubscriberCapacity : 0;
        }
    }

    // Write lock held. Walks down `filter`, creating and splitting nodes as needed: a new branch is
    // one node holding every level up to a trailing '#', and an existing label that the filter
    // leaves part-way is split in two where it does.
    private Node GetOrAddNode(ReadOnlySpan<char> filter)
    {
        var node = _root;
        var rest = filter;
        while (true)
        {
            var level = TopicPath.FirstLevel(rest);
            Node child;
            int consumed;
            if (level is "#")
            {
                child = node.GetOrAddMultiLevel();
                consumed = 1;
            }
            else if (node.GetChild(level) is not { } existing)
            {
                consumed = rest.EndsWith("/#") ? rest.Length - 2 : rest.Length;
                child = new Node(rest[..consumed].ToString());
                node.AddChild(child);
            }
            else
            {
                consumed = TopicPath.CommonLevels(existing.Label, rest);
                if (consumed == existing.Label.Length)
                {
                    child = existing;
                }
                else
                {
                    // Fully built before it replaces the existing node in one write: a matcher sees
                    // the old node (whose label still matches what it always matched) or the new pair.
                    child = new Node(existing.Label[..consumed]);
                    child.AddChild(existing.WithLabel(existing.Label[(consumed + 1)..]));
                    node.ReplaceChild(child);
                }
            }

            node = child;
            if (consumed == rest.Length)
            {
                return node;
            }

            rest = rest[(consumed + 1)..];
        }
    }

    // Write lock held. Fills _path with the nodes from the root to the node of `filter`; false if there is none.
    private bool FindPathLocked(ReadOnlySpan<char> filter)
    {
        _path.Clear();
        var node = _root;
        var rest = filter;
        while (true)
        {
            _path.Add(node);
            // Filters are compared as text here: a '+' in a label stands for a '+' in the filter.
            var child = node.GetChild(TopicPath.FirstLevel(rest));
            if (child is null || !TopicPath.TryFollow(child.Label, rest, out rest, out bool hasMore))
            {
                return false;
            }

            if (!hasMore)
            {
                _path.Add(child);
                return true;
            }

            node = child;
        }
    }

    private bool RemoveLocked(ReadOnlySpan<char> topicFilter, string? shareName, string clientId)
    {
        if (!FindPathLocked(topicFilter))
        {
            return false;
        }

        var node = _path[^1];
        bool removed = shareName is null
            ? node.RemoveSubscriber(clientId)
            : node.RemoveSharedMember(shareName, clientId);
        if (!removed)
        {
            return false;
        }

        Volatile.Write(ref _count, _count - 1);

        // Empty nodes would otherwise accumulate forever with clients that subscribe to unique topics.
        int depth = _path.Count - 1;
        while (depth > 0 && node.IsEmpty)
        {
            var parent = _path[depth - 1];
            parent.RemoveChild(node);
            node = parent;
            depth--;
        }

        // A node left with nothing but one child joins it, so that subscribe/unsubscribe churn cannot
        // leave a chain of pass-through nodes behind.
        if (depth > 0 && node.IsPassThrough(out var only))
        {
            _path[depth - 1].ReplaceChild(only.WithLabel(string.Concat(node.Label, "/", only.Label)));
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
