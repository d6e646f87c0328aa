namespace Broker.Diagnostics.Insight;

/// <summary>
/// The adaptive Server Keep Alive decision (opt-in, MQTT 5.0 only): pure, so every edge is a unit test.
/// </summary>
internal static class AdaptiveServerKeepAlive
{
    /// <summary>
    /// A client pings about every K seconds, and a ping that leaves right at the path's timeout may arrive
    /// just too late: 20 % of margin covers the client's own timer slack and the reaction time in the
    /// learned value, and still keeps K close to what the path allows (350 s gives 280 s).
    /// </summary>
    public const double Fraction = 0.8;

    /// <summary>The Keep Alive to keep a connection under a learned idle timeout: 0.8 x the timeout, at least 1.</summary>
    public static ushort Below(double learnedTimeoutSeconds)
        => (ushort)Math.Clamp(Math.Floor(learnedTimeoutSeconds * Fraction), 1, ushort.MaxValue);

    /// <summary>
    /// The Server Keep Alive to send instead of the negotiated one, or null to leave the negotiation alone.
    /// The result is min(requested, 0.8 x learned), never below the floor (unless the client itself asked for
    /// less), and only ever lowers the negotiated value: adaptation must never make a client ping less often.
    /// </summary>
    /// <param name="requested">The client's Keep Alive from CONNECT; 0 (no keep-alive) has no ceiling.</param>
    /// <param name="negotiated">The Keep Alive the policy settled on; 0 = none.</param>
    /// <param name="learnedTimeoutSeconds">The network's learned idle timeout.</param>
    /// <param name="floorSeconds">Broker:KeepAlive:AdaptiveFloorSeconds.</param>
    public static ushort? Decide(ushort requested, ushort negotiated, double learnedTimeoutSeconds, ushort floorSeconds)
    {
        if (!(learnedTimeoutSeconds > 0))
        {
            return null;
        }
        ushort target = Math.Max(Below(learnedTimeoutSeconds), floorSeconds);
        if (requested != 0)
        {
            target = Math.Min(target, requested);
        }
        // A client without keep-alive (0) dies at the middlebox like the others: it gets one.
        if (negotiated != 0 && target >= negotiated)
        {
            return null;
        }
        return target;
    }
}
