using System.Diagnostics.Metrics;
using Broker.Diagnostics;
using Broker.Diagnostics.Insight;
using Broker.Hosting;
using Broker.Protocol;
using OpenTelemetry.Metrics;
using Xunit;

namespace Broker.Tests.Diagnostics;

/// <summary>The label values docs/metrics.md promises, and the metrics options' messages naming their keys.</summary>
public sealed class BrokerMetricsTests
{
    [Fact]
    public void Recordings_carry_the_documented_label_values()
    {
        using var metrics = new BrokerMetrics();
        var seen = new List<(string Instrument, long Value, string Tag)>();
        using var listener = Broker.Tests.Diagnostics.MeterRecording.Start(metrics.Meter, seen);

        metrics.Disconnect(DisconnectCause.KeepAliveTimeout);
        metrics.Disconnect(DisconnectCause.LimitExceeded);
        metrics.MessageDropped(DropReason.QoS0Congestion);
        metrics.ConnectAttempt(ConnectResult.BadAuthenticationMethod);
        metrics.PacketReceived(PacketType.PingReq);
        metrics.ClientConnected(MqttProtocolVersion.V500);
        metrics.ClientDisconnected(MqttProtocolVersion.V311);

        Assert.Equal(
        [
            ("mqtt.disconnects", 1, "cause=keep_alive_timeout"),
            ("mqtt.disconnects", 1, "cause=limit_exceeded"),
            ("mqtt.messages.dropped", 1, "reason=qos0_congestion"),
            ("mqtt.connect.attempts", 1, "result=bad_authentication_method"),
            ("mqtt.packets.received", 1, "type=PINGREQ"),
            ("mqtt.clients.connected", 1, "protocol=5.0"),
            ("mqtt.clients.connected", -1, "protocol=3.1.1"),
        ], seen);
    }

    [Fact]
    public void Idle_before_death_is_recorded_in_seconds_by_cause_with_buckets_around_the_usual_timeouts()
    {
        using var metrics = new BrokerMetrics();
        var seen = new List<(double Value, string Tag)>();
        IReadOnlyList<double>? buckets = null;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, metrics.Meter) && instrument.Name == "mqtt.connection.idle_before_death")
            {
                buckets = ((Histogram<double>)instrument).Advice?.HistogramBucketBoundaries;
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((_, value, tags, _) => seen.Add((value, $"{tags[0].Key}={tags[0].Value}")));
        listener.Start();

        metrics.IdleBeforeDeath(HalfOpenCause.Takeover, TimeSpan.FromSeconds(351.5));
        metrics.IdleBeforeDeath(HalfOpenCause.Reset, TimeSpan.FromSeconds(61));
        metrics.IdleBeforeDeath(HalfOpenCause.TimedOut, TimeSpan.FromSeconds(120));
        metrics.IdleBeforeDeath(HalfOpenCause.HostUnreachable, TimeSpan.FromSeconds(5));
        metrics.IdleBeforeDeath(HalfOpenCause.KeepAliveExpired, TimeSpan.FromSeconds(900));

        Assert.Equal(
        [
            (351.5, "cause=takeover"), (61, "cause=reset"), (120, "cause=timed_out"), (5, "cause=host_unreachable"),
            (900, "cause=keep_alive_expired"),
        ], seen);
        Assert.NotNull(buckets);
        // Each usual timeout T is a boundary with another just above it: deaths just after T have their own bucket.
        foreach (var (timeout, after) in new[] { (30.0, 32.0), (60, 65), (120, 130), (240, 260), (300, 320), (350, 375), (600, 640), (900, 960), (1800, 1920), (3600, 3840) })
        {
            int i = buckets!.ToList().IndexOf(timeout);
            Assert.True(i >= 0 && buckets[i + 1] == after, $"{timeout} s should be followed by {after} s");
        }
    }

    [Theory]
    [InlineData("nowhere", 9464, "Broker:Metrics:Address must be an IPv4 or IPv6 address (was 'nowhere')")]
    [InlineData("127.0.0.1", 70000, "Broker:Metrics:Port must be between 0 and 65535 (was 70000)")]
    [InlineData("127.0.0.1", -1, "Broker:Metrics:Port must be between 0 and 65535 (was -1)")]
    public void Invalid_metrics_options_name_the_key(string address, int port, string expected)
    {
        var result = new MetricsOptionsValidator().Validate(null, new MetricsOptions { Address = address, Port = port });
        Assert.True(result.Failed);
        Assert.Equal([expected], result.Failures!);
    }

    [Fact]
    public void Disabled_metrics_are_still_validated_because_the_listener_stays_for_the_probes_and_defaults_are_valid()
    {
        var validator = new MetricsOptionsValidator();
        Assert.True(validator.Validate(null, new MetricsOptions { Enabled = false, Address = "nowhere" }).Failed);
        Assert.True(validator.Validate(null, new MetricsOptions()).Succeeded);
        Assert.True(validator.Validate(null, new MetricsOptions { Port = 0 }).Succeeded);
    }
}
