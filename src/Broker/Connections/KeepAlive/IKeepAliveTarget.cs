namespace Broker.Connections.KeepAlive;

/// <summary>The connection side of a <see cref="KeepAliveDeadline"/>: what the wheel asks and tells.</summary>
internal interface IKeepAliveTarget
{
    /// <summary>
    /// True when bytes have arrived that the connection has not yet processed (socket receive buffer or
    /// pipe not yet consumed). The wheel asks this, under its lock, before expiring a deadline: it must
    /// be a cheap, non-blocking, non-throwing read that never calls back into the wheel.
    /// </summary>
    bool HasUnreadInput { get; }

    /// <summary>
    /// True while the broker itself holds the client back (it stopped reading the client's socket: back-pressure,
    /// a credential check in progress). Such a client is not silent, it is throttled: the wheel looks again one
    /// timeout later instead of expiring it, and the connection counts the resume as activity. Same rules as
    /// <see cref="HasUnreadInput"/>: cheap, non-blocking, never calls back into the wheel.
    /// </summary>
    bool IsHeldBack => false;

    /// <summary>
    /// The deadline expired. Called once, from an expiry batch (thread pool in production), never after
    /// <see cref="TimerWheel.Remove"/> returned true for this deadline. Must not block.
    /// </summary>
    void OnDeadlineExpired(in DeadlineExpiry expiry);
}
