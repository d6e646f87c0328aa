using Broker.Routing;

namespace Broker.Tests.Routing;

internal readonly record struct Delivery(string ClientId, string Value, string? ShareName);

/// <summary>Records every visit; a struct, as the broker's visitors will be.</summary>
internal struct CollectingVisitor() : ISubscriptionVisitor<string>
{
    public List<Delivery> Deliveries { get; } = [];

    /// <summary>Shared-group members this visitor prefers; null prefers every member.</summary>
    public HashSet<string>? PreferredValues { get; init; }

    public readonly bool PrefersSharedMember(string value) => PreferredValues is null || PreferredValues.Contains(value);

    public readonly void Visit(string clientId, string value, string? shareName) =>
        Deliveries.Add(new Delivery(clientId, value, shareName));
}

internal static class SubscriptionTreeExtensions
{
    public static List<Delivery> MatchAll(this SubscriptionTree<string> tree, string topic)
    {
        var visitor = new CollectingVisitor();
        tree.Match(topic, ref visitor);
        return visitor.Deliveries;
    }

    /// <summary>The values (the test stores the filter as value) of the ordinary subscriptions visited, sorted.</summary>
    public static string[] MatchedValues(this SubscriptionTree<string> tree, string topic) =>
        [.. tree.MatchAll(topic).Select(d => d.Value).Order(StringComparer.Ordinal)];
}
