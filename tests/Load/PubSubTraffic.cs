using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;

namespace Broker.Load;

/// <summary>The pubsub payload: send timestamp, publisher index and sequence number, then padding.</summary>
internal static class PubSubPayload
{
    public const int MinLength = 20;

    public static void Write(Span<byte> payload, long timestamp, int publisher, long sequence)
    {
        BinaryPrimitives.WriteInt64LittleEndian(payload, timestamp);
        BinaryPrimitives.WriteInt32LittleEndian(payload[8..], publisher);
        BinaryPrimitives.WriteInt64LittleEndian(payload[12..], sequence);
    }

    public static bool TryRead(ReadOnlySpan<byte> payload, out long timestamp, out int publisher, out long sequence)
    {
        timestamp = 0;
        publisher = 0;
        sequence = 0;
        if (payload.Length < MinLength)
        {
            return false;
        }

        timestamp = BinaryPrimitives.ReadInt64LittleEndian(payload);
        publisher = BinaryPrimitives.ReadInt32LittleEndian(payload[8..]);
        sequence = BinaryPrimitives.ReadInt64LittleEndian(payload[12..]);
        return true;
    }
}

/// <summary>
/// Publishers are clients [0, P), subscribers [P, P+S). The fleet tick publishes (paced by --rate,
/// bounded per publisher by --max-inflight at QoS 1 and by socket backpressure); receive threads
/// check sequence numbers per (subscriber, publisher) and record end-to-end latency.
/// Stopwatch timestamps compare correctly because publisher and subscriber share this process.
/// </summary>
internal sealed class PubSubTraffic : IFleetTraffic
{
    private const int MaxPublishesPerTick = 20_000;

    private readonly Fleet _fleet;
    private readonly LoadOptions _options;
    private readonly int _publishers;
    private readonly int _subscribers;
    private readonly byte[][] _topics;
    private readonly long[] _sequence;
    private readonly int[] _inFlight;
    private readonly ushort[] _nextPacketId;
    private readonly long[][] _highestSeen;
    private readonly ArrayBufferWriter<byte> _scratch;
    private readonly byte[] _payload;
    private readonly LatencyHistogram _endToEnd;
    private readonly LatencyHistogram _stalledEndToEnd;
    private bool _stallStarted;
    private int _cursor;
    private volatile bool _publishing;
    private long _publishStartTicks;
    private long _publishStopTicks;
    private long _lastDeliveryTicks;
    private int _subAcked;
    private long _duplicates;
    private long _gaps;

    public PubSubTraffic(Fleet fleet)
    {
        _fleet = fleet;
        _options = fleet.Options;
        _publishers = _options.PublisherCount;
        _subscribers = _options.SubscriberCount;
        _topics = new byte[_publishers][];
        for (int p = 0; p < _publishers; p++)
        {
            _topics[p] = Encoding.UTF8.GetBytes(_options.Mode switch
            {
                PubSubMode.FanIn => $"load/{_options.RunId}/in/{p}",
                PubSubMode.FanOut => $"load/{_options.RunId}/out",
                _ => $"load/{_options.RunId}/pair/{p}",
            });
        }

        _sequence = new long[_publishers];
        _inFlight = new int[_publishers];
        _nextPacketId = new ushort[_publishers];
        int slots = _options.Mode == PubSubMode.FanIn ? _publishers : 1;
        _highestSeen = new long[_subscribers][];
        for (int s = 0; s < _subscribers; s++)
        {
            _highestSeen[s] = new long[slots];
        }

        // Sized once for the largest PUBLISH, so writing never grows it.
        _scratch = new ArrayBufferWriter<byte>(Wire.PublishLength(_options.ProtocolVersion, _topics.Max(t => t.Length), _options.PayloadBytes));
        _payload = new byte[_options.PayloadBytes];
        _endToEnd = fleet.Metrics.Histogram(HistogramNames.EndToEnd);
        _stalledEndToEnd = fleet.Metrics.Histogram(HistogramNames.StalledEndToEnd);
        // Clients past the publishers and subscribers only ping.
        fleet.IdleFrom = _publishers + _subscribers;
    }

    public static int ReceiveCapacity(LoadOptions options) => Math.Max(4096, 2 * (options.PayloadBytes + 128));

    public int SubAcked => Volatile.Read(ref _subAcked);
    public int InFlight => _inFlight.Sum();

    public int FanOutFactor => _options.Mode == PubSubMode.FanOut ? _subscribers : 1;

    public void SubscribeAll()
    {
        for (int s = 0; s < _subscribers; s++)
        {
            string filter = _options.Mode switch
            {
                PubSubMode.FanIn => $"load/{_options.RunId}/in/+",
                PubSubMode.FanOut => $"load/{_options.RunId}/out",
                _ => $"load/{_options.RunId}/pair/{s}",
            };
            _fleet.Clients[_publishers + s].TrySend(Wire.Subscribe(_options.ProtocolVersion, 1, filter, _options.Qos));
        }
    }

    public void StartPublishing()
    {
        _publishStartTicks = Stopwatch.GetTimestamp();
        _publishing = true;
    }

    public void StopPublishing()
    {
        _publishing = false;
        _publishStopTicks = Stopwatch.GetTimestamp();
    }

