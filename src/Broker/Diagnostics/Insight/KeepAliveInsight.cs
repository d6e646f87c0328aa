using System.Collections.Concurrent;
using System.Net;

namespace Broker.Diagnostics.Insight;

/// <summary>
/// Turns the half-open deaths the broker sees into per-network evidence, advice and (opt-in) a lower Server
/// Keep Alive. The connection calls <see cref="ConnectionOpened"/> on every accepted CONNECT and
/// <see cref="ConnectionDied"/> when a connection is proven dead; nothing else. Both are cheap: a prefix
/// computed on the stack, one dictionary lookup, interlocked counters; a death also takes its network's lock.
/// </summary>
/// <remarks>
/// Memory is bounded: at most <see cref="KeepAliveInsightOptions.MaxNetworks"/> networks, each a few hundred
/// bytes plus a ring of 128 deaths once it has one. When the table is full a new network replaces the least
/// busy one (see <see cref="NetworkRecord.Inherit"/>).
/// </remarks>
internal sealed class KeepAliveInsight
{
    private readonly ConcurrentDictionary<NetworkPrefix, NetworkRecord> _networks = new();
    private readonly object _evictionLock = new();
    private readonly Queue<(NetworkRecord Record, long Score)> _evictionCandidates = new();
    private readonly TimeProvider _time;
    private readonly BrokerMetrics? _metrics;
    private readonly bool _enabled;
    private readonly int _prefixV4;
    private readonly int _prefixV6;
    private readonly int _maxNetworks;
    private readonly long _window;
    private readonly ClusterCriteria _criteria;
    private readonly bool _adaptive;
    private readonly ushort _adaptiveFloor;
    private int _networkCount;

