using Broker.Protocol;
using Microsoft.Data.Sqlite;

namespace Broker.Persistence;

internal sealed partial class SqliteBrokerStateStore
{
    /// <summary>
    /// Recognises the file (ours, right version, undamaged) or creates the schema in an empty one. Returns true
    /// when it created the store.
    /// </summary>
    private bool Initialise(SqliteConnection connection)
    {
        // The first read of the header: a file that is not SQLite fails here with SQLITE_NOTADB.
        long applicationId = Scalar(connection, "PRAGMA application_id");
        long version = Scalar(connection, "PRAGMA user_version");
        long tables = Scalar(connection, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'");
        bool empty = applicationId == 0 && version == 0 && tables == 0;
        if (!empty)
        {
            if (applicationId != SqliteSchema.ApplicationId)
            {
                throw new StoreUnreadableException(_databasePath, StoreUnreadableReason.ForeignDatabase,
                    $"its application_id is {applicationId} where this broker writes {SqliteSchema.ApplicationId}, and it has {tables} tables");
            }
            if (version == 1)
            {
                // Version 1 lacks only the session owner: added, marked unknown (the first client to resume a session owns it).
                Execute(connection, SqliteSchema.UpgradeFrom1);
                version = SqliteSchema.Version;
            }
            if (version != SqliteSchema.Version)
            {
                throw new StoreUnreadableException(_databasePath, StoreUnreadableReason.SchemaVersion,
                    $"schema version {version}; this broker reads version {SqliteSchema.Version}"
                    + (version > SqliteSchema.Version ? " (a newer broker wrote it)" : ""));
            }
            QuickCheck(connection);
        }

        string mode;
        using (var cmd = new SqliteCommand("PRAGMA journal_mode = WAL", connection))
        {
            mode = (string)cmd.ExecuteScalar()!;
        }
        if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
        {
            throw new StoreUnreadableException(_databasePath, StoreUnreadableReason.Inaccessible,
                $"write-ahead logging cannot be enabled (journal mode stays '{mode}'; is the file on a network file system?)");
        }
        // FULL: every commit fsyncs the WAL, so what was reported durable survives power loss (see the class remarks).
        // journal_size_limit: after a burst the WAL is truncated back to 64 MiB at the next checkpoint instead of
        // keeping its peak size on disk.
        Execute(connection, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF; PRAGMA cache_size = -16384; PRAGMA journal_size_limit = 67108864;");

        if (empty)
        {
            Execute(connection, "BEGIN IMMEDIATE");
            Execute(connection, SqliteSchema.Create);
            Execute(connection, $"PRAGMA application_id = {SqliteSchema.ApplicationId}; PRAGMA user_version = {SqliteSchema.Version};");
            Execute(connection, "COMMIT");
            return true;
        }

        foreach (string table in SqliteSchema.Tables)
        {
            using var cmd = new SqliteCommand("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = $name", connection);
            cmd.Parameters.AddWithValue("$name", table);
            if ((long)cmd.ExecuteScalar()! == 0)
            {
                throw new StoreUnreadableException(_databasePath, StoreUnreadableReason.Corrupt, $"table '{table}' of schema version {version} is missing");
            }
        }
        return false;
    }

    private void QuickCheck(SqliteConnection connection)
    {
        var problems = new List<string>();
        using (var query = new SqliteCommand("PRAGMA quick_check(5)", connection))
        using (var reader = query.ExecuteReader())
        {
            while (reader.Read())
            {
                problems.Add(reader.GetString(0));
            }
        }
        if (problems is not ["ok"])
        {
            throw new StoreUnreadableException(_databasePath, StoreUnreadableReason.Corrupt,
                $"PRAGMA quick_check reports: {string.Join("; ", problems)}");
        }
    }

    /// <summary>Drops what expired while the broker was down, then reads everything into plain objects.</summary>
    private RestoredState Restore(SqliteConnection connection, bool created, long started)
    {
        var now = _time.GetUtcNow();
        long nowMs = now.ToUnixTimeMilliseconds();

        Execute(connection, "BEGIN IMMEDIATE");
        // Clients connected when the broker died: their sessions count down from now, and a second crash before
        // they reconnect must not restart the countdown.
        var wasConnected = new HashSet<string>(StringComparer.Ordinal);
        using (var query = new SqliteCommand("SELECT client_id FROM session WHERE disconnected_at IS NULL", connection))
        using (var reader = query.ExecuteReader())
        {
            while (reader.Read())
            {
                wasConnected.Add(reader.GetString(0));
            }
        }
        Execute(connection, "UPDATE session SET disconnected_at = $now WHERE disconnected_at IS NULL", nowMs);
        // Session expiry: interval 4294967295 never expires; 0 ends with the connection [MQTT-3.1.2-5 / 3.1.2.11.2].
        int expiredSessions = Execute(connection,
            "DELETE FROM session WHERE expiry_interval <> 4294967295 AND disconnected_at + expiry_interval * 1000 <= $now", nowMs);
        Execute(connection, """
            DELETE FROM subscription WHERE client_id NOT IN (SELECT client_id FROM session);
            DELETE FROM session_message WHERE client_id NOT IN (SELECT client_id FROM session);
            DELETE FROM inbound_qos2 WHERE client_id NOT IN (SELECT client_id FROM session);
            """);
        // [MQTT-3.3.2-5] an expired message is dropped unless onward delivery started (in flight: kept).
        int expiredQueued = Execute(connection, """
            DELETE FROM session_message WHERE packet_id IS NULL AND message_id IN
                (SELECT id FROM message WHERE expiry_interval IS NOT NULL AND received_at + expiry_interval * 1000 <= $now)
            """, nowMs);
        int dangling = Execute(connection, "DELETE FROM session_message WHERE message_id NOT IN (SELECT id FROM message)");
        Execute(connection, "DELETE FROM message WHERE NOT EXISTS (SELECT 1 FROM session_message WHERE message_id = message.id)");
        int expiredRetained = Execute(connection,
            "DELETE FROM retained WHERE expiry_interval IS NOT NULL AND received_at + expiry_interval * 1000 <= $now", nowMs);
        Execute(connection, "COMMIT");
        if (dangling > 0)
        {
            PersistenceLog.DanglingQueueRows(_logger, _databasePath, dangling);
        }

        var sessions = new Dictionary<string, PersistedSession>(StringComparer.Ordinal);
        using (var query = new SqliteCommand("SELECT client_id, expiry_interval, disconnected_at, owner FROM session", connection))
        using (var reader = query.ExecuteReader())
        {
            while (reader.Read())
            {
                string clientId = reader.GetString(0);
                string? owner = reader.IsDBNull(3) ? null : reader.GetString(3);
                bool ownerUnknown = owner == SqliteSchema.UnknownOwner;
                sessions[clientId] = new PersistedSession
                {
                    ClientId = clientId,
                    ExpiryIntervalSeconds = (uint)reader.GetInt64(1),
                    DisconnectedAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2)),
                    WasConnected = wasConnected.Contains(clientId),
                    OwnerUserName = ownerUnknown ? null : owner,
                    OwnerUnknown = ownerUnknown,
                };
            }
        }

        int subscriptions = 0;
        using (var query = new SqliteCommand("SELECT client_id, filter, options, subscription_id FROM subscription", connection))
        using (var reader = query.ExecuteReader())
        {
            while (reader.Read())
            {
                var session = sessions[reader.GetString(0)];
                session.Subscriptions.Add(StoreOperation.DecodeSubscription(reader.GetString(1), (byte)reader.GetInt64(2),
                    reader.IsDBNull(3) ? null : (int)reader.GetInt64(3)));
                subscriptions++;
            }
        }

        // Each message once, shared by every queue entry that refers to it (as in memory).
        var messages = new Dictionary<long, PersistedMessage>();
        long messageBytes = 0;
        using (var query = new SqliteCommand(
            "SELECT id, topic, payload, qos, retain, properties, expiry_interval, received_at FROM message", connection))
        using (var reader = query.ExecuteReader())
        {
            while (reader.Read())
            {
                var message = ReadMessage(reader, id: reader.GetInt64(0), first: 1);
                messages[message.Id] = message;
                messageBytes += message.Payload.Length;
            }
        }
        _lastMessageId = Scalar(connection, "SELECT coalesce(max(id), 0) FROM message");

        int queued = 0, inflight = 0;
        using (var query = new SqliteCommand(
            "SELECT client_id, sequence, message_id, qos, retain, subscription_ids, packet_id, released FROM session_message ORDER BY client_id, sequence",
            connection))
        using (var reader = query.ExecuteReader())
        {
            PersistedSession? session = null;
            while (reader.Read())
            {
                string clientId = reader.GetString(0);
                if (session is null || !string.Equals(session.ClientId, clientId, StringComparison.Ordinal))
                {
                    session = sessions[clientId];
                }
                var entry = new PersistedOutbound(
                    Sequence: reader.GetInt64(1),
                    Message: messages[reader.GetInt64(2)],
                    QoS: (QualityOfService)reader.GetInt64(3),
                    Retain: reader.GetInt64(4) != 0,
                    SubscriptionIdentifiers: reader.IsDBNull(5) ? null : DecodeIdentifiers(reader.GetFieldValue<byte[]>(5)),
                    PacketId: reader.IsDBNull(6) ? null : (ushort)reader.GetInt64(6),
                    Released: reader.GetInt64(7) != 0);
                if (entry.PacketId is null)
                {
                    session.Queued.Add(entry);
                    queued++;
                }
                else
                {
                    session.Inflight.Add(entry);
                    inflight++;
                }
                session.LastSequence = entry.Sequence;
            }
        }

        int inbound = 0;
        using (var query = new SqliteCommand("SELECT client_id, packet_id FROM inbound_qos2 ORDER BY client_id, packet_id", connection))
        using (var reader = query.ExecuteReader())
        {
            while (reader.Read())
            {
                sessions[reader.GetString(0)].InboundQoS2.Add((ushort)reader.GetInt64(1));
                inbound++;
            }
        }

        var retained = new List<PersistedMessage>();
        long retainedBytes = 0;
        using (var query = new SqliteCommand(
            "SELECT topic, payload, qos, 1, properties, expiry_interval, received_at FROM retained", connection))
        using (var reader = query.ExecuteReader())
        {
            while (reader.Read())
            {
                var message = ReadMessage(reader, id: 0, first: 0);
                retained.Add(message);
                retainedBytes += message.Payload.Length;
            }
        }

        var wills = new List<PersistedWill>();
        using (var query = new SqliteCommand(
            "SELECT topic, payload, qos, retain, properties, expiry_interval, client_id, due_at FROM will", connection))
        using (var reader = query.ExecuteReader())
        {
            while (reader.Read())
            {
                wills.Add(new PersistedWill(reader.GetString(6), ReadMessage(reader, id: 0, first: 0, receivedAt: now),
                    DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(7))));
            }
        }

