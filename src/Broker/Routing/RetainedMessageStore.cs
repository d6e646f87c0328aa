using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Broker.Routing;

/// <summary>What <see cref="RetainedMessageStore{TMessage}.Set"/> did.</summary>
internal enum RetainOutcome
{
    /// <summary>Stored for a topic that had no retained message.</summary>
    Stored,
    /// <summary>Replaced the topic's retained message [MQTT-3.3.1-5].</summary>
    Replaced,
    /// <summary>Deleted the topic's retained message (empty payload) [MQTT-3.3.1-10].</summary>
    Deleted,
    /// <summary>Nothing to delete.</summary>
    NothingToDelete,
    /// <summary>Not stored: the store holds <c>MaxRetainedMessages</c> already and the topic had none.</summary>
    RefusedCount,
    /// <summary>
    /// Not stored: it would take the store past <c>MaxRetainedBytes</c>. If the topic had a retained
    /// message it is deleted, so that a new subscriber never gets an older message than one accepted.
    /// </summary>
    RefusedBytes,
}

/// <summary>
/// Retained messages, one per topic, in a trie keyed by topic level so that a new subscription
/// walks only the branches its filter can reach instead of scanning every retained message.
/// </summary>
/// <remarks>
/// Reads take no lock. Writes take one lock for the whole store, which keeps node creation, splitting,
/// merging and pruning race-free; every write publishes a complete object, so readers see old or new
/// state. The trie is path-compressed (a node's label is every level down to the next branch or
/// message), so memory is O(bytes of the topics stored), however many levels they have.
/// The store holds at most <see cref="RetainedStoreLimits.MaxMessages"/> messages and
/// <see cref="RetainedStoreLimits.MaxBytes"/> bytes as measured by the size function; replacing a
/// topic's message always passes the count limit.
/// </remarks>
internal sealed class RetainedMessageStore<TMessage>
    where TMessage : class
{
    private readonly Node _root = new(string.Empty);
    private readonly Lock _writeLock = new();
    private readonly List<Node> _path = [];
    private readonly RetainedStoreLimits _limits;
    private readonly Func<TMessage, long> _sizeOf;
    private int _count;
    private long _bytes;
    private long _refused;

    /// <summary>A store without limits, every message counted as 0 bytes (tests).</summary>
    public RetainedMessageStore()
        : this(RetainedStoreLimits.None, static _ => 0)
    {
    }

    public RetainedMessageStore(RetainedStoreLimits limits, Func<TMessage, long> sizeOf)
    {
        _limits = limits;
        _sizeOf = sizeOf;
    }

    public int Count => Volatile.Read(ref _count);

    /// <summary>Sum of the sizes of the stored messages.</summary>
    public long Bytes => Volatile.Read(ref _bytes);

    /// <summary>Messages refused since start (count or byte limit).</summary>
    public long Refused => Volatile.Read(ref _refused);

    /// <summary>
    /// Stores <paramref name="message"/> as the retained message of <paramref name="topic"/>,
    /// replacing the previous one [MQTT-3.3.1-5]; null deletes it (a retained PUBLISH with an empty
    /// payload) [MQTT-3.3.1-10], [MQTT-3.3.1-11].
    /// </summary>
    public RetainOutcome Set(string topic, TMessage? message)
    {
        ArgumentNullException.ThrowIfNull(topic);
        long size = message is null ? 0 : _sizeOf(message);
        lock (_writeLock)
        {
            if (message is null)
            {
                return RemoveLocked(topic) ? RetainOutcome.Deleted : RetainOutcome.NothingToDelete;
            }

            var existing = FindPathLocked(topic) ? _path[^1] : null;
            bool had = existing?.Message is not null;
            long oldSize = had ? existing!.Size : 0;
            if (!had && _count >= _limits.MaxMessages)
            {
                Volatile.Write(ref _refused, _refused + 1);
                return RetainOutcome.RefusedCount;
            }

            if (_bytes - oldSize + size > _limits.MaxBytes)
            {
                Volatile.Write(ref _refused, _refused + 1);
                if (had)
                {
                    RemoveLocked(topic);
                }

                return RetainOutcome.RefusedBytes;
            }

            var node = existing ?? GetOrAddNode(topic);
            node.Size = size;
            node.Message = message;
            Volatile.Write(ref _bytes, _bytes - oldSize + size);
            if (!had)
            {
                Volatile.Write(ref _count, _count + 1);
                return RetainOutcome.Stored;
            }

            return RetainOutcome.Replaced;
        }
    }

    public bool TryGet(ReadOnlySpan<char> topic, [NotNullWhen(true)] out TMessage? message)
    {
        var node = FindTopicNode(topic);
        message = node?.Message;
        return message is not null;
    }

    /// <summary>
    /// Adds to <paramref name="into"/> every retained message whose topic matches
    /// <paramref name="filter"/> (a plain filter, without a $share prefix).
    /// </summary>
    public void Match(ReadOnlySpan<char> filter, ICollection<TMessage> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        MatchBelow(_root, filter, atRoot: true, into);
    }

    // Number of trie nodes below the root; lets tests check that deleting prunes and merges.
    internal int CountNodes()
    {
        int count = 0;
        var pending = new Stack<Node>();
        pending.Push(_root);
        while (pending.TryPop(out var node))
        {
            foreach (var (_, child) in node.Children)
            {
                count++;
                pending.Push(child);
            }
        }

        return count;
    }

    // `filter` holds at least one level and is matched against the topics below `node`.
    // Literal filter levels are followed in a loop; each '+' level recurses once per child it tries.
    private static void MatchBelow(Node node, ReadOnlySpan<char> filter, bool atRoot, ICollection<TMessage> into)
    {
        while (true)
        {
            var level = TopicPath.FirstLevel(filter);
            if (level is "#")
            {
                // '#' matches the parent level too [MQTT-4.7.1-2]; at the root it must skip topics
                // starting with '$' [MQTT-4.7.2-1].
                AddIfPresent(node.Message, into);
                AddDescendants(node, skipDollarChildren: atRoot, into);
                return;
            }

            if (level is "+")
            {
                foreach (var (_, child) in node.Children)
                {
                    if (atRoot && child.Label.StartsWith('$'))
                    {
                        continue; // [MQTT-4.7.2-1]
                    }

                    if (FollowLabel(child, filter, out var below, into))
                    {
                        RuntimeHelpers.EnsureSufficientExecutionStack();
                        MatchBelow(child, below, atRoot: false, into);
                    }
                }

                return;
            }

            if (!node.TryGetChild(level, out var literal) || !FollowLabel(literal, filter, out filter, into))
            {
                return;
            }

            node = literal;
            atRoot = false;
        }
    }

    // Matches the filter's levels against the levels of `child`'s label, whose first level the caller
    // has matched or is matching with '+'. Levels inside a label hold no message. Returns true, with
    // the rest of the filter, when the filter goes on below `child`; otherwise it has added what
    // matched (the child's message when the filter ends with the label; everything from the child
    // down when it reaches a '#').
    private static bool FollowLabel(Node child, ReadOnlySpan<char> filter, out ReadOnlySpan<char> below, ICollection<TMessage> into)
    {
        below = default;
        ReadOnlySpan<char> label = child.Label;
        while (true)
        {
            var labelLevel = TopicMatcher.NextLevel(ref label, out bool labelHasMore);
            var filterLevel = TopicMatcher.NextLevel(ref filter, out bool filterHasMore);
            if (filterLevel is "#")
            {
                // The level before is inside the label (no message there) or is the caller's node,
                // which the caller's own '#' check covers: '#' here matches this level and below.
                AddIfPresent(child.Message, into);
                AddDescendants(child, skipDollarChildren: false, into);
                return false;
            }

            if (filterLevel is not "+" && !filterLevel.SequenceEqual(labelLevel))
            {
                return false;
            }

            if (!labelHasMore)
            {
                if (!filterHasMore)
                {
                    AddIfPresent(child.Message, into);
                    return false;
                }

                below = filter;
                return true;
            }

            if (!filterHasMore)
            {
                return false;
            }
        }
    }

    // Iterative: a trie may be deep.
    private static void AddDescendants(Node start, bool skipDollarChildren, ICollection<TMessage> into)
    {
        var pending = new Stack<Node>();
        foreach (var (_, child) in start.Children)
        {
            if (!(skipDollarChildren && child.Label.StartsWith('$')))
            {
                pending.Push(child);
            }
        }

        while (pending.TryPop(out var node))
        {
            AddIfPresent(node.Message, into);
            foreach (var (_, child) in node.Children)
            {
                pending.Push(child);
            }
        }
    }

    private static void AddIfPresent(TMessage? message, ICollection<TMessage> into)
    {
        if (message is not null)
        {
            into.Add(message);
        }
    }

    private Node? FindTopicNode(ReadOnlySpan<char> topic)
    {
        var node = _root;
        var rest = topic;
        while (true)
        {
            if (!node.TryGetChild(TopicPath.FirstLevel(rest), out var child) ||
                !TopicPath.TryFollow(child.Label, rest, out rest, out bool hasMore))
            {
                return null;
            }

            if (!hasMore)
            {
                return child;
            }

            node = child;
        }
    }

    // Write lock held. Walks down `topic`, creating or splitting one node at most.
    private Node GetOrAddNode(ReadOnlySpan<char> topic)
    {
        var node = _root;
        var rest = topic;
        while (true)
        {
            Node child;
            int consumed;
            if (!node.TryGetChild(TopicPath.FirstLevel(rest), out var existing))
            {
                child = new Node(rest.ToString());
                node.AddChild(child);
                return child;
            }

            consumed = TopicPath.CommonLevels(existing.Label, rest);
            if (consumed == existing.Label.Length)
            {
                child = existing;
            }
            else
            {
                // Fully built before it replaces the old node in one dictionary write.
                child = new Node(existing.Label[..consumed]);
                child.AddChild(existing.WithLabel(existing.Label[(consumed + 1)..]));
                node.ReplaceChild(child);
            }

            node = child;
            if (consumed == rest.Length)
            {
                return node;
            }

            rest = rest[(consumed + 1)..];
        }
    }

    // Write lock held. Fills _path with the nodes from the root to the node of `topic`; false if there is none.
    private bool FindPathLocked(ReadOnlySpan<char> topic)
    {
        _path.Clear();
        var node = _root;
        var rest = topic;
        while (true)
        {
            _path.Add(node);
            if (!node.TryGetChild(TopicPath.FirstLevel(rest), out var child) ||
                !TopicPath.TryFollow(child.Label, rest, out rest, out bool hasMore))
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

    // Write lock held.
    private bool RemoveLocked(string topic)
    {
        if (!FindPathLocked(topic) || _path[^1].Message is null)
        {
            return false;
        }

        var node = _path[^1];
        node.Message = null;
        Volatile.Write(ref _count, _count - 1);
        Volatile.Write(ref _bytes, _bytes - node.Size);
        node.Size = 0;

        // Without pruning, every topic ever retained would keep its nodes forever.
        int depth = _path.Count - 1;
        while (depth > 0 && node.IsEmpty)
        {
            var parent = _path[depth - 1];
            parent.RemoveChild(node);
            node = parent;
            depth--;
        }

        // A node left without a message and with one child joins it, so churn leaves no pass-through chain.
        if (depth > 0 && node.IsPassThrough(out var only))
        {
            _path[depth - 1].ReplaceChild(only.WithLabel(string.Concat(node.Label, "/", only.Label)));
        }

        return true;
    }

    // One or more topic levels joined by '/'; children keyed by the first level of their label.
    // The label never changes. Written under the store's write lock, read without it.
    private sealed class Node(string label)
    {
        private static readonly ConcurrentDictionary<string, Node> NoChildren = new(StringComparer.Ordinal);

        public readonly string Label = label;

        private volatile ConcurrentDictionary<string, Node>? _children;
        private volatile TMessage? _message;

        public TMessage? Message
        {
            get => _message;
            set => _message = value;
        }

        // The message's size as counted against MaxRetainedBytes. Write lock held.
        public long Size { get; set; }

        // Safe to enumerate while writers add and remove children.
        public ConcurrentDictionary<string, Node> Children => _children ?? NoChildren;

        public bool IsEmpty => _message is null && _children is null;

        public bool TryGetChild(ReadOnlySpan<char> firstLevel, [NotNullWhen(true)] out Node? child)
        {
            var children = _children;
            if (children is null)
            {
                child = null;
                return false;
            }

            return children.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(firstLevel, out child);
        }

        // Write lock held.
        public bool IsPassThrough([NotNullWhen(true)] out Node? onlyChild)
        {
            onlyChild = null;
            if (_message is not null || _children is not { Count: 1 } children)
            {
                return false;
            }

            foreach (var (_, child) in children)
            {
                onlyChild = child;
            }

            return onlyChild is not null;
        }

        // Write lock held. A node with this node's contents under another label.
        public Node WithLabel(string label) => new(label) { _children = _children, _message = _message, Size = Size };

        // Write lock held. No child with the same first level exists.
        public void AddChild(Node child)
        {
            var children = _children ?? new ConcurrentDictionary<string, Node>(concurrencyLevel: 1, capacity: 4, StringComparer.Ordinal);
            var firstLevel = TopicPath.FirstLevel(child.Label);
            string key = firstLevel.Length == child.Label.Length ? child.Label : firstLevel.ToString();
            children[key] = child;
            _children = children;
        }

        // Write lock held. Swaps the child with the same first level for `child` in one write.
        public void ReplaceChild(Node child) =>
            _children!.GetAlternateLookup<ReadOnlySpan<char>>()[TopicPath.FirstLevel(child.Label)] = child;

        // Write lock held.
        public void RemoveChild(Node child)
        {
            var children = _children;
            if (children is not null &&
                children.GetAlternateLookup<ReadOnlySpan<char>>().TryRemove(TopicPath.FirstLevel(child.Label), out _) &&
                children.IsEmpty)
            {
                _children = null;
            }
        }
    }
}

/// <summary>Bounds of the retained store: <c>Broker:Limits:MaxRetainedMessages</c> and <c>MaxRetainedBytes</c>.</summary>
internal readonly record struct RetainedStoreLimits(int MaxMessages, long MaxBytes)
{
    public static RetainedStoreLimits None => new(int.MaxValue, long.MaxValue);
}
