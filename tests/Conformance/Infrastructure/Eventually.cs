using Xunit;

namespace Conformance.Infrastructure;

/// <summary>
/// Waits for a condition on broker state that no packet or log line announces (a connection unregistered, a client
/// held back): polled every 10 ms, failing the test with <c>failure</c> once <c>timeout</c> has passed.
/// </summary>
internal static class Eventually
{
    /// <summary>Returns how long it took.</summary>
    public static async Task<TimeSpan> TrueAsync(Func<bool> condition, TimeSpan timeout, string failure)
    {
        long start = TimeProvider.System.GetTimestamp();
        while (!condition())
        {
            if (TimeProvider.System.GetElapsedTime(start) > timeout)
            {
                Assert.Fail(failure);
            }
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
        return TimeProvider.System.GetElapsedTime(start);
    }
}