        var report = new RestoreReport
        {
            DatabasePath = _databasePath,
            Created = created,
            Sessions = sessions.Count,
            Subscriptions = subscriptions,
            QueuedMessages = queued,
            InflightMessages = inflight,
            InboundQoS2 = inbound,
            Messages = messages.Count,
            MessageBytes = messageBytes,
            RetainedMessages = retained.Count,
            RetainedBytes = retainedBytes,
            Wills = wills.Count,
            ExpiredSessions = expiredSessions,
            ExpiredQueuedMessages = expiredQueued,
            ExpiredRetainedMessages = expiredRetained,
            Elapsed = _time.GetElapsedTime(started),
        };
        if (created)
        {
            PersistenceLog.Created(_logger, _databasePath);
        }
        PersistenceLog.Restored(_logger, _databasePath, report.Sessions, report.Subscriptions, report.QueuedMessages, report.InflightMessages,
            report.InboundQoS2, report.RetainedMessages, report.RetainedBytes, report.Wills, report.Elapsed.TotalMilliseconds,
            report.ExpiredSessions, report.ExpiredQueuedMessages, report.ExpiredRetainedMessages);
        return new RestoredState { Sessions = [.. sessions.Values], Retained = retained, Wills = wills, Report = report };
    }

    /// <summary>Reads topic, payload, qos, retain, properties, expiry_interval and (unless given) received_at from column <paramref name="first"/> on.</summary>
    private static PersistedMessage ReadMessage(SqliteDataReader reader, long id, int first, DateTimeOffset? receivedAt = null) => new()
    {
        Id = id,
        Topic = reader.GetString(first),
        Payload = reader.GetFieldValue<byte[]>(first + 1),
        QoS = (QualityOfService)reader.GetInt64(first + 2),
        Retain = reader.GetInt64(first + 3) != 0,
        Properties = reader.IsDBNull(first + 4) ? null : reader.GetFieldValue<byte[]>(first + 4),
        ExpiryIntervalSeconds = reader.IsDBNull(first + 5) ? null : (uint)reader.GetInt64(first + 5),
        ReceivedAt = receivedAt ?? DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(first + 6)),
    };

    private static int[] DecodeIdentifiers(byte[] blob)
    {
        var ids = new int[blob.Length / 4];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(blob.AsSpan(i * 4));
        }
        return ids;
    }

    private static long Scalar(SqliteConnection connection, string sql)
    {
        using var cmd = new SqliteCommand(sql, connection);
        return Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static int Execute(SqliteConnection connection, string sql, long? now = null)
    {
        using var cmd = new SqliteCommand(sql, connection);
        if (now is { } value)
        {
            cmd.Parameters.AddWithValue("$now", value);
        }
        return cmd.ExecuteNonQuery();
    }
}
