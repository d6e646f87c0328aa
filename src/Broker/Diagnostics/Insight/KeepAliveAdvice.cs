using System.Globalization;

namespace Broker.Diagnostics.Insight;

/// <summary>The advice sentence for a network with a death cluster: what happens, what it means, what to set.</summary>
internal static class KeepAliveAdvice
{
    /// <summary>
    /// Deaths at 90 % of K or later are noticed by the clients' own next ping: the path died earlier, somewhere
    /// below K, and only an upper bound is known.
    /// </summary>
    private const double NearKeepAlive = 0.9;

    public static string Format(string network, DeathCluster cluster, bool adaptive)
    {
        ushort limit = AdaptiveServerKeepAlive.Below(cluster.FromSeconds);
        string k = cluster.KeepAlive == 0 ? "0 (no keep-alive)" : cluster.KeepAlive.ToString(CultureInfo.InvariantCulture);
        string range = cluster.ToSeconds - cluster.FromSeconds < 0.05
            ? Seconds(cluster.FromSeconds)
            : Seconds(cluster.FromSeconds) + "-" + Seconds(cluster.ToSeconds);
        string diagnosis = cluster.KeepAlive != 0 && cluster.FromSeconds >= NearKeepAlive * cluster.KeepAlive
            ? $"they die at their next keep-alive: something on the path evicts idle flows in less than ~{Seconds(cluster.FromSeconds)} s"
            : $"a middlebox evicts idle flows at ~{Seconds(cluster.TypicalSeconds)} s";
        string remedy = adaptive
            ? $"adaptive mode tells MQTT 5.0 clients from this network K <= {limit}; lower K on MQTT 3.1.1 devices to <= {limit}"
            : $"set Broker:KeepAlive:ServerKeepAliveSeconds <= {limit} or lower the devices' K";
        return string.Create(CultureInfo.InvariantCulture,
            $"clients from {network}: {cluster.Deaths} of {cluster.Connections} connections died half-open after {range} s idle with K = {k}: {diagnosis}; {remedy}");
    }

    /// <summary>Whole seconds from 10 s up; one decimal below, where the tests' short timeouts live.</summary>
    public static string Seconds(double value)
        => value < 10 ? value.ToString("0.0", CultureInfo.InvariantCulture) : value.ToString("0", CultureInfo.InvariantCulture);
}
