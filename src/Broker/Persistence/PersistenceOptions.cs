namespace Broker.Persistence;

/// <summary>Section "Broker:Persistence": where and how the broker keeps its state across restarts.</summary>
internal sealed record PersistenceOptions
{
    public const string SectionName = "Broker:Persistence";

    /// <summary>False: everything lives in memory only and is gone after a restart.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>
    /// Directory of the store (created if missing); the database is <c>broker.db</c> in it. A relative path is
    /// resolved against the content root (the directory holding appsettings.json).
    /// </summary>
    public string Path { get; init; } = "./data";

    /// <summary>
    /// Longest time an operation waits for more operations to share its transaction (one fsync). 0 commits as
    /// soon as the writer is free: operations arriving during a commit still share the next one.
    /// </summary>
    public int FlushIntervalMilliseconds { get; init; } = 2;

    /// <summary>A batch holding this many operations is committed at once, without waiting for the interval.</summary>
    public int MaxBatchSize { get; init; } = 1024;

    /// <summary>
    /// Operations appended but not yet committed above which the store reports that it is behind: callers then
    /// stop taking new work (stop reading publishers' sockets) until it has caught up to half of this.
    /// </summary>
    public int MaxPendingOperations { get; init; } = 100_000;
}
