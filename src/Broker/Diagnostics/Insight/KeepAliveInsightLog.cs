using Microsoft.Extensions.Logging;

namespace Broker.Diagnostics.Insight;

/// <summary>Log events of the keep-alive insight (16xx, after the issue that introduced them).</summary>
internal static partial class KeepAliveInsightLog
{
    [LoggerMessage(1600, LogLevel.Information, "Keep-alive insight: {Advice}")]
    public static partial void Advice(ILogger logger, string advice);

    [LoggerMessage(1601, LogLevel.Information, "Keep-alive insight: {Count} more networks have advice; GET /api/keepalive/networks on the metrics listener lists them")]
    public static partial void MoreAdvice(ILogger logger, int count);
}
