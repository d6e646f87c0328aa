using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Conformance.Infrastructure;

/// <summary>
/// Moves a broker's fake clock forward the way time passes: in wheel-tick steps (100 ms), yielding briefly after each so
/// that what a tick hands to the thread pool (an expiry, a re-arm) runs before the next tick, as it would in real time.
/// </summary>
internal static class FakeClockSteps
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(100);

    public static async Task AdvanceAsync(this FakeTimeProvider time, TimeSpan by)
    {
        for (var passed = TimeSpan.Zero; passed < by; passed += Step)
        {
            time.Advance(Step);
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }
}
