using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Broker.Tests.Security;

/// <summary>A directory under the system temp directory, deleted with everything in it.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Path = Directory.CreateTempSubdirectory("broker-security-").FullName;

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string Write(string name, string content)
    {
        string path = File(name);
        System.IO.File.WriteAllText(path, content);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Keeps every log entry, for asserting on warnings and on what is never logged.</summary>
internal sealed class ListLogger<T> : ILogger<T>
{
    public ConcurrentQueue<(LogLevel Level, EventId Id, string Message)> Entries { get; } = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Entries.Enqueue((logLevel, eventId, formatter(state, exception)));

    public string All => string.Join("\n", Entries.Select(e => e.Message));
}

/// <summary>Runs an external tool (mosquitto_passwd, mosquitto, mosquitto_pub) with a bounded wait.</summary>
internal static class ExternalTool
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>In CI (CI=true, or BROKER_INTEROP_REQUIRED=1 as .ci/run sets) a missing tool fails its test.</summary>
    public static bool Required =>
        Environment.GetEnvironmentVariable("CI") == "true" || Environment.GetEnvironmentVariable("BROKER_INTEROP_REQUIRED") == "1";

    /// <summary>The tool's full path, or a skip of the calling test with the reason.</summary>
    public static string Require(string name, string package)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(System.IO.Path.PathSeparator))
        {
            var path = System.IO.Path.Combine(dir, name);
            if (File.Exists(path))
            {
                return path;
            }
        }
        // CI must run every test: .ci/run installs the tool, so there a missing one is a failure, not a skip.
        Assert.SkipWhen(!Required, $"{name} not installed (Debian package {package}; .ci/run installs it)");
        Assert.Fail($"{name} is not installed, but CI must run this test: .ci/run installs the Debian package {package}");
        return name;
    }

    public static Task<(int ExitCode, string Output)> RunAsync(string file, params string[] args) => RunInAsync(null, file, args);

    /// <summary>Runs in <paramref name="workingDirectory"/> (null: the current one) and returns stdout + stderr.</summary>
    public static async Task<(int ExitCode, string Output)> RunInAsync(string? workingDirectory, string file, params string[] args)
    {
        using var process = StartIn(workingDirectory, file, args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(Timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} still running after {Timeout}");
        }
        return (process.ExitCode, await stdout + await stderr);
    }

    public static Process Start(string file, params string[] args) => StartIn(null, file, args);

    public static Process StartIn(string? workingDirectory, string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (workingDirectory is not null)
        {
            info.WorkingDirectory = workingDirectory;
        }
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        return Process.Start(info) ?? throw new InvalidOperationException("could not start " + file);
    }
}
