namespace Broker.Hosting;

/// <summary>The HTTP endpoint for Prometheus and health probes, bound from <c>Broker:Metrics</c>.</summary>
internal sealed record MetricsOptions
{
    public const string SectionName = "Broker:Metrics";

    /// <summary>False: no HTTP listener and no OpenTelemetry listener on the broker's instruments.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Kept apart from the MQTT address so the endpoint can stay on a private interface.</summary>
    public string Address { get; init; } = "0.0.0.0";

    /// <summary>9464 is the Prometheus exporter's registered default; 0 binds an ephemeral port (tests).</summary>
    public int Port { get; init; } = 9464;
}
