using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace Broker.Routing;

internal sealed partial class SubscriptionTree<TValue>
{
    private readonly struct Subscriber(string clientId, TValue value)
    {
        public readonly string ClientId = clientId;
        public readonly TValue Value = value;
    }

    // One filter level. Every mutable field is written only under the tree's write lock and read
    // without it; a write always publishes a complete new object (copy-on-write arrays, fully built
    // child nodes), so a matcher sees either the old or the new state, never a half-built one.
    private sealed class Node(Node? parent, string level)
    {
        public readonly Node? Parent = parent;

        // "+" for SingleLevel, "#" for MultiLevel, otherwise the literal level: filters never hold a literal "+" or "#".
        public readonly string Level = level;

        // Created on first literal child: most nodes are leaves and a dictionary is not small.
        private volatile ConcurrentDictionary<string, Node>? _children;
        private volatile Node? _singleLevel;
        private volatile Node? _multiLevel;
        private volatile SubscriberList _subscribers = SubscriberList.Empty;
        private volatile SharedGroup[] _sharedGroups = [];

        public Node? SingleLevel => _singleLevel;

        public Node? MultiLevel => _multiLevel;

        public SubscriberList Subscribers => _subscribers;

        public SharedGroup[] SharedGroups => _sharedGroups;

        public bool IsEmpty =>
            _subscribers.Count == 0 && _sharedGroups.Length == 0 && _singleLevel is null && _multiLevel is null &&
            _children is null;

        public IEnumerable<Node> EnumerateChildren()
        {
            if (_singleLevel is { } singleLevel)
            {
                yield return singleLevel;
            }

            if (_multiLevel is { } multiLevel)
            {
                yield return multiLevel;
            }

            if (_children is { } children)
            {
                foreach (var (_, child) in children)
                {
                    yield return child;
                }
            }
        }

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

        public bool TryGetChildForFilterLevel(ReadOnlySpan<char> level, [NotNullWhen(true)] out Node? child)
        {
            child = level switch
            {
                "+" => _singleLevel,
                "#" => _multiLevel,
                _ => TryGetChild(level, out var literal) ? literal : null,
            };
            return child is not null;
        }

        // Write lock held.
        public Node GetOrAddChild(ReadOnlySpan<char> level)
        {
            if (level is "+")
            {
                return _singleLevel ??= new Node(this, "+");
            }

            if (level is "#")
            {
                return _multiLevel ??= new Node(this, "#");
            }

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
            switch (child.Level)
            {
                case "+":
                    _singleLevel = null;
                    break;
                case "#":
                    _multiLevel = null;
                    break;
                default:
                    var children = _children;
                    if (children is not null && children.TryRemove(child.Level, out _) && children.IsEmpty)
                    {
                        _children = null;
                    }

                    break;
            }
        }

        // Write lock held. Returns true if the client had no subscription here yet.
        public bool SetSubscriber(string clientId, TValue value)
        {
            _subscribers = _subscribers.With(clientId, value, out bool added);
            return added;
        }

        // Write lock held.
        public bool RemoveSubscriber(string clientId)
        {
            var remaining = _subscribers.Without(clientId);
            if (remaining is null)
            {
                return false;
            }

            _subscribers = remaining;
            return true;
        }

        // Write lock held.
        public bool SetSharedMember(string shareName, string clientId, TValue value)
        {
            var groups = _sharedGroups;
            int index = IndexOfGroup(groups, shareName);
            if (index >= 0)
            {
                return groups[index].SetMember(clientId, value);
            }

            var group = new SharedGroup(shareName);
            group.SetMember(clientId, value);
            _sharedGroups = [.. groups, group];
            return true;
        }

        // Write lock held.
        public bool RemoveSharedMember(string shareName, string clientId)
        {
            var groups = _sharedGroups;
            int index = IndexOfGroup(groups, shareName);
            if (index < 0 || !groups[index].RemoveMember(clientId, out bool nowEmpty))
            {
                return false;
            }

            if (nowEmpty)
            {
                _sharedGroups = [.. groups.AsSpan(0, index), .. groups.AsSpan(index + 1)];
            }

            return true;
        }

