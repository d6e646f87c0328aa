using Broker.Persistence;
using Broker.Routing;
using Microsoft.Extensions.Logging;

namespace Broker.Sessions;

/// <summary>
/// Start-up, before the MQTT listener binds: puts what the store kept back into the broker. Retained messages go into
/// the retained store, sessions come back offline with their subscriptions in the router's tree, their queues and
/// in-flight windows in order (one shared message per stored message), their inbound QoS 2 ids and what is left of
/// their expiry on the wheel; wills whose time came while the broker was down are published, the others wait again.
/// Nothing restored is written back, except removals the current limits require.
/// </summary>
/// <param name="permissionsFor">The ACL of a client (user name, client id), as the security layer computes it at CONNECT.</param>
internal sealed class StateRestorer(SessionStore sessions, Router router, WillPublisher wills, TimeProvider time, ILogger<StateRestorer> logger,
    Func<string?, string, ITopicPermissions>? permissionsFor = null)
{
    public RestoreApplied Apply(RestoredState state)
    {
        var journal = sessions.Journal ?? throw new InvalidOperationException("Restoring needs the persistent store.");
        var store = journal.Store;
        long started = time.GetTimestamp();
        var now = time.GetUtcNow();

        int retained = 0, retainedRefused = 0;
        foreach (var stored in state.Retained)
        {
            if (router.RestoreRetained(ApplicationMessage.FromPersisted(stored, time, keepStoreCopy: false)))
            {
                retained++;
            }
            else
            {
                // Broker:Limits:MaxRetainedMessages / MaxRetainedBytes were lowered: the store keeps what memory keeps.
                store.Append(StoreOperation.ClearRetained(stored.Topic));
                retainedRefused++;
            }
        }

        // One ApplicationMessage per stored message, shared by every queue that holds it, as before the restart.
        var messages = new Dictionary<PersistedMessage, ApplicationMessage>(ReferenceEqualityComparer.Instance);
        ApplicationMessage MessageOf(PersistedMessage stored)
        {
            if (!messages.TryGetValue(stored, out var message))
            {
                message = ApplicationMessage.FromPersisted(stored, time, keepStoreCopy: true);
                messages[stored] = message;
            }
            return message;
        }

        int queueDropped = 0;
        foreach (var stored in state.Sessions)
        {
            var age = now - stored.DisconnectedAt;
            if (age < TimeSpan.Zero)
            {
                age = TimeSpan.Zero; // a clock set back while the broker was down
            }
            var permissions = permissionsFor?.Invoke(stored.OwnerUserName, stored.ClientId);
            var session = new Session(stored.ClientId, sessions)
            {
                ExpiryIntervalSeconds = stored.ExpiryIntervalSeconds,
                DisconnectedTimestamp = time.GetTimestamp() - (long)(age.TotalSeconds * time.TimestampFrequency),
                // The owner and its ACL come back too: same-user takeover and delivery filtering hold across a restart.
                OwnerUserName = stored.OwnerUserName,
                OwnerUnknown = stored.OwnerUnknown,
                Permissions = permissions,
            };
            foreach (var s in stored.Subscriptions)
            {
                router.Subscribe(new Subscription(session, s.Filter, s.QoS, s.NoLocal, s.RetainAsPublished, s.RetainHandling, s.SubscriptionIdentifier));
            }
            queueDropped += session.Restore(stored, MessageOf, journal);
            sessions.AddRestored(session, TimeSpan.FromSeconds(stored.ExpiryIntervalSeconds) - age);
        }

        int willsPublished = 0, willsArmed = 0;
        foreach (var will in state.Wills)
        {
            var message = ApplicationMessage.FromPersisted(will.Message, time, keepStoreCopy: false, publisherClientId: will.ClientId);
            sessions.TryGet(will.ClientId, out var owner);
            if (will.DueAt <= now)
            {
                // Its delay (or its session) ended while the broker was down [MQTT-3.1.3-9]: published now, to the
                // sessions just restored, where its owner's ACL allows.
                if (wills.PublishIfAllowed(message, owner?.Permissions))
                {
                    willsPublished++;
                }
                store.Append(StoreOperation.DeleteWill(will.ClientId));
            }
            else
            {
                wills.Restore(will.ClientId, message, will.DueAt - now, owner?.Permissions);
                willsArmed++;
            }
        }

        var elapsed = time.GetElapsedTime(started);
        var applied = new RestoreApplied(state.Sessions.Count, retained, retainedRefused, queueDropped, willsPublished, willsArmed,
            state.Report.Elapsed + elapsed);
        PersistenceLog.RestoreApplied(logger, applied.Total.TotalMilliseconds, state.Report.Elapsed.TotalMilliseconds, applied.Sessions, retained,
            willsPublished, willsArmed, retainedRefused, queueDropped);
        return applied;
    }
}

/// <summary>What start-up restored, and how long reading and applying took together.</summary>
internal sealed record RestoreApplied(int Sessions, int Retained, int RetainedRefused, int QueueDropped, int WillsPublished, int WillsArmed, TimeSpan Total);