    public void OnTick(long now)
    {
        if (_publishing && !_stallStarted && _options.StallSubscribers > 0
            && now - _publishStartTicks >= (long)(_options.StallAtSeconds * Stopwatch.Frequency))
        {
            _stallStarted = true;
            long until = now + (long)(_options.StallSeconds * Stopwatch.Frequency);
            for (int s = 0; s < Math.Min(_options.StallSubscribers, _subscribers); s++)
            {
                _fleet.Clients[_publishers + s].PauseReading(until);
            }
            _fleet.Metrics.Count("stalledSubscribers", Math.Min(_options.StallSubscribers, _subscribers));
        }
        if (!_publishing)
        {
            return;
        }

        long budget = _options.Rate > 0
            ? (long)(Stopwatch.GetElapsedTime(_publishStartTicks, now).TotalSeconds * _options.Rate) - Volatile.Read(ref _fleet.Metrics.Published)
            : long.MaxValue;
        budget = Math.Min(budget, MaxPublishesPerTick);
        int refusedInARow = 0;
        while (budget > 0 && refusedInARow < _publishers)
        {
            int p = _cursor;
            _cursor = p + 1 == _publishers ? 0 : p + 1;
            if (TryPublish(p))
            {
                budget--;
                refusedInARow = 0;
            }
            else
            {
                refusedInARow++;
            }
        }
    }

    public void OnPublish(FleetClient client, int qos, ReadOnlySpan<byte> payload, long now)
    {
        int subscriber = client.Index - _publishers;
        if (subscriber < 0 || subscriber >= _subscribers || !PubSubPayload.TryRead(payload, out long sentTicks, out int publisher, out long sequence))
        {
            _fleet.Metrics.Count("unexpectedPublish");
            return;
        }

        // One subscriber's receives are serialised by its single receive loop: no lock needed here.
        long[] highest = _highestSeen[subscriber];
        int slot = highest.Length == 1 ? 0 : publisher;
        if ((uint)slot >= (uint)highest.Length)
        {
            _fleet.Metrics.Count("unexpectedPublish");
            return;
        }

        if (sequence <= highest[slot])
        {
            Interlocked.Increment(ref _duplicates);
            return;
        }

        if (sequence > highest[slot] + 1)
        {
            Interlocked.Add(ref _gaps, sequence - highest[slot] - 1);
        }

        highest[slot] = sequence;
        Interlocked.Increment(ref _fleet.Metrics.Delivered);
        // Stalled subscribers' latency is their own stall: the others' latency is what the test watches.
        (subscriber < _options.StallSubscribers ? _stalledEndToEnd : _endToEnd).RecordTicks(now - sentTicks);
        long seen = Volatile.Read(ref _lastDeliveryTicks);
        while (now > seen && Interlocked.CompareExchange(ref _lastDeliveryTicks, now, seen) != seen)
        {
            seen = Volatile.Read(ref _lastDeliveryTicks);
        }
    }

    public void OnPubAck(FleetClient client, byte reasonCode)
    {
        if (client.Index >= _publishers)
        {
            return;
        }

        Interlocked.Decrement(ref _inFlight[client.Index]);
        Interlocked.Increment(ref _fleet.Metrics.PublishAcked);
        if (reasonCode >= 0x80)
        {
            _fleet.Metrics.Count($"pubAckFailures.0x{reasonCode:X2}");
        }
    }

    public void OnSubAck(FleetClient client, byte reasonCode)
    {
        Interlocked.Increment(ref _subAcked);
        if (reasonCode >= 0x80)
        {
            _fleet.Metrics.Count($"subAckFailures.0x{reasonCode:X2}");
        }
    }

    /// <summary>Deliveries expected once everything has drained: acknowledged (QoS 1) or sent (QoS 0) messages times the fan-out.</summary>
    public long ExpectedDeliveries => (_options.Qos == 1 ? Volatile.Read(ref _fleet.Metrics.PublishAcked) : Volatile.Read(ref _fleet.Metrics.Published)) * FanOutFactor;

    public void Report(FleetMetrics metrics)
    {
        long expected = ExpectedDeliveries;
        long delivered = Volatile.Read(ref metrics.Delivered);
        metrics.Counters["expectedDeliveries"] = expected;
        metrics.Counters["notDelivered"] = Math.Max(0, expected - delivered);
        metrics.Counters["duplicates"] = Volatile.Read(ref _duplicates);
        metrics.Counters["sequenceGaps"] = Volatile.Read(ref _gaps);
        metrics.Counters["inFlightAtEnd"] = InFlight;
        double publishSeconds = Stopwatch.GetElapsedTime(_publishStartTicks, _publishStopTicks).TotalSeconds;
        long last = Volatile.Read(ref _lastDeliveryTicks);
        double deliverySeconds = last == 0 ? 0 : Stopwatch.GetElapsedTime(_publishStartTicks, last).TotalSeconds;
        metrics.Timings["publishSeconds"] = publishSeconds;
        metrics.Timings["deliverySeconds"] = deliverySeconds;
    }

    private bool TryPublish(int publisher)
    {
        FleetClient client = _fleet.Clients[publisher];
        if (client.State != ClientState.Connected)
        {
            return false;
        }

        int qos = _options.Qos;
        if (qos == 1 && Volatile.Read(ref _inFlight[publisher]) >= _options.MaxInFlight)
        {
            return false;
        }

        ushort packetId = 0;
        if (qos == 1)
        {
            packetId = ++_nextPacketId[publisher];
            if (packetId == 0)
            {
                packetId = _nextPacketId[publisher] = 1;
            }

            Interlocked.Increment(ref _inFlight[publisher]);
        }

        long sequence = _sequence[publisher] + 1;
        PubSubPayload.Write(_payload, Stopwatch.GetTimestamp(), publisher, sequence);
        if (!client.TrySend(Wire.WritePublish(_scratch, _options.ProtocolVersion, _topics[publisher], qos, packetId, _payload)))
        {
            if (qos == 1)
            {
                Interlocked.Decrement(ref _inFlight[publisher]);
            }

            return false;
        }

        _sequence[publisher] = sequence;
        Interlocked.Increment(ref _fleet.Metrics.Published);
        return true;
    }
}
