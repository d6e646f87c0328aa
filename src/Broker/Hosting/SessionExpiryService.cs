using Broker.Diagnostics;
using Broker.Sessions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Broker.Hosting;

/// <summary>
/// Removes offline sessions whose expiry interval passed. Once a second is enough: expiry is in whole
/// seconds, and a late removal only keeps memory a moment longer.
/// </summary>
internal sealed class SessionExpiryService(SessionStore sessions, TimeProvider time, ILogger<SessionExpiryService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                foreach (var clientId in sessions.RemoveExpired())
                {
                    BrokerLog.SessionExpired(logger, clientId);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
