using System.Net;
using Microsoft.Extensions.Logging;

namespace Broker.Diagnostics;

/// <summary>
/// Source-generated log messages with stable event ids. Nothing is logged per packet, and per-connection events are
/// Debug: at Information a fleet's churn is one summary line per interval (event 40), not a line per device.
/// Causes, results and reasons are written with the same snake_case names as the metric labels.
/// </summary>
internal static partial class BrokerLog
{
    [LoggerMessage(1, LogLevel.Information, "MQTT listener on {EndPoint}")]
    public static partial void Listening(ILogger logger, EndPoint endPoint);

    [LoggerMessage(19, LogLevel.Information, "MQTT {Listener} listener on {Url}")]
    public static partial void ListeningOn(ILogger logger, string listener, string url);

    [LoggerMessage(2, LogLevel.Debug, "Client {ClientId} connected from {RemoteEndPoint}: MQTT {Version}, keep-alive {KeepAlive}s (requested {RequestedKeepAlive}s), clean start {CleanStart}, session present {SessionPresent}")]
    public static partial void ClientConnected(ILogger logger, string clientId, EndPoint? remoteEndPoint, string version, int keepAlive, int requestedKeepAlive, bool cleanStart, bool sessionPresent);

    [LoggerMessage(3, LogLevel.Debug, "Client {ClientId} disconnected: MQTT {Version}, keep-alive {KeepAlive}s, cause {Cause}{Detail}")]
    private static partial void ClientDisconnected(ILogger logger, string clientId, string version, int keepAlive, string cause, string detail);

    public static void ClientDisconnected(ILogger logger, string clientId, string version, int keepAlive, DisconnectCause cause, string detail)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            ClientDisconnected(logger, clientId, version, keepAlive, DiagnosticNames.Of(cause), detail);
        }
    }

    [LoggerMessage(4, LogLevel.Debug, "Client {ClientId} timed out: MQTT {Version}, keep-alive {KeepAlive}s, no packet for {SilentSeconds:F3}s (limit {LimitSeconds:F3}s)")]
    public static partial void KeepAliveTimeout(ILogger logger, string clientId, string version, int keepAlive, double silentSeconds, double limitSeconds);

    [LoggerMessage(5, LogLevel.Debug, "Connection from {RemoteEndPoint} refused: {Reason}")]
    public static partial void ConnectRefused(ILogger logger, EndPoint? remoteEndPoint, string reason);

    [LoggerMessage(6, LogLevel.Debug, "Connection from {RemoteEndPoint} closed: no CONNECT within {TimeoutSeconds}s")]
    public static partial void ConnectTimeout(ILogger logger, EndPoint? remoteEndPoint, double timeoutSeconds);

    [LoggerMessage(7, LogLevel.Debug, "Client {ClientId} from {RemoteEndPoint} sent an invalid packet, closing: {Error}")]
    public static partial void ProtocolViolation(ILogger logger, string clientId, EndPoint? remoteEndPoint, string error);

    [LoggerMessage(8, LogLevel.Warning, "Client {ClientId} took no data for {Seconds}s (Broker:Limits:SlowConsumerSeconds) with {Queued} messages queued: disconnecting it as a slow consumer")]
    public static partial void SlowConsumer(ILogger logger, string clientId, int seconds, int queued);

    [LoggerMessage(14, LogLevel.Information, "Client {ClientId} stopped reading ({StalledSeconds}s without taking data, {PendingBytes} bytes written and {Queued} messages queued): its QoS 0 messages are dropped and its queue keeps the newest until it reads again")]
    public static partial void ClientStalled(ILogger logger, string clientId, double stalledSeconds, long pendingBytes, int queued);

    [LoggerMessage(15, LogLevel.Debug, "Client {ClientId} reads again")]
    public static partial void ClientReadsAgain(ILogger logger, string clientId);

    [LoggerMessage(16, LogLevel.Warning, "Messages for client {ClientId} dropped: {QoS0} QoS 0 (client stalled or queue full) and {Queued} queued QoS 1/2 or replayed retained (queue full: Broker:Limits:MaxQueuedMessages / MaxQueuedBytes) since the last report (at most one every {IntervalSeconds}s)")]
    public static partial void MessagesDropped(ILogger logger, string clientId, long qoS0, long queued, double intervalSeconds);

    [LoggerMessage(9, LogLevel.Error, "Unexpected error on the connection of {ClientId}")]
    public static partial void ConnectionFault(ILogger logger, string clientId, Exception exception);

    [LoggerMessage(10, LogLevel.Information, "Broker shutting down: closing {Count} connections")]
    public static partial void ShuttingDown(ILogger logger, int count);

    [LoggerMessage(11, LogLevel.Error, "Accept loop failed")]
    public static partial void AcceptFailed(ILogger logger, Exception exception);

    [LoggerMessage(12, LogLevel.Debug, "Session {ClientId} expired")]
    public static partial void SessionExpired(ILogger logger, string clientId);

    [LoggerMessage(13, LogLevel.Warning, "Keep-alive wheel tick ran {LagMs:F0} ms late: the broker was stalled; connections with unread input are not expired")]
    public static partial void TickLag(ILogger logger, double lagMs);

    [LoggerMessage(30, LogLevel.Information, "HTTP endpoint on http://{EndPoint}: {Paths}")]
    public static partial void MetricsListening(ILogger logger, EndPoint endPoint, string paths);

    [LoggerMessage(31, LogLevel.Information, "MQTT broker {Version} on .NET {Runtime}, {Processors} processors, file descriptors {OpenDescriptors} open of {MaxDescriptors}")]
    public static partial void Starting(ILogger logger, string version, string runtime, int processors, string openDescriptors, string maxDescriptors);

    [LoggerMessage(32, LogLevel.Information, "Limits: {Limits}")]
    public static partial void EffectiveLimits(ILogger logger, string limits);

    [LoggerMessage(33, LogLevel.Information, "Admin API: client {ClientId} disconnected by request from {Remote}")]
    public static partial void AdminDisconnect(ILogger logger, string clientId, string remote);

    [LoggerMessage(34, LogLevel.Information, "$SYS topics published every {IntervalSeconds} s")]
    public static partial void SysPublishing(ILogger logger, int intervalSeconds);

    [LoggerMessage(35, LogLevel.Warning, "Cannot write Broker:Metrics:EndpointFile {Path}: {Error}; --healthcheck falls back to the configuration")]
    public static partial void EndpointFileFailed(ILogger logger, string path, string error);

    [LoggerMessage(20, LogLevel.Information, "Last {IntervalSeconds} s: {Connected} connected, {Disconnected} disconnected{DisconnectCauses}, {Refused} refused{RefusalResults}; {Online} online")]
    public static partial void ConnectionSummary(ILogger logger, int intervalSeconds, long connected, long disconnected, string disconnectCauses,
        long refused, string refusalResults, long online);

    [LoggerMessage(17, LogLevel.Warning, "The socket engine is behind: a ready client waited {LagMilliseconds:F0} ms for its turn (Broker:Limits:EngineLagMilliseconds); publishers are read one PUBLISH at a time until it catches up ({Episodes} times since start, logged at most every 10 s)")]
    public static partial void EngineBehind(ILogger logger, double lagMilliseconds, long episodes);

    [LoggerMessage(18, LogLevel.Warning, "Cannot open the loopback socket pair that measures the socket engine's lag: publishers are not held when the broker as a whole is behind (Broker:Limits:EngineLagMilliseconds)")]
    public static partial void EngineLagProbeUnavailable(ILogger logger);
}
