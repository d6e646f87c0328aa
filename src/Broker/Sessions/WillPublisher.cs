using System.Collections.Concurrent;
using Broker.Connections.KeepAlive;
using Broker.Persistence;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// Publishes will messages, at once or after the 5.0 Will Delay Interval [MQTT-3.1.3-9]. A delayed will is an
/// entry on the timer wheel, cancelled when the client connects again before it comes due.
/// </summary>
internal sealed class WillPublisher
{
    private readonly ConcurrentDictionary<string, PendingWill> _delayed = new(StringComparer.Ordinal);
    private readonly Router _router;
    private readonly TimerWheel _wheel;
    private readonly SessionJournal? _journal;

    public WillPublisher(Router router, TimerWheel wheel, SessionJournal? journal = null)
    {
        _router = router;
        _wheel = wheel;
        _journal = journal;
    }

    /// <summary>Wills waiting for their delay.</summary>
    public int PendingCount => _delayed.Count;

    /// <param name="permissions">The client's ACL (null: none): a will may only go where its client may publish,
    /// checked again when it is published, since the ACL may have changed since CONNECT.</param>
    public void Publish(string clientId, ApplicationMessage will, uint delaySeconds, ITopicPermissions? permissions = null)
    {
        if (delaySeconds == 0)
        {
            PublishIfAllowed(will, permissions);
            return;
        }
        var pending = new PendingWill(this, clientId, will, permissions) { Stored = _journal is not null };
        if (_delayed.TryRemove(clientId, out var previous))
        {
            previous.Cancel();
        }
        _delayed[clientId] = pending;
        if (_journal is { } journal)
        {
            // A delayed will belongs to a persistent session (its delay is capped by the session's expiry): it survives
            // a restart and is published then if its time came while the broker was down.
            journal.Store.Append(StoreOperation.SaveWill(clientId, will.ToPersisted(journal.Store, journal.Time),
                journal.Time.GetUtcNow() + TimeSpan.FromSeconds(delaySeconds)));
        }
        pending.Arm(TimeSpan.FromSeconds(delaySeconds));
    }

    /// <summary>Start-up: a stored will whose delay has not passed yet is armed again for what is left of it (not written again).</summary>
    public void Restore(string clientId, ApplicationMessage will, TimeSpan remaining, ITopicPermissions? permissions = null)
    {
        var pending = new PendingWill(this, clientId, will, permissions) { Stored = true };
        _delayed[clientId] = pending;
        pending.Arm(remaining < TimeSpan.Zero ? TimeSpan.Zero : remaining);
    }

    /// <summary>The client is back before its will fired: it is not sent.</summary>
    public void Cancel(string clientId)
    {
        if (_delayed.TryRemove(clientId, out var pending))
        {
            pending.Cancel();
            Forget(pending);
        }
    }

    /// <summary>
    /// A will goes only where its client may publish (<paramref name="permissions"/> null: no ACL), checked when it is
    /// published, since the ACL may have changed since CONNECT: at once, after its delay, or at start-up.
    /// </summary>
    public bool PublishIfAllowed(ApplicationMessage will, ITopicPermissions? permissions)
    {
        if (permissions is not null && !permissions.CanPublish(will.Topic))
        {
            return false;
        }
        _router.Publish(will);
        return true;
    }

    private void Fire(PendingWill pending)
    {
        if (_delayed.TryRemove(new KeyValuePair<string, PendingWill>(pending.ClientId, pending)))
        {
            PublishIfAllowed(pending.Message, pending.Permissions);
            // After the publish (or the refusal, which is final too): a crash in between publishes it again at start-up
            // rather than never.
            Forget(pending);
        }
    }

    private void Forget(PendingWill pending)
    {
        if (pending.Stored)
        {
            _journal?.Store.Append(StoreOperation.DeleteWill(pending.ClientId));
        }
    }

    private sealed class PendingWill(WillPublisher owner, string clientId, ApplicationMessage message, ITopicPermissions? permissions) : IKeepAliveTarget
    {
        public ITopicPermissions? Permissions => permissions;

        private KeepAliveDeadline? _deadline;

        public string ClientId => clientId;

        public ApplicationMessage Message => message;

        /// <summary>Written to the persistent store: removed from it when published or cancelled.</summary>
        public bool Stored { get; init; }

        public bool HasUnreadInput => false;

        public void Arm(TimeSpan delay) => _deadline = owner._wheel.Register(this, DeadlineKind.WillDelay, delay);

        public void Cancel()
        {
            if (_deadline is { } deadline)
            {
                owner._wheel.Remove(deadline);
            }
        }

        public void OnDeadlineExpired(in DeadlineExpiry expiry) => owner.Fire(this);
    }
}
