namespace Broker.Connections.KeepAlive;

/// <summary>What expired and by how much, for the end reason and the log line.</summary>
/// <param name="Kind">Which deadline expired.</param>
/// <param name="Timeout">The allowed silence (keep-alive: grace x K; connect: the connect timeout).</param>
/// <param name="Elapsed">
/// Time from the reference point to the moment of expiry: since the last packet for
/// <see cref="DeadlineKind.KeepAlive"/>, since arming for <see cref="DeadlineKind.Connect"/>.
/// Always &gt;= <paramref name="Timeout"/>.
/// </param>
internal readonly record struct DeadlineExpiry(DeadlineKind Kind, TimeSpan Timeout, TimeSpan Elapsed);
