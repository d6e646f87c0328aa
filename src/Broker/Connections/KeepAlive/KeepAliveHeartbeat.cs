using Microsoft.Extensions.Hosting;

namespace Broker.Connections.KeepAlive;

/// <summary>
/// The one timer of the keep-alive engine: advances the <see cref="TimerWheel"/> every tick. The wheel
/// measures each tick's lag itself (<see cref="TimerWheel.TickLagMeasured"/>), so a late beat is seen as a
/// broker stall and catches up on every missed tick in one Advance.
/// </summary>
internal sealed class KeepAliveHeartbeat(TimerWheel wheel, TimeProvider time) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => RunAsync(stoppingToken);

    // Creates its timer before the first await, so a test holding the returned task knows the timer
    // exists (BackgroundService may start ExecuteAsync on another thread).
    internal async Task RunAsync(CancellationToken stoppingToken)
    {
        // Beats on the wheel's grid, so that the measured lag is lateness and not phase.
        wheel.TryAlignToNow();
        // PeriodicTimer coalesces missed ticks into one; that is fine, Advance works from timestamps.
        using var timer = new PeriodicTimer(wheel.Tick, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                wheel.Advance();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
