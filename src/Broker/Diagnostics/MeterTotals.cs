using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Broker.Diagnostics;

/// <summary>
/// Running totals of the broker's own counters, read in-process by <c>$SYS</c> and the connection summary log.
/// A <see cref="MeterListener"/> of its own rather than counters beside the instruments: the hot paths stay one
/// <c>Add</c> each, and when neither reader is configured nobody creates this and nothing extra happens per packet.
/// It listens only to this broker's <see cref="BrokerMetrics.Meter"/> (several brokers share a process in tests).
/// </summary>
internal sealed class MeterTotals : IDisposable
{
    // Instruments whose totals are kept, and whether each is also split by its one label.
    private static readonly Dictionary<string, bool> Tracked = new(StringComparer.Ordinal)
    {
        ["mqtt.clients.connected"] = false,
        ["mqtt.connect.attempts"] = true,
        ["mqtt.disconnects"] = true,
        ["mqtt.keepalive.expiries"] = false,
        ["mqtt.packets.received"] = false,
        ["mqtt.packets.sent"] = false,
        ["mqtt.network.received"] = false,
        ["mqtt.network.sent"] = false,
        ["mqtt.messages.published"] = false,
        ["mqtt.messages.delivered"] = false,
        ["mqtt.messages.dropped"] = true,
    };

    private readonly MeterListener _listener;
    private readonly ConcurrentDictionary<string, Total> _totals = new(StringComparer.Ordinal);

    public MeterTotals(BrokerMetrics metrics)
    {
        foreach (var (name, split) in Tracked)
        {
            _totals[name] = new Total(split);
        }
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter, metrics.Meter) && _totals.TryGetValue(instrument.Name, out var total))
                {
                    listener.EnableMeasurementEvents(instrument, total);
                }
            },
        };
        _listener.SetMeasurementEventCallback<long>(static (_, value, tags, state) => ((Total)state!).Add(value, tags));
        _listener.Start();
    }

    /// <summary>The sum of every measurement of <paramref name="instrument"/> (an up-down counter: its current value).</summary>
    public long Get(string instrument) => _totals.TryGetValue(instrument, out var t) ? Volatile.Read(ref t.Sum) : 0;

    /// <summary>The totals by label value, for instruments that are split; empty for the others.</summary>
    public IReadOnlyDictionary<string, long> ByLabel(string instrument)
        => _totals.TryGetValue(instrument, out var t) && t.ByLabel is { } byLabel
            ? byLabel.ToDictionary(p => p.Key, p => Volatile.Read(ref p.Value.Value), StringComparer.Ordinal)
            : new Dictionary<string, long>();

    public void Dispose() => _listener.Dispose();

    private sealed class Total(bool split)
    {
        public long Sum;
        public readonly ConcurrentDictionary<string, StrongBox>? ByLabel = split ? new(StringComparer.Ordinal) : null;

        public void Add(long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            Interlocked.Add(ref Sum, value);
            if (ByLabel is not null && tags.Length > 0 && tags[0].Value is string label)
            {
                // The label values are a small fixed set (enum names): after the first of each, a lookup and an add.
                Interlocked.Add(ref ByLabel.GetOrAdd(label, static _ => new StrongBox()).Value, value);
            }
        }
    }

    private sealed class StrongBox
    {
        public long Value;
    }
}
