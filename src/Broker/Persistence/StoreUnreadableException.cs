namespace Broker.Persistence;

internal enum StoreUnreadableReason
{
    /// <summary>The file is not a SQLite database (garbage, truncated header, encrypted, another format).</summary>
    NotADatabase,
    /// <summary>A SQLite database, but not one this broker wrote (another application's).</summary>
    ForeignDatabase,
    /// <summary>SQLite reports damage (<c>PRAGMA quick_check</c> failed, or a page could not be read).</summary>
    Corrupt,
    /// <summary>Written with a schema version this broker does not read.</summary>
    SchemaVersion,
    /// <summary>Another broker process has the store open.</summary>
    InUse,
    /// <summary>The directory or file cannot be created, opened or written (permissions, I/O error, full disk).</summary>
    Inaccessible,
}

/// <summary>
/// The store exists but cannot be used. Start-up stops with this message: starting with an empty store instead
/// would silently discard every session, queued message and retained message it holds.
/// </summary>
internal sealed class StoreUnreadableException : Exception
{
    public StoreUnreadableException(string databasePath, StoreUnreadableReason reason, string detail, Exception? inner = null)
        : base(BuildMessage(databasePath, reason, detail), inner)
    {
        DatabasePath = databasePath;
        Reason = reason;
    }

    public string DatabasePath { get; }
    public StoreUnreadableReason Reason { get; }

    private static string BuildMessage(string path, StoreUnreadableReason reason, string detail)
    {
        string what = reason switch
        {
            StoreUnreadableReason.NotADatabase => "is not a SQLite database",
            StoreUnreadableReason.ForeignDatabase => "is a SQLite database that this broker did not write",
            StoreUnreadableReason.Corrupt => "is damaged",
            StoreUnreadableReason.SchemaVersion => "has a schema version this broker does not read",
            StoreUnreadableReason.InUse => "is in use by another broker process",
            _ => "cannot be opened",
        };
        string remedy = reason switch
        {
            StoreUnreadableReason.InUse => "Stop the other broker, or give this one its own Broker:Persistence:Path.",
            StoreUnreadableReason.Inaccessible => "Check that the directory exists or can be created, is writable by the broker and that the disk has space.",
            StoreUnreadableReason.SchemaVersion => "Run the broker version that wrote it, or move the store aside as described below.",
            _ => "",
        };
        return $"The persistent store {path} {what}: {detail}. The broker does not start with an empty store, because that would "
            + $"silently discard every session, queued message and retained message in it. {remedy} "
            + $"To start empty and keep the old store for inspection (sqlite3 \"{path}\" 'PRAGMA integrity_check;' or '.recover'), stop the "
            + $"broker and move the store aside with its write-ahead log: mv \"{path}\" \"{path}.bad\"; mv \"{path}-wal\" \"{path}-wal.bad\" "
            + "(if present); rm -f \"" + path + "-shm\". Or set Broker:Persistence:Enabled=false to run without persistence. See docs/persistence.md.";
    }
}
