using Xunit;

namespace Conformance.Infrastructure;

/// <summary>
/// Tests that measure real time with tight bounds (keep-alive deadlines within one tick, PINGRESP latency,
/// connect timeouts). They run after all other tests and one at a time: on a 2-core machine the other tests
/// (brokers starting, client library processes) would make the broker under test late, and the test would
/// blame the broker for the machine.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RealTimeCollection
{
    public const string Name = "Real-time bounds";
}
