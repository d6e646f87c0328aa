namespace Broker.Hosting;

/// <summary>
/// The broker's HTTP listener for Prometheus, health probes and the admin API, bound from <c>Broker:Metrics</c>.
/// </summary>
internal sealed record MetricsOptions
{
    public const string SectionName = "Broker:Metrics";

    /// <summary>
    /// False: no <c>/metrics</c> and no OpenTelemetry listener on the broker's instruments. The HTTP listener stays,
    /// for <c>/healthz</c>, <c>/readyz</c> and the admin API: every deployment needs its probes.
    /// </summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Kept apart from the MQTT address so the endpoint can stay on a private interface.</summary>
    public string Address { get; init; } = "0.0.0.0";

    /// <summary>9464 is the Prometheus exporter's registered default; 0 binds an ephemeral port (tests).</summary>
    public int Port { get; init; } = 9464;

    /// <summary>
    /// When set, the broker writes the URL of its /healthz there once listening, and <c>--healthcheck</c> reads it:
    /// a container's HEALTHCHECK process does not see the arguments the broker was started with.
    /// </summary>
    public string? EndpointFile { get; init; }
}
