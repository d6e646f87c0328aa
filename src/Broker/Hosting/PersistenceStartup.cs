using Broker.Persistence;
using Broker.Sessions;
using Microsoft.Extensions.Hosting;

namespace Broker.Hosting;

/// <summary>
/// Opens the persistent store and restores the broker's state from it, before the MQTT listener binds (it is
/// registered before the listener, so the host starts it first and stops it last). An unusable store stops start-up
/// with its message and exit code 2: never an empty start in its place. On stop, after the listener has closed every
/// connection (and they wrote their last changes), the store commits what is pending and closes.
/// </summary>
internal sealed class PersistenceStartup(IBrokerStateStore store, StateRestorer restorer, StartupFailures failures) : IHostedService
{
    /// <summary>What start-up restored (null before it ran, or when the store could not be opened).</summary>
    public RestoreApplied? Restored { get; private set; }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (failures.Any)
        {
            return Task.CompletedTask;
        }
        try
        {
            Restored = restorer.Apply(store.Open());
        }
        catch (StoreUnreadableException e)
        {
            failures.StoreUnusable(e.Message);
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        store.Dispose();
        return Task.CompletedTask;
    }
}
