using Xunit;

namespace Broker.Load.Tests;

public sealed class LatencyHistogramTests
{
    // HdrHistogram with 3 significant digits: a reported value is at most 0.1% above the exact one.
    private const double RelativeError = 1.0 / 1000;

    [Fact]
    public void Empty_histogram_reports_zeros()
    {
        var histogram = new LatencyHistogram();

        Assert.Equal(0, histogram.Count);
        Assert.Equal(0, histogram.Min);
        Assert.Equal(0, histogram.Max);
        Assert.Equal(0, histogram.Mean);
        Assert.Equal(0, histogram.Percentile(50));
        Assert.Equal(0, histogram.Percentile(99.9));
    }

    [Fact]
    public void Small_values_are_exact()
    {
        var histogram = new LatencyHistogram();
        for (int v = 0; v < 32; v++)
        {
            histogram.Record(v);
        }

        // Rank ceil(p% of 32): 50% is the 16th value (15), 100% the 32nd (31), 1% the first (0).
        Assert.Equal(15, histogram.Percentile(50));
        Assert.Equal(31, histogram.Percentile(100));
        Assert.Equal(0, histogram.Percentile(1));
        Assert.Equal(15.5, histogram.Mean);
    }

    [Theory]
    [InlineData(50.0)]
    [InlineData(90.0)]
    [InlineData(99.0)]
    [InlineData(99.9)]
    public void Percentiles_of_a_uniform_range_are_within_the_bucket_error(double percentile)
    {
        var histogram = new LatencyHistogram();
        for (int v = 1; v <= 100_000; v++)
        {
            histogram.Record(v);
        }

        long exact = (long)Math.Ceiling(percentile / 100 * 100_000);
        long reported = histogram.Percentile(percentile);

        // The bucket's upper bound: never below the exact value, at most 1/32 above it.
        Assert.InRange(reported, exact, (long)(exact * (1 + RelativeError)) + 1);
    }

    [Fact]
    public void Percentiles_are_clamped_to_the_recorded_min_and_max()
    {
        var histogram = new LatencyHistogram();
        histogram.Record(1_000_001);

        Assert.Equal(1_000_001, histogram.Percentile(0.1));
        Assert.Equal(1_000_001, histogram.Percentile(50));
        Assert.Equal(1_000_001, histogram.Percentile(100));
    }

    [Fact]
    public void Negative_values_count_as_zero_and_values_past_an_hour_as_an_hour()
    {
        var histogram = new LatencyHistogram();
        histogram.Record(-5);
        histogram.Record(long.MaxValue);

        Assert.Equal(2, histogram.Count);
        Assert.Equal(0, histogram.Min);
        Assert.Equal(LatencyHistogram.HighestTrackableMicros, histogram.Max);
        Assert.Equal(0, histogram.Percentile(50));
        Assert.Equal(LatencyHistogram.HighestTrackableMicros, histogram.Percentile(100));
    }

    [Fact]
    public void Ticks_are_converted_to_microseconds()
    {
        var histogram = new LatencyHistogram();
        histogram.RecordTicks(System.Diagnostics.Stopwatch.Frequency / 1000);

        Assert.Equal(1000, histogram.Max);
    }

    [Fact]
    public void Merging_gives_the_percentiles_of_all_samples_not_an_average_of_percentiles()
    {
        // Two workers with very different latencies: the merged p50 is that of the union.
        var fast = new LatencyHistogram();
        var slow = new LatencyHistogram();
        var all = new LatencyHistogram();
        for (int i = 0; i < 900; i++)
        {
            fast.Record(100 + i);
            all.Record(100 + i);
        }

        for (int i = 0; i < 100; i++)
        {
            slow.Record(50_000 + i * 10);
            all.Record(50_000 + i * 10);
        }

        var merged = new LatencyHistogram();
        merged.Merge(fast);
        merged.Merge(slow);

        Assert.Equal(all.Count, merged.Count);
        Assert.Equal(all.Min, merged.Min);
        Assert.Equal(all.Max, merged.Max);
        Assert.Equal(all.Mean, merged.Mean);
        foreach (double p in new[] { 1.0, 50, 90, 90.1, 99, 99.9, 100 })
        {
            Assert.Equal(all.Percentile(p), merged.Percentile(p));
        }

        Assert.InRange(merged.Percentile(50), 100, 1000);
        Assert.InRange(merged.Percentile(95), 50_000, 52_000);
    }

    [Fact]
    public void Merging_an_empty_histogram_either_way_keeps_min_and_max()
    {
        var samples = new LatencyHistogram();
        samples.Record(7);
        samples.Record(700);

        var intoEmpty = new LatencyHistogram();
        intoEmpty.Merge(samples);
        samples.Merge(new LatencyHistogram());

        foreach (LatencyHistogram h in new[] { intoEmpty, samples })
        {
            Assert.Equal(2, h.Count);
            Assert.Equal(7, h.Min);
            Assert.Equal(700, h.Max);
        }
    }

    [Fact]
    public void Worker_results_merge_through_their_wire_form()
    {
        var first = new LatencyHistogram();
        var second = new LatencyHistogram();
        var all = new LatencyHistogram();
        var random = new Random(1234);
        for (int i = 0; i < 5000; i++)
        {
            long v = random.NextInt64(1, 5_000_000);
            (i % 3 == 0 ? first : second).Record(v);
            all.Record(v);
        }

        WorkerResult Result(LatencyHistogram h, long count) => new(
            new Dictionary<string, long> { ["pingsSent"] = count },
            new Dictionary<string, double> { ["connectSeconds"] = count / 1000.0 },
            new Dictionary<string, HistogramData> { [HistogramNames.Ping] = h.ToData() },
            [new TimelinePoint(1, count, count, 0, 0, 0, 0, 0, count, 100 * count, 200 * count, 300 * count)]);

        // Through JSON, as a worker's RESULT line travels to the coordinator.
        WorkerResult Wire(WorkerResult r) => System.Text.Json.JsonSerializer.Deserialize<WorkerResult>(System.Text.Json.JsonSerializer.Serialize(r))!;
        WorkerResult merged = WorkerResult.Merge([Wire(Result(first, 10)), Wire(Result(second, 20))]);
        LatencyHistogram mergedPing = LatencyHistogram.FromData(merged.Histograms[HistogramNames.Ping]);

        // Timelines merge by second: counts add, per-second latency is the worst worker's.
        var point = Assert.Single(merged.Timeline!);
        Assert.Equal(30, point.Connected);
        Assert.Equal(30, point.Pings);
        Assert.Equal(4000, point.PingP99Micros);

        Assert.Equal(30, merged.Counters["pingsSent"]);
        // Phases ran in parallel in every worker: a duration is the longest, not the sum.
        Assert.Equal(0.02, merged.Timings["connectSeconds"]);
        Assert.Equal(all.Count, mergedPing.Count);
        Assert.Equal(all.Min, mergedPing.Min);
        Assert.Equal(all.Max, mergedPing.Max);
        foreach (double p in new[] { 50.0, 99, 99.9 })
        {
            Assert.Equal(all.Percentile(p), mergedPing.Percentile(p));
        }
    }
}
