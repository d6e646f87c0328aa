using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace Broker.Routing;

internal sealed partial class SubscriptionTree<TValue>
{
    // Immutable once published: replacing a client's value writes a new entry into its slot.
    private sealed class Subscriber(string clientId, TValue value) : ISlotEntry
    {
        public readonly string ClientId = clientId;
        public readonly TValue Value = value;

        public string Key => ClientId;

        public long Sequence { get; set; }
    }

    // One or more filter levels. The label never changes: splitting or merging builds new nodes that
    // take over this node's contents. Every other field is written only under the tree's write lock
    // and read without it; a write always publishes a complete object (a fully built node, a new slot
    // array, an immutable entry), so a matcher sees either the old or the new state.
    private sealed class Node(string label)
    {
        // One or more levels joined by '/', where '#' is only ever a whole label. A node is its parent's
        // SingleLevel child when its label starts with a '+' level, its MultiLevel child when it is "#",
        // and otherwise sits in the parent's dictionary under its label's first level.
        public readonly string Label = label;

        // Labels without '+' are followed with one comparison instead of level by level.
        public readonly bool HasWildcard = label.Contains('+');

        // Created on first literal child: most nodes are leaves and a dictionary is not small.
        private volatile ConcurrentDictionary<string, Node>? _children;
        private volatile Node? _singleLevel;
        private volatile Node? _multiLevel;
        private SlotList<Subscriber> _subscribers;
        private SlotList<SharedGroup> _sharedGroups;

        public Node? SingleLevel => _singleLevel;

        public Node? MultiLevel => _multiLevel;

        public Subscriber?[] Subscribers => _subscribers.Slots;

        public SharedGroup?[] SharedGroups => _sharedGroups.Slots;

        public int SubscriberCapacity => _subscribers.Capacity;

        // Write lock held. Nothing subscribes here or below: the node can be pruned.
        public bool IsEmpty =>
            _subscribers.Count == 0 && _sharedGroups.Count == 0 && _singleLevel is null && _multiLevel is null && _children is null;

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

        // Write lock held. The child a filter whose next level is `firstLevel` continues in, if any.
        public Node? GetChild(ReadOnlySpan<char> firstLevel) => firstLevel switch
        {
            "+" => _singleLevel,
            "#" => _multiLevel,
            _ => TryGetChild(firstLevel, out var child) ? child : null,
        };

        // Write lock held. A node (not '#') whose only content is one child other than '#': it can join it.
        public bool IsPassThrough([NotNullWhen(true)] out Node? onlyChild)
        {
            onlyChild = null;
            if (Label is "#" || _subscribers.Count != 0 || _sharedGroups.Count != 0 || _multiLevel is not null)
            {
                return false;
            }

            var children = _children;
            if (_singleLevel is { } singleLevel)
            {
                onlyChild = children is null ? singleLevel : null;
                return onlyChild is not null;
            }

            if (children is not { Count: 1 })
            {
                return false;
            }

            foreach (var (_, child) in children)
            {
                onlyChild = child;
            }

            return onlyChild is not null;
        }

        // Write lock held. A node with this node's contents under another label (for a split or a merge).
        public Node WithLabel(string label)
        {
            var copy = new Node(label)
            {
                _children = _children,
                _singleLevel = _singleLevel,
                _multiLevel = _multiLevel,
                _subscribers = _subscribers,
                _sharedGroups = _sharedGroups,
            };
            return copy;
        }

        // Write lock held.
        public Node GetOrAddMultiLevel() => _multiLevel ??= new Node("#");

        // Write lock held. No child with the same first level exists.
        public void AddChild(Node child)
        {
            var firstLevel = TopicPath.FirstLevel(child.Label);
            if (firstLevel is "+")
            {
                _singleLevel = child;
                return;
            }

            if (firstLevel is "#")
            {
                _multiLevel = child;
                return;
            }

            var children = _children ?? new ConcurrentDictionary<string, Node>(concurrencyLevel: 1, capacity: 4, StringComparer.Ordinal);
            // A one-level label is its own key; a longer one needs its first level as a separate string.
            string key = firstLevel.Length == child.Label.Length ? child.Label : firstLevel.ToString();
            children[key] = child;
            _children = children;
        }

