namespace Broker.Persistence;

/// <summary>
/// The tables of the SQLite store (docs/persistence.md describes them). A file is recognised as ours by its
/// <c>application_id</c> and its layout by <c>user_version</c>; a change to any table bumps the version.
/// </summary>
internal static class SqliteSchema
{
    /// <summary>"MQTB" in the SQLite header (PRAGMA application_id): marks the file as this broker's store.</summary>
    public const int ApplicationId = 0x4D515442;

    public const int Version = 2;

    /// <summary>From version 1 to 2: sessions remember their owner's user name (same-user takeover, ACL after a restart).</summary>
    public const string UpgradeFrom1 = "ALTER TABLE session ADD COLUMN owner TEXT; UPDATE session SET owner = char(0) || 'unknown'; PRAGMA user_version = 2;";

    /// <summary>How the owner column says "not recorded" (<see cref="PersistedSession.UnknownOwner"/>).</summary>
    public const string UnknownOwner = PersistedSession.UnknownOwner;

    public const string FileName = "broker.db";

    /// <summary>Held open exclusively while a broker uses the store, so that two brokers never share one.</summary>
    public const string LockFileName = "broker.db.lock";

    public const string Create = """
        CREATE TABLE session (
            client_id       TEXT NOT NULL PRIMARY KEY,
            expiry_interval INTEGER NOT NULL,   -- seconds; 4294967295 = never
            disconnected_at INTEGER,            -- Unix ms; NULL while the client is connected
            owner           TEXT                -- user name of the client that owns it; NULL = anonymous
        ) WITHOUT ROWID;

        CREATE TABLE subscription (
            client_id       TEXT NOT NULL,
            filter          TEXT NOT NULL,
            options         INTEGER NOT NULL,   -- SUBSCRIBE options byte (3.8.3.1)
            subscription_id INTEGER,            -- 5.0 Subscription Identifier, NULL when none
            PRIMARY KEY (client_id, filter)
        ) WITHOUT ROWID;

        -- One row per message held by at least one session queue, however many queues hold it.
        CREATE TABLE message (
            id              INTEGER PRIMARY KEY,
            topic           TEXT NOT NULL,
            payload         BLOB NOT NULL,
            qos             INTEGER NOT NULL,   -- as published
            retain          INTEGER NOT NULL,
            properties      BLOB,               -- 5.0 Properties field (length prefix + properties), NULL when none
            expiry_interval INTEGER,            -- Message Expiry Interval in seconds, NULL = never
            received_at     INTEGER NOT NULL    -- Unix ms
        );

        -- Queue and in-flight window of each session, in sequence order.
        CREATE TABLE session_message (
            client_id        TEXT NOT NULL,
            sequence         INTEGER NOT NULL,
            message_id       INTEGER NOT NULL,
            qos              INTEGER NOT NULL,  -- as delivered to this subscriber
            retain           INTEGER NOT NULL,
            subscription_ids BLOB,              -- int32 little-endian each, NULL when none
            packet_id        INTEGER,           -- NULL while queued; set once sent (in flight)
            released         INTEGER NOT NULL DEFAULT 0, -- QoS 2: PUBREC received, PUBREL is what is resent
            PRIMARY KEY (client_id, sequence)
        ) WITHOUT ROWID;
        CREATE INDEX session_message_by_message ON session_message (message_id);

        CREATE TABLE inbound_qos2 (
            client_id TEXT NOT NULL,
            packet_id INTEGER NOT NULL,
            PRIMARY KEY (client_id, packet_id)
        ) WITHOUT ROWID;

        CREATE TABLE retained (
            topic           TEXT NOT NULL PRIMARY KEY,
            payload         BLOB NOT NULL,
            qos             INTEGER NOT NULL,
            properties      BLOB,
            expiry_interval INTEGER,
            received_at     INTEGER NOT NULL
        );

        CREATE TABLE will (
            client_id       TEXT NOT NULL PRIMARY KEY,
            topic           TEXT NOT NULL,
            payload         BLOB NOT NULL,
            qos             INTEGER NOT NULL,
            retain          INTEGER NOT NULL,
            properties      BLOB,
            expiry_interval INTEGER,
            due_at          INTEGER NOT NULL    -- Unix ms
        );
        """;

    public static readonly string[] Tables = ["session", "subscription", "message", "session_message", "inbound_qos2", "retained", "will"];
}
