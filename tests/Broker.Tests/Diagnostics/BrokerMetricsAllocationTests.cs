using Broker.Diagnostics;
using Broker.Diagnostics.Insight;
using OpenTelemetry.Metrics;
using Xunit;

namespace Broker.Tests.Diagnostics;

/// <summary>
/// A meter provider listens to every meter of the broker's name in the process, those of tests running beside it
/// included, and the first recording of a series allocates: so this measurement runs alone.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideMetersCollection
{
    public const string Name = "Process-wide meters";
}

[Collection(ProcessWideMetersCollection.Name)]
public sealed class BrokerMetricsAllocationTests
{
    [Fact]
    public void Recording_idle_before_death_through_the_exporter_pipeline_does_not_allocate()
    {
        using var metrics = new BrokerMetrics();
        using var provider = OpenTelemetry.Sdk.CreateMeterProviderBuilder().AddMeter(BrokerMetrics.MeterName).AddPrometheusExporter().Build();
        foreach (var cause in Enum.GetValues<HalfOpenCause>())
        {
            metrics.IdleBeforeDeath(cause, TimeSpan.FromSeconds(1));   // the first recording of a series creates it
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            metrics.IdleBeforeDeath((HalfOpenCause)(i % HalfOpenCauses.Count), TimeSpan.FromSeconds(i));
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
