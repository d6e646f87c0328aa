using System.Reflection;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Broker.Tests.Diagnostics;

/// <summary>docs/operations.md lists the broker's log events by id: an id names one event, whichever file defines it.</summary>
public sealed class LogEventIdTests
{
    [Fact]
    public void Every_log_event_of_the_broker_has_an_id_of_its_own()
    {
        var events = typeof(Broker.Diagnostics.BrokerLog).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => (Method: m, Attribute: m.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(e => e.Attribute is not null)
            .ToList();
        Assert.True(events.Count > 40, $"only {events.Count} log events found");

        var shared = events.GroupBy(e => e.Attribute!.EventId).Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: " + string.Join(", ", g.Select(e => $"{e.Method.DeclaringType!.Name}.{e.Method.Name}")))
            .ToList();
        Assert.True(shared.Count == 0, "event ids used twice: " + string.Join("; ", shared));
    }
}