    /// <param name="options">Validated options.</param>
    /// <param name="metrics">Where the idle-before-death histogram is recorded; null in unit tests.</param>
    /// <param name="adaptive">Broker:KeepAlive:Adaptive.</param>
    /// <param name="adaptiveFloorSeconds">Broker:KeepAlive:AdaptiveFloorSeconds.</param>
    public KeepAliveInsight(KeepAliveInsightOptions options, TimeProvider time, BrokerMetrics? metrics = null,
        bool adaptive = false, ushort adaptiveFloorSeconds = 1)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
        _metrics = metrics;
        _enabled = options.Enabled;
        _prefixV4 = options.PrefixLengthV4;
        _prefixV6 = options.PrefixLengthV6;
        _maxNetworks = options.MaxNetworks;
        _window = (long)(TimeSpan.FromMinutes(options.WindowMinutes).TotalSeconds * time.TimestampFrequency);
        _criteria = new ClusterCriteria(options.MinSamples, options.MinDeathFraction);
        _adaptive = adaptive && options.Enabled;
        _adaptiveFloor = adaptiveFloorSeconds;
        LogInterval = TimeSpan.FromSeconds(options.LogIntervalSeconds);
    }

    public bool Enabled => _enabled;

    public bool Adaptive => _adaptive;

    /// <summary>How often the reporter logs the advice; zero = never.</summary>
    public TimeSpan LogInterval { get; }

    /// <summary>Networks currently tracked.</summary>
    public int NetworkCount => Volatile.Read(ref _networkCount);

    /// <summary>A CONNECT was accepted. Every connection counts, however it ends later.</summary>
    /// <param name="keepAlive">The Keep Alive in force (after negotiation).</param>
    public void ConnectionOpened(IPAddress remote, ushort keepAlive)
    {
        if (!_enabled)
        {
            return;
        }
        long now = _time.GetTimestamp();
        Find(remote, now).CountConnection(keepAlive, now, _window);
    }

    /// <summary>A connection the broker still thought alive was proven dead.</summary>
    /// <param name="idle">Time since its last inbound packet.</param>
    /// <param name="keepAlive">Its Keep Alive in force.</param>
    public void ConnectionDied(IPAddress remote, HalfOpenCause cause, TimeSpan idle, ushort keepAlive)
    {
        if (idle < TimeSpan.Zero)
        {
            idle = TimeSpan.Zero;
        }
        _metrics?.IdleBeforeDeath(cause, idle);
        if (!_enabled)
        {
            return;
        }
        long now = _time.GetTimestamp();
        Span<DeathSample> scratch = stackalloc DeathSample[KeepAliveInsightOptions.SamplesPerNetwork];
        Find(remote, now).RecordDeath(new DeathSample(now, (float)idle.TotalSeconds, keepAlive, cause), _window, _criteria, scratch);
    }

    /// <summary>
    /// Adaptive mode, MQTT 5.0 only: the Server Keep Alive to send instead of the negotiated Keep Alive, or null
    /// to keep it (mode off, no learned timeout for the client's network, or the negotiated value is already low enough).
    /// </summary>
    /// <param name="requested">The Keep Alive of the client's CONNECT.</param>
    /// <param name="negotiated">The Keep Alive the policy settled on (0 = none).</param>
    public ushort? SuggestServerKeepAlive(IPAddress remote, ushort requested, ushort negotiated)
    {
        if (!_adaptive)
        {
            return null;
        }
        var prefix = NetworkPrefix.From(remote, _prefixV4, _prefixV6);
        if (!_networks.TryGetValue(prefix, out var record))
        {
            return null;
        }
        return AdaptiveServerKeepAlive.Decide(requested, negotiated, record.LearnedTimeoutSeconds, _adaptiveFloor);
    }

    /// <summary>
    /// Every tracked network, those with advice first (most deaths in their cluster first), then the busiest.
    /// Allocates; for the view and the periodic log, not the connection path.
    /// </summary>
    public IReadOnlyList<NetworkInsight> Snapshot()
    {
        long now = _time.GetTimestamp();
        var result = new List<NetworkInsight>(NetworkCount);
        foreach (var (_, record) in _networks)
        {
            result.Add(record.Snapshot(now, _window, _criteria, _adaptive));
        }
        return result
            .OrderByDescending(n => n.Cluster?.Deaths ?? -1)
            .ThenByDescending(n => n.Connections)
            .ThenBy(n => n.Network, StringComparer.Ordinal)
            .ToArray();
    }

    private NetworkRecord Find(IPAddress remote, long now)
    {
        var prefix = NetworkPrefix.From(remote, _prefixV4, _prefixV6);
        return _networks.TryGetValue(prefix, out var record) ? record : Add(prefix, now);
    }

    private NetworkRecord Add(NetworkPrefix prefix, long now)
    {
        var record = new NetworkRecord(prefix, now);
        if (Volatile.Read(ref _networkCount) < _maxNetworks)
        {
            var added = _networks.GetOrAdd(prefix, record);
            if (ReferenceEquals(added, record))
            {
                Interlocked.Increment(ref _networkCount);
            }
            return added;
        }
        lock (_evictionLock)
        {
            if (_networks.TryGetValue(prefix, out var existing))
            {
                return existing;
            }
            while (Volatile.Read(ref _networkCount) >= _maxNetworks && NextVictim() is { } victim)
            {
                if (_networks.TryRemove(KeyValuePair.Create(victim.Prefix, victim)))
                {
                    Interlocked.Decrement(ref _networkCount);
                    record.Inherit(victim.Score);
                }
            }
            _networks[prefix] = record;
            Interlocked.Increment(ref _networkCount);
            return record;
        }
    }

    /// <summary>
    /// Under the eviction lock: the least busy network still worth evicting. Candidates are found in batches
    /// (the least busy eighth of the table, sorted once) so that a stream of new networks costs O(log N) each,
    /// not a scan of the table each; a candidate that got busier since is skipped.
    /// </summary>
    private NetworkRecord? NextVictim()
    {
        for (int attempt = 0; attempt < 2; attempt++)
        {
            while (_evictionCandidates.TryDequeue(out var candidate))
            {
                if (_networks.TryGetValue(candidate.Record.Prefix, out var current) && ReferenceEquals(current, candidate.Record)
                    && candidate.Record.Score <= candidate.Score)
                {
                    return candidate.Record;
                }
            }
            int batch = Math.Max(1, _maxNetworks / 8);
            foreach (var entry in _networks.Values.Select(r => (Record: r, r.Score)).OrderBy(e => e.Score).Take(batch))
            {
                _evictionCandidates.Enqueue(entry);
            }
        }
        return null;
    }
}
