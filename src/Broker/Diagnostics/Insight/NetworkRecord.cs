namespace Broker.Diagnostics.Insight;

/// <summary>
/// One network's evidence. Counting a connection is lock-free and allocation-free (it runs on every CONNECT);
/// a death, which is rare, takes the record's lock. Counters live in two generations of one window each, so
/// evidence ages out without a timer: the current one is replaced when a recording finds it a window old.
/// </summary>
internal sealed class NetworkRecord
{
    private const int KeepAliveSlotCount = 4;

    private readonly object _lock = new();
    private Generation _current = new();
    private Generation? _previous;
    private long _currentStart;
    // Evidence recorded before this timestamp is forgotten: the start of the previous generation.
    private long _evidenceStart;
    // The newest dated deaths (takeovers, resets), a ring allocated at the first one: a network without
    // deaths costs no more.
    private DeathSample[]? _samples;
    private int _nextSample;
    private int _sampleCount;
    private double _learnedTimeout;
    private long _inheritedScore;

    public NetworkRecord(NetworkPrefix prefix, long now)
    {
        Prefix = prefix;
        _currentStart = now;
        _evidenceStart = now;
    }

    public NetworkPrefix Prefix { get; }

    /// <summary>The last confident idle timeout in seconds, 0 when none: read on the CONNECT path.</summary>
    public double LearnedTimeoutSeconds => Volatile.Read(ref _learnedTimeout);

    /// <summary>How busy the network is, for eviction: connections over the evidence period.</summary>
    public long Score
    {
        get
        {
            var previous = Volatile.Read(ref _previous);
            return Volatile.Read(ref _inheritedScore) + Interlocked.Read(ref Volatile.Read(ref _current).Connections)
                + (previous is null ? 0 : Interlocked.Read(ref previous.Connections));
        }
    }

    /// <summary>
    /// A newcomer that replaced an evicted network starts from its score (the "space-saving" rule): it then
    /// outranks the network it replaced and is not evicted by the very next newcomer, so a network that just
    /// became busy can enter a full table. The inheritance ends with the generation.
    /// </summary>
    public void Inherit(long score) => Volatile.Write(ref _inheritedScore, score);

    public void CountConnection(ushort keepAlive, long now, long window)
    {
        var generation = Volatile.Read(ref _current);
        if (now - Volatile.Read(ref _currentStart) >= window)
        {
            lock (_lock)
            {
                Rotate(now, window);
                generation = _current;
            }
        }
        Interlocked.Increment(ref generation.Connections);
        generation.CountKeepAlive(keepAlive);
    }

    /// <summary>Records a death; returns the cluster when this death left a confident one.</summary>
    /// <param name="scratch">At least <see cref="KeepAliveInsightOptions.SamplesPerNetwork"/> samples.</param>
    public DeathCluster? RecordDeath(in DeathSample sample, long window, ClusterCriteria criteria, Span<DeathSample> scratch)
    {
        lock (_lock)
        {
            Rotate(sample.Timestamp, window);
            Interlocked.Increment(ref _current.Deaths[(int)sample.Cause]);
            // Only deaths that date the path's death are kept: the others are counted, but a burst of keep-alive
            // expiries must not push the takeovers that locate the timeout out of the ring.
            if (!HalfOpenCauses.DatesThePathsDeath(sample.Cause))
            {
                return null;
            }
            _samples ??= new DeathSample[KeepAliveInsightOptions.SamplesPerNetwork];
            _samples[_nextSample] = sample;
            _nextSample = (_nextSample + 1) % _samples.Length;
            _sampleCount = Math.Min(_sampleCount + 1, _samples.Length);
            var cluster = EstimateLocked(criteria, scratch);
            if (cluster is { } found)
            {
                // Kept until a later cluster replaces it, not aged out: once adaptive mode lowers K, the deaths
                // that taught it stop, and forgetting the lesson would bring them back.
                Volatile.Write(ref _learnedTimeout, found.FromSeconds);
            }
            return cluster;
        }
    }

