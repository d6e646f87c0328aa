using System.Diagnostics.Metrics;
using Broker.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace Conformance.Infrastructure;

/// <summary>
/// Counts the control packets of one type that one in-process broker receives, from its own metrics instrument
/// (mqtt.packets.received): the way a test sees a client's PINGREQs, which nothing else reports. Brokers of tests
/// running in parallel have their own meters (one IMeterFactory per host), so only this broker's packets count.
/// </summary>
internal sealed class PacketCounter : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly string _type;
    private readonly object _gate = new();
    private long _count;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public PacketCounter(BrokerInstance broker, Broker.Protocol.PacketType type)
    {
        _type = type.ToString().ToUpperInvariant();
        var factory = broker.Services.GetRequiredService<IMeterFactory>();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == BrokerMetrics.MeterName && ReferenceEquals(instrument.Meter.Scope, factory)
                && instrument.Name == "mqtt.packets.received")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "type" && (string?)tag.Value == _type)
                {
                    lock (_gate)
                    {
                        _count += value;
                        _changed.TrySetResult();
                        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    }
                }
            }
        });
        _listener.Start();
    }

    public long Count
    {
        get
        {
            lock (_gate)
            {
                return _count;
            }
        }
    }

    /// <summary>Waits (bounded) until at least <paramref name="count"/> packets arrived.</summary>
    public async Task WaitForAsync(long count, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (_count >= count)
                {
                    return;
                }
                changed = _changed.Task;
            }
            try
            {
                await changed.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"{Count} {_type} within {timeout}, expected {count}");
            }
        }
    }

    public void Dispose() => _listener.Dispose();
}
