using Broker.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Broker.Persistence;

/// <summary>Source-generated log messages of the store (event ids 40-49).</summary>
internal static partial class PersistenceLog
{
    [LoggerMessage(40, LogLevel.Information, "Persistent store {Path}: restored {Sessions} sessions ({Subscriptions} subscriptions, {Queued} queued and {Inflight} in-flight messages, {InboundQoS2} inbound QoS 2 ids), {Retained} retained messages ({RetainedBytes} bytes) and {Wills} pending wills in {ElapsedMs:F0} ms; expired while down: {ExpiredSessions} sessions, {ExpiredQueued} queued and {ExpiredRetained} retained messages")]
    public static partial void Restored(ILogger logger, string path, int sessions, int subscriptions, int queued, int inflight, int inboundQoS2,
        int retained, long retainedBytes, int wills, double elapsedMs, int expiredSessions, int expiredQueued, int expiredRetained);

    [LoggerMessage(41, LogLevel.Information, "Persistent store {Path} created (no store existed there)")]
    public static partial void Created(ILogger logger, string path);

    [LoggerMessage(42, LogLevel.Error, "Persistent store {Path}: commit of {Operations} operations failed ({Kind}), attempt {Attempt}; retrying in {RetryMs} ms. Until a commit succeeds, replies that wait for the store are answered with an error (docs/persistence.md)")]
    public static partial void CommitFailed(ILogger logger, string path, int operations, StoreErrorKind kind, int attempt, double retryMs, Exception exception);

    [LoggerMessage(43, LogLevel.Warning, "Persistent store {Path}: commit succeeded again after {Attempts} failed attempts")]
    public static partial void CommitRecovered(ILogger logger, string path, int attempts);

    [LoggerMessage(44, LogLevel.Critical, "Persistent store {Path}: stopped with {Operations} operations that could not be written ({Kind}); they were reported as failed, not as durable")]
    public static partial void OperationsLost(ILogger logger, string path, int operations, StoreErrorKind kind);

    [LoggerMessage(45, LogLevel.Error, "Persistent store: a completion callback threw; the store carries on")]
    public static partial void CompletionFailed(ILogger logger, Exception exception);

    [LoggerMessage(47, LogLevel.Information, "Restored state in use after {ElapsedMs:F0} ms (store read {ReadMs:F0} ms): {Sessions} sessions offline with their expiry, {Retained} retained messages, {WillsPublished} overdue wills published, {WillsArmed} wills waiting; dropped: {RetainedRefused} retained messages over the current limits, {QueueDropped} queue entries that could not be restored")]
    public static partial void RestoreApplied(ILogger logger, double elapsedMs, double readMs, int sessions, int retained, int willsPublished, int willsArmed,
        int retainedRefused, int queueDropped);

    [LoggerMessage(46, LogLevel.Warning, "Persistent store {Path}: {Count} queue rows referenced messages that are missing and were dropped")]
    public static partial void DanglingQueueRows(ILogger logger, string path, int count);
}
