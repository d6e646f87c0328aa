using System.Collections.Concurrent;
using System.Text.Json.Serialization;

namespace Broker.Load;

/// <summary>Everything one process measured; counters are written with Interlocked from receive threads.</summary>
internal sealed class FleetMetrics
{
    public long ConnectedNow;
    public long ConnectsSucceeded;
    public long ConnectsFailed;
    public long PingsSent;
    public long PongsReceived;
    public long PongsMissing;
    public long PingsBlocked;
    public long UnexpectedDisconnects;
    public long SilentClosed;
    public long Published;
    public long PublishAcked;
    public long Delivered;

    public readonly ConcurrentDictionary<string, long> Counters = new();
    public readonly ConcurrentDictionary<string, double> Timings = new();
    public readonly ConcurrentDictionary<string, LatencyHistogram> Histograms = new();

    // PINGRESP latencies of the current second, for the report's latency-over-time chart; swapped once a second.
    private LatencyHistogram _pingInterval = new();
    private readonly List<TimelinePoint> _timeline = [];

    public LatencyHistogram Histogram(string name) => Histograms.GetOrAdd(name, static _ => new LatencyHistogram());

    public void RecordPing(long stopwatchTicks)
    {
        Histogram(HistogramNames.Ping).RecordTicks(stopwatchTicks);
        Volatile.Read(ref _pingInterval).RecordTicks(stopwatchTicks);
    }

    /// <summary>Called once a second by the fleet's tick: the cumulative counters and the second's PINGRESP latency.</summary>
    public void AddTimelinePoint(int second)
    {
        var pings = Interlocked.Exchange(ref _pingInterval, new LatencyHistogram());
        var point = new TimelinePoint(
            second,
            Volatile.Read(ref ConnectedNow),
            Volatile.Read(ref ConnectsSucceeded),
            Volatile.Read(ref ConnectsFailed),
            Volatile.Read(ref UnexpectedDisconnects),
            Volatile.Read(ref SilentClosed),
            Volatile.Read(ref Published),
            Volatile.Read(ref Delivered),
            pings.Count,
            pings.Percentile(50),
            pings.Percentile(99),
            pings.Max);
        lock (_timeline)
        {
            _timeline.Add(point);
        }
    }

    public void Count(string name, long delta = 1) => Counters.AddOrUpdate(name, delta, (_, v) => v + delta);

    public ProgressSnapshot Snapshot() => new(
        Volatile.Read(ref ConnectedNow),
        Volatile.Read(ref ConnectsFailed),
        Volatile.Read(ref PongsReceived),
        Volatile.Read(ref UnexpectedDisconnects),
        Volatile.Read(ref SilentClosed),
        Volatile.Read(ref Published),
        Volatile.Read(ref Delivered));

    public WorkerResult ToResult()
    {
        var counters = new Dictionary<string, long>(Counters)
        {
            ["connectsSucceeded"] = ConnectsSucceeded,
            ["connectsFailed"] = ConnectsFailed,
            ["pingsSent"] = PingsSent,
            ["pongsReceived"] = PongsReceived,
            ["pongsMissing"] = PongsMissing,
            ["pingsBlocked"] = PingsBlocked,
            ["unexpectedDisconnects"] = UnexpectedDisconnects,
            ["silentClosed"] = SilentClosed,
            ["published"] = Published,
            ["publishAcked"] = PublishAcked,
            ["delivered"] = Delivered,
        };
        List<TimelinePoint> timeline;
        lock (_timeline)
        {
            timeline = [.. _timeline];
        }

        return new WorkerResult(
            counters,
            new Dictionary<string, double>(Timings),
            Histograms.ToDictionary(p => p.Key, p => p.Value.ToData()),
            timeline);
    }
}

