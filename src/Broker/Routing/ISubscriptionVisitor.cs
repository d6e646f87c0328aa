namespace Broker.Routing;

/// <summary>
/// Receives the subscriptions that match a topic. Implemented by a struct (or ref struct) so that
/// matching allocates nothing and the calls can be inlined.
/// </summary>
internal interface ISubscriptionVisitor<TValue>
{
    /// <summary>
    /// Called once per matching ordinary subscription (<paramref name="shareName"/> is null) and once
    /// per matching shared group with the one member chosen for this message. A client with
    /// overlapping filters is visited once per filter; merging is the caller's job.
    /// </summary>
    void Visit(string clientId, TValue value, string? shareName);

    /// <summary>
    /// Whether a member of a shared group should be preferred for the next message (the broker prefers
    /// members that are connected). When no member is preferred, the round-robin choice stands.
    /// </summary>
    bool PrefersSharedMember(TValue value);
}
