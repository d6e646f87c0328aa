namespace Broker.Routing;

/// <summary>An entry of a <see cref="SlotList{T}"/>, found by its key (client id, share name).</summary>
internal interface ISlotEntry
{
    string Key { get; }

    /// <summary>
    /// When the entry's key was added to the list, on the owner's change counter; set by the list before
    /// the entry is published, kept by a replacement. A reader ignores entries newer than its start.
    /// </summary>
    long Sequence { get; set; }
}

/// <summary>
/// The subscribers of one trie node or shared group, and the shared groups of one node: an array that
/// readers iterate without a lock, skipping empty slots, while writers (holding the owner's write lock)
/// change it in O(1) amortized per change, so 100,000 clients on one filter cost O(N) to build and to
/// tear down, not O(N^2).
/// </summary>
/// <remarks>
/// What must stay true for lock-free readers: entries are immutable (replacing one writes a new entry
/// into its slot); a slot goes from empty to an entry only by appending after the last slot in use; removing
/// empties the slot (a tombstone); growing or compacting publishes a fully built new array, after which
/// the old array is never written again. A reader therefore sees every entry that was present for the
/// whole of its iteration exactly once. A key removed and added again while a reader iterates may sit
/// in two slots of its array: the reader skips entries whose <see cref="ISlotEntry.Sequence"/> is newer
/// than its start, so no key is seen twice.
/// Lookup by key is a scan while few slots are in use and a key-to-slot dictionary (writer-only) beyond.
/// Tombstones are compacted away once they outnumber the live entries, and the array shrinks once it is
/// four times the live count, which bounds memory and the readers' work to a few times the live count.
/// A mutable struct: keep it in a field, never copy it except to move it to a node that replaces its owner.
/// </remarks>
internal struct SlotList<T>
    where T : class, ISlotEntry
{
    private const int IndexThreshold = 8;

    private volatile T?[]? _slots;
    private volatile int _used;
    private int _live;
    private Dictionary<string, int>? _index;

    /// <summary>Live entries. Lock held (readers iterate <see cref="Slots"/> instead).</summary>
    public readonly int Count => _live;

    /// <summary>The current slots for a lock-free reader: skip nulls.</summary>
    public readonly T?[] Slots => _slots ?? [];

    /// <summary>
    /// Slots handed out, for a reader that wants to spread its start over them (round-robin). It may
    /// belong to another array than the reader's <see cref="Slots"/>: clamp it, and still scan them all.
    /// </summary>
    public readonly int Used => _used;

    /// <summary>How many slots the current array has; lets tests check that removals give memory back.</summary>
    internal readonly int Capacity => _slots?.Length ?? 0;

    // Lock held.
    public readonly T? Find(string key)
    {
        int slot = IndexOf(key);
        return slot < 0 ? null : _slots![slot];
    }

    /// <summary>
    /// Adds the entry with <paramref name="sequence"/>, or replaces the entry with the same key (keeping
    /// its sequence). Returns true if it was added. Lock held.
    /// </summary>
    public bool Set(T entry, long sequence)
    {
        int slot = IndexOf(entry.Key);
        if (slot >= 0)
        {
            entry.Sequence = _slots![slot]!.Sequence;
            Volatile.Write(ref _slots![slot], entry);
            return false;
        }

        entry.Sequence = sequence;

        var slots = _slots ?? [];
        if (_used == slots.Length)
        {
            // Full: move the live entries to a new array twice their number (which also drops tombstones).
            slots = Rebuild(Math.Max(1, _live * 2));
        }

        Volatile.Write(ref slots[_used], entry);
        _index?.Add(entry.Key, _used);
        _used++;
        _live++;
        if (_index is null && _used > IndexThreshold)
        {
            BuildIndex(slots);
        }

        return true;
    }

    /// <summary>Removes the entry with this key. Returns false if there is none. Lock held.</summary>
    public bool Remove(string key)
    {
        int slot = IndexOf(key);
        if (slot < 0)
        {
            return false;
        }

        Volatile.Write(ref _slots![slot], null);
        _index?.Remove(key);
        _live--;
        if (_live == 0)
        {
            _slots = null;
            _used = 0;
            _index = null;
        }
        else
        {
            if (slot == _used - 1)
            {
                // The last slot in use: a later append may take it again (readers see null or the new entry).
                _used--;
            }

            // More tombstones than entries, or an array four times too large: move to one twice the
            // entries. Either takes removals in proportion to the array since it was last built.
            if (_used > IndexThreshold && (_used - _live > _live || _slots!.Length > 4 * _live))
            {
                Rebuild(_live * 2);
            }
        }

        return true;
    }

    private readonly int IndexOf(string key)
    {
        if (_index is not null)
        {
            return _index.TryGetValue(key, out int slot) ? slot : -1;
        }

        var slots = _slots;
        for (int i = 0; i < _used; i++)
        {
            if (slots![i] is { } entry && string.Equals(entry.Key, key, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    private T?[] Rebuild(int capacity)
    {
        var old = _slots;
        var slots = new T?[capacity];
        int used = 0;
        for (int i = 0; i < _used; i++)
        {
            if (old![i] is { } entry)
            {
                slots[used++] = entry;
            }
        }

        _used = used;
        _index = null;
        if (used > IndexThreshold)
        {
            BuildIndex(slots);
        }

        _slots = slots;
        return slots;
    }

    private void BuildIndex(T?[] slots)
    {
        var index = new Dictionary<string, int>(_used, StringComparer.Ordinal);
        for (int i = 0; i < _used; i++)
        {
            if (slots[i] is { } entry)
            {
                index.Add(entry.Key, i);
            }
        }

        _index = index;
    }
}
