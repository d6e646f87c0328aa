using Broker.Protocol;

namespace Broker.Sessions;

/// <summary>One subscription of one session, as stored in the subscription tree.</summary>
internal sealed record Subscription(
    Session Session,
    string Filter,
    QualityOfService QoS,
    bool NoLocal,
    bool RetainAsPublished,
    RetainHandling RetainHandling,
    int? SubscriptionIdentifier);
