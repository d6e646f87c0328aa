using System.Globalization;
using Broker.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Hosting;

/// <summary>The first lines of the log: which build runs, with which limits (events 31 and 32).</summary>
internal sealed class StartupReport(IOptions<TcpOptions> tcp, IOptions<KeepAliveOptions> keepAlive, IOptions<BrokerLimitsOptions> limits,
    IOptions<SysOptions> sys, ILogger<StartupReport> logger)
{
    public void Write()
    {
        BrokerLog.Starting(logger, BrokerVersion.Display, Environment.Version.ToString(), Environment.ProcessorCount,
            Text(ProcessDescriptors.Open()), Text(ProcessDescriptors.Limit()));
        if (logger.IsEnabled(LogLevel.Information))
        {
            BrokerLog.EffectiveLimits(logger, Describe(tcp.Value, keepAlive.Value, limits.Value, sys.Value));
        }
    }

    internal static string Describe(TcpOptions tcp, KeepAliveOptions k, BrokerLimitsOptions l, SysOptions sys)
        => string.Join(", ",
            $"keep-alive max {k.MaxSeconds} s (zero {(k.AllowZero ? "allowed" : "refused")}, server keep-alive {(k.ServerKeepAliveSeconds is { } s ? s + " s" : "unset")}, grace x{k.GraceMultiplier.ToString(CultureInfo.InvariantCulture)})",
            $"connect timeout {k.ConnectTimeoutSeconds} s",
            $"tick {k.TickMilliseconds} ms",
            $"max packet {l.MaxPacketSize} B",
            $"receive maximum {l.ReceiveMaximum}",
            $"inflight {l.MaxInflightMessages} / {l.MaxInflightBytes} B",
            $"queued {l.MaxQueuedMessages} / {l.MaxQueuedBytes} B",
            $"topic aliases {l.TopicAliasMaximum}",
            $"session expiry max {l.MaxSessionExpirySeconds} s",
            $"client id max {l.MaxClientIdLength}",
            $"backlog {tcp.Backlog}",
            $"output buffer {tcp.MaxPendingOutputBytes} B",
            $"input buffer {tcp.MaxInputBufferBytes} B",
            $"$SYS every {(sys.IntervalSeconds == 0 ? "never (off)" : sys.IntervalSeconds + " s")}");

    private static string Text(long? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "unknown";
}
