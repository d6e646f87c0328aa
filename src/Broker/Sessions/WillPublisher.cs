using System.Collections.Concurrent;
using Broker.Connections.KeepAlive;
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

    public WillPublisher(Router router, TimerWheel wheel)
    {
        _router = router;
        _wheel = wheel;
    }

    /// <summary>Wills waiting for their delay.</summary>
    public int PendingCount => _delayed.Count;

    /// <param name="permissions">The client's ACL (null: none): a will may only go where its client may publish,
    /// checked again when it is published, since the ACL may have changed since CONNECT.</param>
    public void Publish(string clientId, ApplicationMessage will, uint delaySeconds, ITopicPermissions? permissions = null)
    {
        if (delaySeconds == 0)
        {
            if (permissions is null || permissions.CanPublish(will.Topic))
            {
                _router.Publish(will);
            }
            return;
        }
        var pending = new PendingWill(this, clientId, will, permissions);
        if (_delayed.TryRemove(clientId, out var previous))
        {
            previous.Cancel();
        }
        _delayed[clientId] = pending;
        pending.Arm(TimeSpan.FromSeconds(delaySeconds));
    }

    /// <summary>The client is back before its will fired: it is not sent.</summary>
    public void Cancel(string clientId)
    {
        if (_delayed.TryRemove(clientId, out var pending))
        {
            pending.Cancel();
        }
    }

    private void Fire(PendingWill pending)
    {
        if (_delayed.TryRemove(new KeyValuePair<string, PendingWill>(pending.ClientId, pending))
            && (pending.Permissions is null || pending.Permissions.CanPublish(pending.Message.Topic)))
        {
            _router.Publish(pending.Message);
        }
    }

    private sealed class PendingWill(WillPublisher owner, string clientId, ApplicationMessage message, ITopicPermissions? permissions) : IKeepAliveTarget
    {
        public ITopicPermissions? Permissions => permissions;

        private KeepAliveDeadline? _deadline;

        public string ClientId => clientId;

        public ApplicationMessage Message => message;

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
