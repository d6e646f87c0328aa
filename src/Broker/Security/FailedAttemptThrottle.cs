using System.Net;
using System.Net.Sockets;

namespace Broker.Security;

/// <summary>
/// Slows down password guessing from one place: after a failure, the next attempts from the same address wait
/// first (base delay doubled per failure, up to a cap) before their password is even hashed, so a guesser also
/// stops costing CPU. IPv6 clients are grouped by /64, the block one subscriber usually holds. An address is
/// forgotten after <see cref="ForgetAfter"/> without failures. The table is bounded: when full, forgotten entries
/// go first, then the quarter that failed longest ago.
/// </summary>
internal sealed class FailedAttemptThrottle
{
    public static readonly TimeSpan ForgetAfter = TimeSpan.FromMinutes(15);

    public const int DefaultCapacity = 65_536;

    private readonly TimeProvider _time;
    private readonly TimeSpan _baseDelay;
    private readonly TimeSpan _maxDelay;
    private readonly int _capacity;
    private readonly long _forgetTicks;
    private readonly Lock _gate = new();
    private readonly Dictionary<UInt128, Entry> _entries = [];

    public FailedAttemptThrottle(TimeProvider time, TimeSpan baseDelay, TimeSpan maxDelay, int capacity = DefaultCapacity)
    {
        _time = time;
        _baseDelay = baseDelay;
        _maxDelay = maxDelay < baseDelay ? baseDelay : maxDelay;
        _capacity = capacity;
        _forgetTicks = (long)(ForgetAfter.TotalSeconds * time.TimestampFrequency);
    }

    public int TrackedAddresses
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>How long an attempt from this address waits now; zero for an address without recent failures.</summary>
    public TimeSpan DelayFor(IPAddress? address)
    {
        if (_baseDelay <= TimeSpan.Zero || address is null)
        {
            return TimeSpan.Zero;
        }
        long now = _time.GetTimestamp();
        lock (_gate)
        {
            if (!_entries.TryGetValue(Key(address), out var entry) || now - entry.LastFailure >= _forgetTicks)
            {
                return TimeSpan.Zero;
            }
            return DelayAfter(entry.Failures);
        }
    }

    public void RecordFailure(IPAddress? address)
    {
        if (_baseDelay <= TimeSpan.Zero || address is null)
        {
            return;
        }
        long now = _time.GetTimestamp();
        var key = Key(address);
        lock (_gate)
        {
            if (!_entries.TryGetValue(key, out var entry))
            {
                if (_entries.Count >= _capacity)
                {
                    MakeRoom(now);
                }
                entry = new Entry();
                _entries[key] = entry;
            }
            else if (now - entry.LastFailure >= _forgetTicks)
            {
                entry.Failures = 0;
            }
            entry.Failures = Math.Min(entry.Failures + 1, 64);
            entry.LastFailure = now;
        }
    }

    private TimeSpan DelayAfter(int failures)
    {
        // base x 2^(failures-1), computed without overflow: the cap is reached long before 2^31.
        double factor = Math.Pow(2, Math.Min(failures - 1, 30));
        var delay = TimeSpan.FromTicks((long)Math.Min(_baseDelay.Ticks * factor, _maxDelay.Ticks));
        return delay;
    }

    private void MakeRoom(long now)
    {
        foreach (var (key, entry) in _entries)
        {
            if (now - entry.LastFailure >= _forgetTicks)
            {
                _entries.Remove(key);
            }
        }
        if (_entries.Count < _capacity)
        {
            return;
        }
        long[] times = _entries.Values.Select(e => e.LastFailure).ToArray();
        Array.Sort(times);
        long cutoff = times[times.Length / 4];
        foreach (var (key, entry) in _entries)
        {
            if (entry.LastFailure <= cutoff)
            {
                _entries.Remove(key);
            }
        }
    }

    /// <summary>IPv4 (also when mapped into IPv6) as itself; IPv6 by its /64 prefix.</summary>
    internal static UInt128 Key(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        Span<byte> bytes = stackalloc byte[16];
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            address.TryWriteBytes(bytes, out _);
            return new UInt128(0, 0xFFFF_0000_0000UL | System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes));
        }
        address.TryWriteBytes(bytes, out _);
        return new UInt128(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes), 0);
    }

    private sealed class Entry
    {
        public int Failures;
        public long LastFailure;
    }
}
