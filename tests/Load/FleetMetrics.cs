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

    public LatencyHistogram Histogram(string name) => Histograms.GetOrAdd(name, static _ => new LatencyHistogram());

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
        return new WorkerResult(
            counters,
            new Dictionary<string, double>(Timings),
            Histograms.ToDictionary(p => p.Key, p => p.Value.ToData()));
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
/// A process's measurements in mergeable form: counters add, timings (durations of phases that
/// ran in parallel in every worker) take the maximum, histograms add bucket by bucket.
/// </summary>
internal sealed record WorkerResult(
    [property: JsonPropertyName("counters")] Dictionary<string, long> Counters,
    [property: JsonPropertyName("timings")] Dictionary<string, double> Timings,
    [property: JsonPropertyName("histograms")] Dictionary<string, HistogramData> Histograms)
{
    public static WorkerResult Merge(IEnumerable<WorkerResult> results)
    {
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

        return new WorkerResult(counters, timings, histograms.ToDictionary(p => p.Key, p => p.Value.ToData()));
    }
}
