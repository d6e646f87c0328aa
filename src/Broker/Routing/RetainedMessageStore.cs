using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Broker.Routing;

/// <summary>
/// Retained messages, one per topic, in a trie keyed by topic level so that a new subscription
/// walks only the branches its filter can reach instead of scanning every retained message.
/// </summary>
/// <remarks>
/// Reads take no lock. Writes take one lock for the whole store, which keeps node creation and
/// pruning race-free; every write publishes a complete object, so readers see old or new state.
/// </remarks>
internal sealed class RetainedMessageStore<TMessage>
    where TMessage : class
{
    private readonly Node _root = new(parent: null, level: string.Empty);
    private readonly Lock _writeLock = new();
    private int _count;

    public int Count => Volatile.Read(ref _count);

    /// <summary>
    /// Stores <paramref name="message"/> as the retained message of <paramref name="topic"/>,
    /// replacing the previous one [MQTT-3.3.1-5]; null deletes it (a retained PUBLISH with an empty
    /// payload) [MQTT-3.3.1-10], [MQTT-3.3.1-11].
    /// </summary>
    public void Set(string topic, TMessage? message)
    {
        ArgumentNullException.ThrowIfNull(topic);
        lock (_writeLock)
        {
            if (message is null)
            {
                RemoveLocked(topic);
                return;
            }

            var node = _root;
            ReadOnlySpan<char> rest = topic;
            bool hasMore = true;
            while (hasMore)
            {
                node = node.GetOrAddChild(TopicMatcher.NextLevel(ref rest, out hasMore));
            }

            if (node.Message is null)
            {
                Volatile.Write(ref _count, _count + 1);
            }

            node.Message = message;
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

    // Number of trie nodes below the root; lets tests check that deleting prunes.
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

    private static void MatchBelow(Node node, ReadOnlySpan<char> rest, bool atRoot, ICollection<TMessage> into)
    {
        while (true)
        {
            var level = TopicMatcher.NextLevel(ref rest, out bool hasMore);
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
                foreach (var (childLevel, child) in node.Children)
                {
                    if (atRoot && childLevel.StartsWith('$'))
                    {
                        continue; // [MQTT-4.7.2-1]
                    }

                    if (hasMore)
                    {
                        RuntimeHelpers.EnsureSufficientExecutionStack();
                        MatchBelow(child, rest, atRoot: false, into);
                    }
                    else
                    {
                        AddIfPresent(child.Message, into);
                    }
                }

                return;
            }

            if (!node.TryGetChild(level, out var literal))
            {
                return;
            }

            if (!hasMore)
            {
                AddIfPresent(literal.Message, into);
                return;
            }

            node = literal;
            atRoot = false;
        }
    }

    // Iterative: a topic may have tens of thousands of levels.
    private static void AddDescendants(Node start, bool skipDollarChildren, ICollection<TMessage> into)
    {
        var pending = new Stack<Node>();
        foreach (var (level, child) in start.Children)
        {
            if (!(skipDollarChildren && level.StartsWith('$')))
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
        bool hasMore = true;
        while (hasMore)
        {
            if (!node.TryGetChild(TopicMatcher.NextLevel(ref rest, out hasMore), out var child))
            {
                return null;
            }

            node = child;
        }

        return node;
    }

    private void RemoveLocked(string topic)
    {
        var node = FindTopicNode(topic);
        if (node?.Message is null)
        {
            return;
        }

        node.Message = null;
        Volatile.Write(ref _count, _count - 1);

        // Without pruning, every topic ever retained would keep its path of nodes forever.
        while (node.Parent is { } parent && node.IsEmpty)
        {
            parent.RemoveChild(node);
            node = parent;
        }
    }

    // One topic level. Written under the store's write lock, read without it.
    private sealed class Node(Node? parent, string level)
    {
        private static readonly ConcurrentDictionary<string, Node> NoChildren = new(StringComparer.Ordinal);

        public readonly Node? Parent = parent;
        public readonly string Level = level;

        private volatile ConcurrentDictionary<string, Node>? _children;
        private volatile TMessage? _message;

        public TMessage? Message
        {
            get => _message;
            set => _message = value;
        }

        // Safe to enumerate while writers add and remove children.
        public ConcurrentDictionary<string, Node> Children => _children ?? NoChildren;

        public bool IsEmpty => _message is null && _children is null;

        public bool TryGetChild(ReadOnlySpan<char> level, [NotNullWhen(true)] out Node? child)
        {
            var children = _children;
            if (children is null)
            {
                child = null;
                return false;
            }

            return children.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(level, out child);
        }

        // Write lock held.
        public Node GetOrAddChild(ReadOnlySpan<char> level)
        {
            if (TryGetChild(level, out var child))
            {
                return child;
            }

            child = new Node(this, level.ToString());
            var children = _children ?? new ConcurrentDictionary<string, Node>(concurrencyLevel: 1, capacity: 4, StringComparer.Ordinal);
            children[child.Level] = child;
            _children = children;
            return child;
        }

        // Write lock held.
        public void RemoveChild(Node child)
        {
            var children = _children;
            if (children is not null && children.TryRemove(child.Level, out _) && children.IsEmpty)
            {
                _children = null;
            }
        }
    }
}
