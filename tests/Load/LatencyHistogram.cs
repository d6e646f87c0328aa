using System.Text.Json.Serialization;
using HdrHistogram;
using HdrHistogram.Encoding;
using HdrHistogram.Utilities;

namespace Broker.Load;

/// <summary>
/// Microsecond latencies in an HdrHistogram (3 significant digits: at most 0.1% relative error, from 1 µs to one
/// hour; longer values are recorded as one hour). Recording is thread-safe and allocation-free. Histograms from
/// several workers travel in HdrHistogram's V2 encoding and merge by adding counts, so percentiles are
/// computed over all samples, never averaged. Count, sum, min and max are also kept exactly.
/// </summary>
internal sealed class LatencyHistogram
{
    public const long HighestTrackableMicros = 3_600_000_000;
    private const int SignificantDigits = 3;

    private readonly LongConcurrentHistogram _histogram = new(1, HighestTrackableMicros, SignificantDigits);
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
        micros = Math.Clamp(micros, 0, HighestTrackableMicros);
        _histogram.RecordValue(micros);
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

    /// <summary>Value at or below which <paramref name="percentile"/> % of samples fall (HdrHistogram's value, clamped to the exact min and max).</summary>
    public long Percentile(double percentile)
    {
        if (Count == 0)
        {
            return 0;
        }

        return Math.Clamp(_histogram.GetValueAtPercentile(Math.Clamp(percentile, 0, 100)), Min, Max);
    }

    public void Merge(LatencyHistogram other)
    {
        if (other.Count == 0)
        {
            return;
        }

        _histogram.Add(other._histogram);
        _min = Math.Min(_min, other._min);
        _max = Math.Max(_max, other._max);
        _count += other._count;
        _sum += other._sum;
    }

    public HistogramData ToData()
    {
        // Encoded from a copy: clients may still record (idle pingers, late deliveries) while the report is built, and
        // encoding a histogram that changes underneath gives a payload that does not decode. Uncompressed:
        // HdrHistogram.NET 2.5.0's compressed form does not always decode again (its inflating read stops at a
        // compression block boundary: "The buffer does not contain the indicated payload amount", HdrHistogram.NET #99).
        var snapshot = _histogram.Copy();
        var buffer = ByteBuffer.Allocate(snapshot.GetNeededByteBufferCapacity());
        int length = snapshot.Encode(buffer, HistogramEncoderV2.Instance);
        // ByteBuffer copies what it is given and has no accessor for its array: read the encoding back.
        buffer.Position = 0;
        byte[] encoded = new byte[length];
        for (int i = 0; i < length; i++)
        {
            encoded[i] = buffer.Get();
        }
        return new HistogramData(Count, Volatile.Read(ref _sum), Min, Max, Convert.ToBase64String(encoded));
    }

    public static LatencyHistogram FromData(HistogramData data)
    {
        var histogram = new LatencyHistogram();
        if (data.Count == 0)
        {
            return histogram;
        }

        var decoded = HistogramEncoding.DecodeFromByteBuffer(ByteBuffer.Allocate(Convert.FromBase64String(data.Encoded)), HighestTrackableMicros, null);
        histogram._histogram.Add(decoded);
        histogram._count = data.Count;
        histogram._sum = data.Sum;
        histogram._min = data.Min;
        histogram._max = data.Max;
        return histogram;
    }
}

/// <summary>Wire form of a histogram in a worker's JSON result: HdrHistogram's V2 encoding (uncompressed: see ToData), base64, plus the exact summary.</summary>
internal sealed record HistogramData(
    [property: JsonPropertyName("count")] long Count,
    [property: JsonPropertyName("sum")] long Sum,
    [property: JsonPropertyName("min")] long Min,
    [property: JsonPropertyName("max")] long Max,
    [property: JsonPropertyName("hdr")] string Encoded);