        // Write lock held. Swaps the child with the same first level for `child` in one write.
        public void ReplaceChild(Node child)
        {
            var firstLevel = TopicPath.FirstLevel(child.Label);
            if (firstLevel is "+")
            {
                _singleLevel = child;
            }
            else
            {
                _children!.GetAlternateLookup<ReadOnlySpan<char>>()[firstLevel] = child;
            }
        }

        // Write lock held.
        public void RemoveChild(Node child)
        {
            switch (TopicPath.FirstLevel(child.Label))
            {
                case "+":
                    _singleLevel = null;
                    break;
                case "#":
                    _multiLevel = null;
                    break;
                default:
                    var children = _children;
                    if (children is not null &&
                        children.GetAlternateLookup<ReadOnlySpan<char>>().TryRemove(TopicPath.FirstLevel(child.Label), out _) &&
                        children.IsEmpty)
                    {
                        _children = null;
                    }

                    break;
            }
        }

        // Write lock held. Returns true if the client had no subscription here yet.
        public bool SetSubscriber(string clientId, TValue value, long sequence) => _subscribers.Set(new Subscriber(clientId, value), sequence);

        // Write lock held.
        public bool RemoveSubscriber(string clientId) => _subscribers.Remove(clientId);

        // Write lock held.
        public bool SetSharedMember(string shareName, string clientId, TValue value, long sequence)
        {
            if (_sharedGroups.Find(shareName) is { } group)
            {
                return group.SetMember(clientId, value, sequence);
            }

            group = new SharedGroup(shareName);
            group.SetMember(clientId, value, sequence);
            _sharedGroups.Set(group, sequence);
            return true;
        }

        // Write lock held.
        public bool RemoveSharedMember(string shareName, string clientId)
        {
            if (_sharedGroups.Find(shareName) is not { } group || !group.RemoveMember(clientId, out bool nowEmpty))
            {
                return false;
            }

            if (nowEmpty)
            {
                _sharedGroups.Remove(shareName);
            }

            return true;
        }
    }

    // The members of one (share name, filter) pair [MQTT-4.8.2].
    private sealed class SharedGroup(string shareName) : ISlotEntry
    {
        public readonly string ShareName = shareName;

        // Written under the tree's write lock; a group whose last member leaves is unlinked from its node.
        private SlotList<Subscriber> _members;

        // Shared by all publishing threads; wraps around harmlessly (used as unsigned).
        private int _turn = -1;

        public string Key => ShareName;

        public long Sequence { get; set; }

        // Round-robin from the next turn, skipping members the visitor does not prefer (offline clients);
        // if it prefers none, the first member at or after the turn takes the message (its session
        // queues it). Empty slots are skipped: a member right after removed ones gets their turns until
        // the next compaction, which keeps them fewer than the members.
        public bool TryPickMember<TVisitor>(long sequence, ref TVisitor visitor, [NotNullWhen(true)] out Subscriber? member)
            where TVisitor : ISubscriptionVisitor<TValue>, allows ref struct
        {
            var slots = _members.Slots;
            int length = slots.Length;
            member = null;
            if (length == 0)
            {
                return false;
            }

            // The start spreads over the slots in use (the array's spare capacity would skew the turns);
            // the scan covers the whole array, so a member is found whatever the writers did meanwhile.
            int used = Math.Clamp(_members.Used, 1, length);
            uint turn = (uint)Interlocked.Increment(ref _turn);
            int start = (int)(turn % (uint)used);
            for (int i = 0; i < length; i++)
            {
                int at = start + i;
                if (slots[at < length ? at : at - length] is not { } candidate || candidate.Sequence > sequence)
                {
                    continue;
                }

                if (visitor.PrefersSharedMember(candidate.Value))
                {
                    member = candidate;
                    return true;
                }

                member ??= candidate;
            }

            return member is not null;
        }

        // Write lock held.
        public bool SetMember(string clientId, TValue value, long sequence) => _members.Set(new Subscriber(clientId, value), sequence);

        // Write lock held.
        public bool RemoveMember(string clientId, out bool nowEmpty)
        {
            bool removed = _members.Remove(clientId);
            nowEmpty = _members.Count == 0;
            return removed;
        }
    }
}