        private static int IndexOfGroup(SharedGroup[] groups, string shareName)
        {
            for (int i = 0; i < groups.Length; i++)
            {
                if (string.Equals(groups[i].ShareName, shareName, StringComparison.Ordinal))
                {
                    return i;
                }
            }

            return -1;
        }
    }

    // The members of one (share name, filter) pair [MQTT-4.8.2].
    private sealed class SharedGroup(string shareName)
    {
        public readonly string ShareName = shareName;

        // Written under the tree's write lock, copy-on-write. A group whose last member leaves is
        // unlinked from its node instead of being emptied, so matchers that already hold it still
        // find a member to deliver to.
        private volatile SubscriberList _members = SubscriberList.Empty;

        // Shared by all publishing threads; wraps around harmlessly (used as unsigned).
        private int _turn = -1;

        // Round-robin from the next turn, skipping members the visitor does not prefer (offline clients);
        // if it prefers none, the round-robin member takes the message (its session queues it).
        public bool TryPickMember<TVisitor>(ref TVisitor visitor, out Subscriber member)
            where TVisitor : ISubscriptionVisitor<TValue>, allows ref struct
        {
            var members = _members;
            int count = members.Count;
            if (count == 0)
            {
                member = default;
                return false;
            }

            uint turn = (uint)Interlocked.Increment(ref _turn);
            int start = (int)(turn % (uint)count);
            for (int i = 0; i < count; i++)
            {
                ref readonly var candidate = ref members.Items[(start + i) % count];
                if (visitor.PrefersSharedMember(candidate.Value))
                {
                    member = candidate;
                    return true;
                }
            }

            member = members.Items[start];
            return true;
        }

        // Write lock held.
        public bool SetMember(string clientId, TValue value)
        {
            _members = _members.With(clientId, value, out bool added);
            return added;
        }

        // Write lock held.
        public bool RemoveMember(string clientId, out bool nowEmpty)
        {
            var remaining = _members.Without(clientId);
            if (remaining is null)
            {
                nowEmpty = false;
                return false;
            }

            nowEmpty = remaining.Count == 0;
            if (!nowEmpty)
            {
                _members = remaining;
            }

            return true;
        }
    }

    // A snapshot of the subscribers of one node or shared group, replaced as a whole on every change.
    // Invariant: a slot of Items is written once, before the first snapshot whose Count covers it is
    // published, and never again. Readers therefore iterate without a lock, and appending reuses
    // spare capacity, so N clients subscribing to one filter cost O(N) in total, not O(N^2).
    // Replacing or removing an entry copies, because older snapshots may still be iterated.
    private sealed class SubscriberList(Subscriber[] items, int count)
    {
        public static readonly SubscriberList Empty = new([], 0);

        public readonly Subscriber[] Items = items;
        public readonly int Count = count;

        public ReadOnlySpan<Subscriber> AsSpan() => new(Items, 0, Count);

        // Write lock held, on the current snapshot only.
        public SubscriberList With(string clientId, TValue value, out bool added)
        {
            int index = IndexOf(clientId);
            added = index < 0;
            if (!added)
            {
                var replaced = AsSpan().ToArray();
                replaced[index] = new Subscriber(clientId, value);
                return new SubscriberList(replaced, Count);
            }

            var items = Items;
            if (Count == items.Length)
            {
                items = new Subscriber[Math.Max(1, Count * 2)];
                AsSpan().CopyTo(items);
            }

            items[Count] = new Subscriber(clientId, value);
            return new SubscriberList(items, Count + 1);
        }

        // Write lock held, on the current snapshot only. Null if the client is not in the list.
        public SubscriberList? Without(string clientId)
        {
            int index = IndexOf(clientId);
            if (index < 0)
            {
                return null;
            }

            if (Count == 1)
            {
                return Empty;
            }

            Subscriber[] remaining = [.. AsSpan()[..index], .. AsSpan()[(index + 1)..]];
            return new SubscriberList(remaining, remaining.Length);
        }

        private int IndexOf(string clientId)
        {
            var subscribers = AsSpan();
            for (int i = 0; i < subscribers.Length; i++)
            {
                if (string.Equals(subscribers[i].ClientId, clientId, StringComparison.Ordinal))
                {
                    return i;
                }
            }

            return -1;
        }
    }
}
