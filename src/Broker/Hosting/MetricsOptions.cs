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

    /// <summary>
    /// Loopback by default: the metrics and the admin API say a lot about the clients, so only this machine sees them
    /// unless the operator opens the listener (a container binds 0.0.0.0: its loopback is its own).
    /// </summary>
    public string Address { get; init; } = "127.0.0.1";

    /// <summary>
    /// Set: <c>/metrics</c> answers only requests with <c>Authorization: Bearer &lt;token&gt;</c> (Prometheus'
    /// <c>authorization</c> / <c>bearer_token_file</c>). <c>/healthz</c> and <c>/readyz</c> never need it.
    /// </summary>
    public string? Token { get; init; }

    /// <summary>9464 is the Prometheus exporter's registered default; 0 binds an ephemeral port (tests).</summary>
    public int Port { get; init; } = 9464;

    /// <summary>
    /// When set, the broker writes the URL of its /healthz there once listening, and <c>--healthcheck</c> reads it:
    /// a container's HEALTHCHECK process does not see the arguments the broker was started with.
    /// </summary>
    public string? EndpointFile { get; init; }
}