    public NetworkInsight Snapshot(long now, long window, ClusterCriteria criteria, bool adaptive)
    {
        Span<DeathSample> scratch = stackalloc DeathSample[KeepAliveInsightOptions.SamplesPerNetwork];
        lock (_lock)
        {
            Rotate(now, window);
            var deaths = new long[HalfOpenCauses.Count];
            var keepAlives = new Dictionary<ushort, long>();
            long connections = 0, other = 0;
            foreach (var generation in new[] { _current, _previous })
            {
                if (generation is null)
                {
                    continue;
                }
                connections += Interlocked.Read(ref generation.Connections);
                other += Interlocked.Read(ref generation.OtherKeepAlives);
                for (int i = 0; i < deaths.Length; i++)
                {
                    deaths[i] += Interlocked.Read(ref generation.Deaths[i]);
                }
                for (int i = 0; i < generation.KeepAliveSlots.Length; i++)
                {
                    long value = Volatile.Read(ref generation.KeepAliveSlots[i]);
                    if (value != 0)
                    {
                        var (k, count) = Generation.Decode(value);
                        keepAlives[k] = keepAlives.GetValueOrDefault(k) + count;
                    }
                }
            }
            var cluster = EstimateLocked(criteria, scratch);
            string network = Prefix.ToString();
            double learned = Volatile.Read(ref _learnedTimeout);
            return new NetworkInsight(
                network,
                connections,
                deaths.Sum(),
                new HalfOpenDeathCounts(deaths[(int)HalfOpenCause.Takeover], deaths[(int)HalfOpenCause.Reset], deaths[(int)HalfOpenCause.TimedOut],
                    deaths[(int)HalfOpenCause.HostUnreachable], deaths[(int)HalfOpenCause.KeepAliveExpired]),
                keepAlives.OrderByDescending(p => p.Value).ThenBy(p => p.Key).Select(p => new KeepAliveUse(p.Key, p.Value)).ToArray(),
                other,
                cluster,
                cluster is { } c ? AdaptiveServerKeepAlive.Below(c.FromSeconds) : null,
                learned > 0 ? learned : null,
                cluster is { } d ? KeepAliveAdvice.Format(network, d, adaptive) : null);
        }
    }

    /// <summary>Under the lock: the cluster among the dated deaths of the evidence period.</summary>
    private DeathCluster? EstimateLocked(ClusterCriteria criteria, Span<DeathSample> scratch)
    {
        int dated = 0;
        for (int i = 0; i < _sampleCount; i++)
        {
            ref readonly var sample = ref _samples![i];
            if (sample.Timestamp >= _evidenceStart)
            {
                scratch[dated++] = sample;
            }
        }
        var previous = _previous;
        long connections = Interlocked.Read(ref _current.Connections) + (previous is null ? 0 : Interlocked.Read(ref previous.Connections));
        return DeathClusterEstimator.Find(scratch[..dated], connections, criteria);
    }

    /// <summary>Under the lock: starts a new generation when the current one is a window old.</summary>
    private void Rotate(long now, long window)
    {
        if (now - _currentStart < window)
        {
            return;
        }
        if (now - _currentStart >= 2 * window)
        {
            // Nothing recorded for a whole window: all of it is old.
            Volatile.Write(ref _previous, null);
            _evidenceStart = now;
        }
        else
        {
            Volatile.Write(ref _previous, _current);
            _evidenceStart = _currentStart;
        }
        Volatile.Write(ref _current, new Generation());
        Volatile.Write(ref _currentStart, now);
        Volatile.Write(ref _inheritedScore, 0);
    }

    /// <summary>Counters of one window. Updated with interlocked operations, read without the record's lock.</summary>
    private sealed class Generation
    {
        // A slot holds (K + 1) << 40 | count, so 0 is a free slot; 40 bits of count never overflow.
        private const int KeepAliveShift = 40;
        private const long CountMask = (1L << KeepAliveShift) - 1;

        public long Connections;
        public long OtherKeepAlives;
        public readonly long[] Deaths = new long[HalfOpenCauses.Count];
        public readonly long[] KeepAliveSlots = new long[KeepAliveSlotCount];

        /// <summary>Lock-free: the first few K values seen claim a slot each, the rest count as "other".</summary>
        public void CountKeepAlive(ushort keepAlive)
        {
            long tag = (long)(keepAlive + 1) << KeepAliveShift;
            for (int i = 0; i < KeepAliveSlots.Length; i++)
            {
                long value = Volatile.Read(ref KeepAliveSlots[i]);
                if (value == 0)
                {
                    value = Interlocked.CompareExchange(ref KeepAliveSlots[i], tag | 1, 0);
                    if (value == 0)
                    {
                        return;
                    }
                }
                if ((value & ~CountMask) == tag)
                {
                    Interlocked.Increment(ref KeepAliveSlots[i]);
                    return;
                }
            }
            Interlocked.Increment(ref OtherKeepAlives);
        }

        public static (ushort KeepAlive, long Count) Decode(long slot) => ((ushort)((slot >> KeepAliveShift) - 1), slot & CountMask);
    }
}
