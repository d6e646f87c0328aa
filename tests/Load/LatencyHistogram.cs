using System.Numerics;
using System.Text.Json.Serialization;

namespace Broker.Load;

/// <summary>
/// Log-linear histogram of microsecond values: exact below 32, then 32 buckets per power of two
/// (at most ~3% relative error). Recording is lock-free and allocation-free; histograms from
/// several workers merge by adding bucket counts, so percentiles are computed after the merge.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int SubBucketBits = 5;
    private const int SubBucketCount = 1 << SubBucketBits;
    private const int BucketCount = SubBucketCount + (63 - SubBucketBits) * SubBucketCount;

    private readonly long[] _counts = new long[BucketCount];
    private long _count;
    private long _sum;
    private long _min = long.MaxValue;
    private long _max = long.MinValue;

    public long Count => Volatile.Read(ref _count);
    public long Min => Count == 0 ? 0 : Volatile.Read(ref _min);
    public long Max => Count == 0 ? 0 : Volatile.Read(ref _max);
    public double Mean => Count == 0 ? 0 : (double)Volatile.Read(ref _sum) / Count;

    public void Record(long micros)
    {
        if (micros < 0)
        {
            micros = 0;
        }

        Interlocked.Increment(ref _counts[IndexOf(micros)]);
        Interlocked.Increment(ref _count);
        Interlocked.Add(ref _sum, micros);
        long seen = Volatile.Read(ref _min);
        while (micros < seen && Interlocked.CompareExchange(ref _min, micros, seen) != seen)
        {
            seen = Volatile.Read(ref _min);
        }

        seen = Volatile.Read(ref _max);
        while (micros > seen && Interlocked.CompareExchange(ref _max, micros, seen) != seen)
        {
            seen = Volatile.Read(ref _max);
        }
    }

    public void RecordTicks(long stopwatchTicks) => Record(TicksToMicros(stopwatchTicks));

    public static long TicksToMicros(long stopwatchTicks) =>
        (long)(stopwatchTicks * (1_000_000.0 / System.Diagnostics.Stopwatch.Frequency));

    /// <summary>Value at or below which <paramref name="percentile"/> % of samples fall (bucket upper bound, clamped to max).</summary>
    public long Percentile(double percentile)
    {
        long count = Count;
        if (count == 0)
        {
            return 0;
        }

        long rank = (long)Math.Ceiling(percentile / 100.0 * count);
        rank = Math.Clamp(rank, 1, count);
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += Volatile.Read(ref _counts[i]);
            if (seen >= rank)
            {
                return Math.Clamp(UpperBound(i), Min, Max);
            }
        }

        return Max;
    }

    public void Merge(LatencyHistogram other)
    {
        for (int i = 0; i < _counts.Length; i++)
        {
            _counts[i] += other._counts[i];
        }

        if (other.Count == 0)
        {
            return;
        }

        _min = Math.Min(_min, other._min);
        _max = Math.Max(_max, other._max);
        _count += other._count;
        _sum += other._sum;
    }

    public HistogramData ToData()
    {
        var buckets = new List<long[]>();
        for (int i = 0; i < _counts.Length; i++)
        {
            long c = Volatile.Read(ref _counts[i]);
            if (c != 0)
            {
                buckets.Add([i, c]);
            }
        }

        return new HistogramData(Count, Volatile.Read(ref _sum), Min, Max, buckets);
    }

    public static LatencyHistogram FromData(HistogramData data)
    {
        var histogram = new LatencyHistogram();
        foreach (long[] pair in data.Buckets)
        {
            histogram._counts[pair[0]] = pair[1];
        }

        histogram._count = data.Count;
        histogram._sum = data.Sum;
        if (data.Count > 0)
        {
            histogram._min = data.Min;
            histogram._max = data.Max;
        }

        return histogram;
    }

    private static int IndexOf(long value)
    {
        if (value < SubBucketCount)
        {
            return (int)value;
        }

        int msb = 63 - BitOperations.LeadingZeroCount((ulong)value);
        int shift = msb - SubBucketBits;
        int mantissa = (int)(value >> shift) & (SubBucketCount - 1);
        return SubBucketCount + shift * SubBucketCount + mantissa;
    }

    private static long UpperBound(int index)
    {
        if (index < SubBucketCount)
        {
            return index;
        }

        int shift = (index - SubBucketCount) / SubBucketCount;
        int mantissa = (index - SubBucketCount) % SubBucketCount;
        return ((long)(SubBucketCount + mantissa + 1) << shift) - 1;
    }
}

/// <summary>Wire form of a histogram in a worker's JSON result: sparse [index, count] pairs.</summary>
internal sealed record HistogramData(
    [property: JsonPropertyName("count")] long Count,
    [property: JsonPropertyName("sum")] long Sum,
    [property: JsonPropertyName("min")] long Min,
    [property: JsonPropertyName("max")] long Max,
    [property: JsonPropertyName("buckets")] List<long[]> Buckets);
