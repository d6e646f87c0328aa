using Broker.Connections;
using Broker.Diagnostics;
using Broker.Transport;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Broker.Tests.Connections;

/// <summary>
/// The gate's thresholds, driven by hand (no probe): behind from a lag at or above Broker:Limits:EngineLagMilliseconds,
/// answered or still unanswered; caught up only below a quarter of it, so it does not flap around one value.
/// Holding and releasing real clients: Conformance's EngineOverloadTests.
/// </summary>
public sealed class EngineOverloadGateTests
{
    private static readonly TimeSpan Threshold = TimeSpan.FromMilliseconds(20);

    [Fact]
    public void An_answer_at_the_threshold_makes_the_engine_behind_and_only_one_below_a_quarter_of_it_ends_that()
    {
        using var metrics = new BrokerMetrics();
        using var gate = Gate(metrics);
        gate.OnLagMeasured(TimeSpan.FromMilliseconds(19));
        Assert.False(gate.IsBehind);

        gate.OnLagMeasured(Threshold);
        Assert.True(gate.IsBehind);
        Assert.True(((ISocketEngineLagObserver)gate).NeedsProbes, "a gate that is behind must keep measuring without traffic");

        // Between a quarter and the threshold: still behind.
        gate.OnLagMeasured(TimeSpan.FromMilliseconds(10));
        gate.OnLagMeasured(TimeSpan.FromMilliseconds(5));
        Assert.True(gate.IsBehind);

        gate.OnLagMeasured(TimeSpan.FromMilliseconds(4.9));
        Assert.False(gate.IsBehind);
        Assert.False(((ISocketEngineLagObserver)gate).NeedsProbes);
    }

    [Fact]
    public void A_probe_unanswered_for_as_long_as_the_threshold_is_behind_without_waiting_for_its_answer()
    {
        using var metrics = new BrokerMetrics();
        using var gate = Gate(metrics);
        gate.OnProbeUnanswered(TimeSpan.FromMilliseconds(15));
        Assert.False(gate.IsBehind);
        gate.OnProbeUnanswered(TimeSpan.FromMilliseconds(25));
        Assert.True(gate.IsBehind);
    }

    [Fact]
    public void Each_episode_is_counted_once_and_measured_lags_are_recorded()
    {
        using var metrics = new BrokerMetrics();
        var seen = new List<(string Instrument, long Value, string Tag)>();
        using var listener = Broker.Tests.Diagnostics.MeterRecording.Start(metrics.Meter, seen);
        var lags = new List<double>();
        listener.SetMeasurementEventCallback<double>((instrument, value, _, _) =>
        {
            if (instrument.Name == "mqtt.socket_engine.lag")
            {
                lags.Add(value);
            }
        });
        using var gate = Gate(metrics);

        gate.OnProbeUnanswered(TimeSpan.FromMilliseconds(30));
        gate.OnLagMeasured(TimeSpan.FromMilliseconds(40));
        gate.OnLagMeasured(TimeSpan.FromMilliseconds(1));
        gate.OnLagMeasured(TimeSpan.FromMilliseconds(50));

        Assert.Equal(2, seen.Count(s => s.Instrument == "mqtt.socket_engine.behind"));
        Assert.Equal([0.040, 0.001, 0.050], lags);
    }

    [Fact]
    public void When_measuring_stops_the_gate_is_no_longer_behind()
    {
        using var metrics = new BrokerMetrics();
        using var gate = Gate(metrics);
        gate.OnLagMeasured(TimeSpan.FromSeconds(1));
        gate.OnStopped();
        Assert.False(gate.IsBehind);
    }

    [Fact]
    public void A_gate_set_to_zero_has_no_probe_and_is_never_behind()
    {
        using var metrics = new BrokerMetrics();
        using var gate = new EngineOverloadGate(TimeSpan.Zero, metrics, NullLogger.Instance);
        gate.Start();
        gate.NotePublish();
        Assert.False(gate.IsBehind);
    }

    private static EngineOverloadGate Gate(BrokerMetrics metrics) => new(Threshold, metrics, NullLogger.Instance, measure: false);
}
