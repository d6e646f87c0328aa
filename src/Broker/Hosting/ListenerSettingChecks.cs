using System.Net;

namespace Broker.Hosting;

/// <summary>The checks every listener's settings share (TCP, TLS, WebSocket, HTTP), with one wording for each problem.</summary>
internal static class ListenerSettingChecks
{
    /// <summary>Adds a failure naming <paramref name="key"/> unless <paramref name="address"/> is an IP address.</summary>
    public static void Address(List<string> failures, string key, string? address)
    {
        if (string.IsNullOrWhiteSpace(address) || !IPAddress.TryParse(address, out _))
        {
            failures.Add($"{key} must be an IPv4 or IPv6 address (was '{address}')");
        }
    }

    /// <summary>Adds a failure naming <paramref name="key"/> when <paramref name="port"/> is set and not a TCP port number.</summary>
    public static void Port(List<string> failures, string key, int? port)
    {
        if (port is < IPEndPoint.MinPort or > IPEndPoint.MaxPort)
        {
            failures.Add($"{key} must be between {IPEndPoint.MinPort} and {IPEndPoint.MaxPort} (was {port})");
        }
    }
}
