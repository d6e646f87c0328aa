using BenchmarkDotNet.Attributes;
using Broker.Diagnostics;
using Broker.Diagnostics.Insight;
using Broker.Protocol;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace Broker.Benchmarks;

/// <summary>
/// Recording on the hot path (per packet, per message) through the broker's instruments while the production
/// OpenTelemetry pipeline (MeterProvider + Prometheus exporter) listens to them: must allocate 0 B.
/// <c>Listened = false</c> is the cost when the endpoint is disabled (Broker:Metrics:Enabled = false).
/// </summary>
[MemoryDiagnoser]
public class MetricsBenchmarks
{
    private BrokerMetrics _metrics = null!;
    private MeterProvider? _provider;

    [Params(true, false)]
    public bool Listened { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _metrics = new BrokerMetrics();
        if (Listened)
        {
            _provider = Sdk.CreateMeterProviderBuilder().AddMeter(BrokerMetrics.MeterName).AddPrometheusExporter().Build();
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _provider?.Dispose();
        _metrics.Dispose();
    }

    [Benchmark]
    public void PacketReceivedPublish() => _metrics.PacketReceived(PacketType.Publish);

    [Benchmark]
    public void BytesReceived() => _metrics.BytesReceived(128);

    [Benchmark]
    public void MessageDelivered() => _metrics.MessageDelivered(QualityOfService.AtLeastOnce);

    [Benchmark]
    public void MessageDroppedCongestion() => _metrics.MessageDropped(DropReason.QoS0Congestion);

    [Benchmark]
    public void DisconnectKeepAliveTimeout() => _metrics.Disconnect(DisconnectCause.KeepAliveTimeout);

    [Benchmark]
    public void ClientConnectedV5() => _metrics.ClientConnected(MqttProtocolVersion.V500);

    [Benchmark]
    public void TickLagHistogram() => _metrics.TickLag(TimeSpan.FromMilliseconds(3));

    [Benchmark]
    public void IdleBeforeDeathHistogram() => _metrics.IdleBeforeDeath(HalfOpenCause.Takeover, TimeSpan.FromSeconds(351));
}
