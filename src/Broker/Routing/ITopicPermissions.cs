namespace Broker.Routing;

/// <summary>
/// What one client may do with topics, as routing needs to know it: the delivery check per subscriber and the
/// check of a will when it is finally published. Implemented by the security layer (the ACL); routing only asks.
/// </summary>
internal interface ITopicPermissions
{
    /// <summary>True when every message may be delivered to this client: callers may skip <see cref="CanReceive"/>.</summary>
    bool IsUnrestricted { get; }

    /// <summary>Read access to a message's topic name (delivery, retained messages, queued messages).</summary>
    bool CanReceive(ReadOnlySpan<char> topic);

    /// <summary>Write access to a topic name (PUBLISH, retained, will); never $SYS.</summary>
    bool CanPublish(ReadOnlySpan<char> topic);
}
