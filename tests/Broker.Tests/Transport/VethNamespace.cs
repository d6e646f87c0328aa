using System.Diagnostics;
using System.Text;
using Xunit;

namespace Broker.Tests.Transport;

/// <summary>
/// A throw-away network namespace joined to the host by a veth pair with a /30 in 10.251.X.0 (X random,
/// checked unused), so a test can cut a live TCP connection without either side closing it.
/// Needs root and iproute2; <see cref="CreateOrSkipAsync"/> skips the test where that is missing.
/// </summary>
internal sealed class VethNamespace : IAsyncDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(10);

    private readonly string _ip;

    private VethNamespace(string ip, string name, string hostLink, string namespaceLink, string hostAddress, string namespaceAddress)
    {
        _ip = ip;
        Name = name;
        HostLink = hostLink;
        NamespaceLink = namespaceLink;
        HostAddress = hostAddress;
        NamespaceAddress = namespaceAddress;
    }

    public string Name { get; }

    public string HostLink { get; }

    public string NamespaceLink { get; }

    public string HostAddress { get; }

    public string NamespaceAddress { get; }

    public static async Task<VethNamespace> CreateOrSkipAsync()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("Half-open test skipped: network namespaces exist only on Linux.");
        }

        if (!Environment.IsPrivilegedProcess)
        {
            Assert.Skip("Half-open test skipped: creating a network namespace needs root.");
        }

        string ip = FindExecutable("ip") ?? SkipWith("Half-open test skipped: the 'ip' command (iproute2) is not installed.");
        if (FindExecutable("python3") is null)
        {
            SkipWith("Half-open test skipped: python3 (the client inside the namespace) is not installed.");
        }

        string suffix = Random.Shared.Next(0x1000000).ToString("x6");
        string name = "broker-ka-" + suffix;
        string hostLink = "bk" + suffix + "h";
        string namespaceLink = "bk" + suffix + "n";
        int subnet = await PickUnusedSubnetAsync(ip);
        var ns = new VethNamespace(ip, name, hostLink, namespaceLink, $"10.251.{subnet}.1", $"10.251.{subnet}.2");

        (int exitCode, string output) = await RunAsync(ip, "netns", "add", name);
        if (exitCode != 0)
        {
            SkipWith($"Half-open test skipped: 'ip netns add' failed ({exitCode}): {output.Trim()}");
        }

        try
        {
            await ns.IpAsync("link", "add", hostLink, "type", "veth", "peer", "name", namespaceLink, "netns", name);
            await ns.IpAsync("addr", "add", ns.HostAddress + "/30", "dev", hostLink);
            await ns.IpAsync("link", "set", hostLink, "up");
            await ns.InNamespaceAsync(ip, "addr", "add", ns.NamespaceAddress + "/30", "dev", namespaceLink);
            await ns.InNamespaceAsync(ip, "link", "set", namespaceLink, "up");
            return ns;
        }
        catch
        {
            await ns.DisposeAsync();
            throw;
        }
    }

    /// <summary>Takes the namespace's end of the veth down: the host side loses carrier and the peer goes silent, with no FIN or RST.</summary>
    public Task CutLinkAsync() => InNamespaceAsync(_ip, "link", "set", NamespaceLink, "down");

    /// <summary>
    /// Brings the namespace's end back up and waits (bounded) until the link carries traffic again, so a
    /// connection opened right after does not lose its SYN to a link still coming up.
    /// </summary>
    public async Task RestoreLinkAsync()
    {
        await InNamespaceAsync(_ip, "link", "set", NamespaceLink, "up");
        for (int attempt = 0; attempt < 100; attempt++)
        {
            (_, string state) = await RunAsync(_ip, "netns", "exec", Name, _ip, "-o", "link", "show", "dev", NamespaceLink);
            if (state.Contains("LOWER_UP", StringComparison.Ordinal))
            {
                return;
            }
        }

        throw new InvalidOperationException($"{NamespaceLink} did not come back up");
    }

    /// <summary>Starts a long-running process inside the namespace (its standard input is redirected, for commands).</summary>
    public Process StartInNamespace(string file, params string[] arguments)
    {
        var info = new ProcessStartInfo(_ip)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in new[] { "netns", "exec", Name, file }.Concat(arguments))
        {
            info.ArgumentList.Add(argument);
        }

        return Process.Start(info) ?? throw new InvalidOperationException("Could not start " + file);
    }

    public async ValueTask DisposeAsync()
    {
        // Deleting the namespace destroys its veth end and with it the host end; the explicit delete
        // covers a namespace that a leftover process keeps alive.
        await RunAsync(_ip, "netns", "del", Name);
        await RunAsync(_ip, "link", "del", HostLink);
    }

    private async Task IpAsync(params string[] arguments)
    {
        (int exitCode, string output) = await RunAsync(_ip, arguments);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"ip {string.Join(' ', arguments)} failed ({exitCode}): {output}");
        }
    }

    private Task InNamespaceAsync(string file, params string[] arguments) =>
        IpAsync(new[] { "netns", "exec", Name, file }.Concat(arguments).ToArray());

    private static async Task<int> PickUnusedSubnetAsync(string ip)
    {
        (_, string addresses) = await RunAsync(ip, "-4", "-o", "addr", "show");
        (_, string routes) = await RunAsync(ip, "-4", "route", "show");
        for (int attempt = 0; attempt < 20; attempt++)
        {
            int candidate = Random.Shared.Next(256);
            string prefix = $"10.251.{candidate}.";
            if (!addresses.Contains(prefix, StringComparison.Ordinal) && !routes.Contains(prefix, StringComparison.Ordinal))
            {
                return candidate;
            }
        }

        return SkipWith<int>("Half-open test skipped: found no unused 10.251.X.0/30 subnet.");
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, params string[] arguments)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(info) ?? throw new InvalidOperationException("Could not start " + file);
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(CommandTimeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} did not finish within {CommandTimeout}");
        }

        return (process.ExitCode, new StringBuilder().Append(await stdout).Append(await stderr).ToString());
    }

    private static string? FindExecutable(string name)
    {
        IEnumerable<string> directories = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
        return directories.Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
    }

    private static string SkipWith(string reason) => SkipWith<string>(reason);

    private static T SkipWith<T>(string reason)
    {
        Assert.Skip(reason);
        throw new InvalidOperationException("unreachable");
    }
}
