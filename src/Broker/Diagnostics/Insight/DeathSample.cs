namespace Broker.Diagnostics.Insight;

/// <summary>One half-open death: when it was recorded, how long the connection had been idle, its K.</summary>
internal readonly record struct DeathSample(long Timestamp, float IdleSeconds, ushort KeepAlive, HalfOpenCause Cause);