internal sealed record ProgressSnapshot(
    [property: JsonPropertyName("connected")] long Connected,
    [property: JsonPropertyName("failed")] long Failed,
    [property: JsonPropertyName("pongs")] long Pongs,
    [property: JsonPropertyName("dropped")] long Dropped,
    [property: JsonPropertyName("silentClosed")] long SilentClosed,
    [property: JsonPropertyName("published")] long Published,
    [property: JsonPropertyName("delivered")] long Delivered)
{
    public static ProgressSnapshot Sum(IEnumerable<ProgressSnapshot> all)
    {
        ProgressSnapshot total = new(0, 0, 0, 0, 0, 0, 0);
        foreach (ProgressSnapshot s in all)
        {
            total = new(total.Connected + s.Connected, total.Failed + s.Failed, total.Pongs + s.Pongs, total.Dropped + s.Dropped,
                total.SilentClosed + s.SilentClosed, total.Published + s.Published, total.Delivered + s.Delivered);
        }

        return total;
    }

    public string Format(double elapsedSeconds, string phase) =>
        $"[{elapsedSeconds,6:F1}s] {phase,-12} connected={Connected} failed={Failed} pongs={Pongs} dropped={Dropped} silentClosed={SilentClosed} published={Published} delivered={Delivered}";
}

/// <summary>
/// One second of a run, for the HTML report's charts: cumulative counters at that second, and the PINGRESP latency of
/// the pings answered during it. Workers start together, so their points merge by second: counters add, the latency
/// figures take the worst worker's.
/// </summary>
internal sealed record TimelinePoint(
    [property: JsonPropertyName("s")] int Second,
    [property: JsonPropertyName("connected")] long Connected,
    [property: JsonPropertyName("connects")] long Connects,
    [property: JsonPropertyName("connectFailures")] long ConnectFailures,
    [property: JsonPropertyName("dropped")] long Dropped,
    [property: JsonPropertyName("silentClosed")] long SilentClosed,
    [property: JsonPropertyName("published")] long Published,
    [property: JsonPropertyName("delivered")] long Delivered,
    [property: JsonPropertyName("pings")] long Pings,
    [property: JsonPropertyName("pingP50Us")] long PingP50Micros,
    [property: JsonPropertyName("pingP99Us")] long PingP99Micros,
    [property: JsonPropertyName("pingMaxUs")] long PingMaxMicros)
{
    public static List<TimelinePoint> Merge(IEnumerable<IReadOnlyList<TimelinePoint>?> timelines) =>
        timelines.Where(t => t is not null).SelectMany(t => t!).GroupBy(p => p.Second).OrderBy(g => g.Key)
            .Select(g => new TimelinePoint(
                g.Key,
                g.Sum(p => p.Connected),
                g.Sum(p => p.Connects),
                g.Sum(p => p.ConnectFailures),
                g.Sum(p => p.Dropped),
                g.Sum(p => p.SilentClosed),
                g.Sum(p => p.Published),
                g.Sum(p => p.Delivered),
                g.Sum(p => p.Pings),
                g.Max(p => p.PingP50Micros),
                g.Max(p => p.PingP99Micros),
                g.Max(p => p.PingMaxMicros)))
            .ToList();
}

/// <summary>
/// A process's measurements in mergeable form: counters add, timings (durations of phases that
/// ran in parallel in every worker) take the maximum, histograms add their counts, timelines merge by second.
/// </summary>
internal sealed record WorkerResult(
    [property: JsonPropertyName("counters")] Dictionary<string, long> Counters,
    [property: JsonPropertyName("timings")] Dictionary<string, double> Timings,
    [property: JsonPropertyName("histograms")] Dictionary<string, HistogramData> Histograms,
    [property: JsonPropertyName("timeline")] List<TimelinePoint>? Timeline = null)
{
    public static WorkerResult Merge(IEnumerable<WorkerResult> workerResults)
    {
        var results = workerResults.ToList();
        var counters = new Dictionary<string, long>();
        var timings = new Dictionary<string, double>();
        var histograms = new Dictionary<string, LatencyHistogram>();
        foreach (WorkerResult result in results)
        {
            foreach ((string key, long value) in result.Counters)
            {
                counters[key] = counters.GetValueOrDefault(key) + value;
            }

            foreach ((string key, double value) in result.Timings)
            {
                timings[key] = Math.Max(timings.GetValueOrDefault(key), value);
            }

            foreach ((string key, HistogramData data) in result.Histograms)
            {
                if (!histograms.TryGetValue(key, out LatencyHistogram? merged))
                {
                    histograms[key] = merged = new LatencyHistogram();
                }

                merged.Merge(LatencyHistogram.FromData(data));
            }
        }

        return new WorkerResult(counters, timings, histograms.ToDictionary(p => p.Key, p => p.Value.ToData()),
            TimelinePoint.Merge(results.Select(r => r.Timeline)));
    }
}
