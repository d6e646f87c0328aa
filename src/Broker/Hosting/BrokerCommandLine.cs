using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Reflection;
using Broker.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Broker.Hosting;

/// <summary>
/// The broker's command line (System.CommandLine): run the broker (no arguments), <c>--help</c>, <c>--version</c>,
/// <c>--print-config</c>, <c>--healthcheck</c>, <c>-p PORT</c>, and configuration overrides in the .NET form
/// (<c>--Broker:Tcp:Port=1883</c>). Other areas add subcommands with <see cref="Add"/> before <see cref="RunAsync"/>.
/// Exit codes: 0 done, 1 unexpected failure or unhealthy, 2 command line or configuration invalid or the persistent
/// store unusable, 3 a listener could not bind.
/// </summary>
internal sealed class BrokerCommandLine
{
    public const int ExitOk = 0;
    public const int ExitFailure = 1;
    public const int ExitInvalid = 2;
    public const int ExitCannotListen = 3;

    private readonly TextWriter _output;
    private readonly TextWriter _error;
    private readonly RootCommand _root;
    private readonly Option<int?> _port = new("--port", "-p")
    {
        Description = "MQTT TCP port; the same as --Broker:Tcp:Port=PORT",
        HelpName = "PORT",
    };
    private readonly Option<bool> _printConfig = new("--print-config")
    {
        Description = "Print the effective configuration (every Broker key with its value, secrets redacted) and exit",
    };
    private readonly Option<bool> _healthCheck = new(HealthCheckCommand.Switch)
    {
        Description = "GET /healthz of the broker running with this configuration; exit 0 when healthy, else 1 (container HEALTHCHECK)",
    };
    private IReadOnlyList<string> _overrides = [];

    public BrokerCommandLine(TextWriter output, TextWriter error)
    {
        _output = output;
        _error = error;
        _root = new RootCommand($"{BrokerVersion.Product}: an MQTT 3.1.1 and 5.0 broker. Without options it runs with ./appsettings.json.")
        {
            _port,
            _printConfig,
            _healthCheck,
        };
        foreach (var option in _root.Options)
        {
            if (option is HelpOption { Action: HelpAction help } helpOption)
            {
                helpOption.Action = new HelpWithConfigurationAction(help);
            }
            else if (option is VersionOption versionOption)
            {
                versionOption.Action = new PrintVersionAction();
            }
        }
        _root.SetAction((result, token) => RunRootAsync(result, token));
    }

    /// <summary>Adds a subcommand (e.g. <c>passwd</c>); configuration overrides are available to it through <see cref="BuildConfiguration"/>.</summary>
    public void Add(Command subcommand) => _root.Add(subcommand);

    /// <summary>The effective configuration for a subcommand: appsettings.json, environment, and the overrides given.</summary>
    public IConfiguration BuildConfiguration() => BrokerHost.CreateBuilder([.. _overrides]).Configuration;

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken = default)
    {
        var split = ConfigurationArguments.Split(args);
        _overrides = split.Overrides;
        var parse = _root.Parse(split.Remaining);
        // --help wins over a missing argument ("passwd --help" has no FILE or USER).
        bool help = parse.Action is HelpAction or HelpWithConfigurationAction;
        var errors = split.Errors.Concat(help ? [] : parse.Errors.Select(e => e.Message)).ToList();
        if (errors.Count > 0)
        {
            foreach (var error in errors)
            {
                await _error.WriteLineAsync($"error: {error}").ConfigureAwait(false);
            }
            await _error.WriteLineAsync($"Run with --help for the options and configuration keys.").ConfigureAwait(false);
            return ExitInvalid;
        }
        return await parse.InvokeAsync(new InvocationConfiguration { Output = _output, Error = _error }, cancellationToken).ConfigureAwait(false);
    }

    private async Task<int> RunRootAsync(ParseResult result, CancellationToken cancellationToken)
    {
        var overrides = _overrides.ToList();
        if (result.GetValue(_port) is { } port)
        {
            // Last, so that it wins over --Broker:Tcp:Port given too.
            overrides.Add($"--{TcpOptions.SectionName}:{nameof(TcpOptions.Port)}={port}");
        }
        if (result.GetValue(_healthCheck))
        {
            return await HealthCheckCommand.RunAsync(BrokerHost.CreateBuilder([.. overrides]).Configuration, _error, cancellationToken).ConfigureAwait(false);
        }
        if (result.GetValue(_printConfig))
        {
            return await PrintConfigurationAsync(overrides).ConfigureAwait(false);
        }
        return await RunBrokerAsync(overrides, cancellationToken).ConfigureAwait(false);
    }

    private async Task<int> RunBrokerAsync(IReadOnlyList<string> overrides, CancellationToken cancellationToken)
    {
        IConfiguration? configuration = null;
        try
        {
            var builder = BrokerHost.CreateBuilder([.. overrides]);
            configuration = builder.Configuration;
            using var host = builder.Build();
            if (await ReportConfigurationProblemsAsync(host.Services, configuration).ConfigureAwait(false))
            {
                return ExitInvalid;
            }
            // Version and limits first, before anything can fail to bind.
            host.Services.GetRequiredService<StartupReport>().Write();
            var startupFailures = host.Services.GetRequiredService<StartupFailures>(); // RunAsync disposes the container
            await host.RunAsync(cancellationToken).ConfigureAwait(false);
            var failures = startupFailures.Messages;
            foreach (var failure in failures)
            {
                await _error.WriteLineAsync($"Cannot start: {failure}").ConfigureAwait(false);
            }
            return failures.Count > 0 ? startupFailures.ExitCode : ExitOk;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return ExitOk;
        }
        catch (Exception ex)
        {
            // Whatever else stops start-up: one line, and the stack trace only for whoever asked for Debug.
            await _error.WriteLineAsync($"Cannot start: {ex.GetType().Name}: {ex.Message}").ConfigureAwait(false);
            if (configuration is not null && IsDebug(configuration))
            {
                await _error.WriteLineAsync(ex.ToString()).ConfigureAwait(false);
            }
            return ExitFailure;
        }
    }

    private async Task<bool> ReportConfigurationProblemsAsync(IServiceProvider services, IConfiguration configuration)
    {
        var problems = StartupCheck.FindProblems(services, configuration);
        foreach (var problem in problems)
        {
            await _error.WriteLineAsync($"Invalid configuration: {problem}").ConfigureAwait(false);
        }
        return problems.Count > 0;
    }

    private async Task<int> PrintConfigurationAsync(IReadOnlyList<string> overrides)
    {
        var builder = BrokerHost.CreateBuilder([.. overrides]);
        foreach (var (key, value) in EffectiveConfiguration.Describe(builder.Configuration))
        {
            await _output.WriteLineAsync($"{key} = {value}").ConfigureAwait(false);
        }
        using var host = builder.Build();
        return await ReportConfigurationProblemsAsync(host.Services, builder.Configuration).ConfigureAwait(false) ? ExitInvalid : ExitOk;
    }

    private static bool IsDebug(IConfiguration configuration)
        => Enum.TryParse<Microsoft.Extensions.Logging.LogLevel>(configuration["Logging:LogLevel:Default"], ignoreCase: true, out var level)
            && level <= Microsoft.Extensions.Logging.LogLevel.Debug;

    private sealed class PrintVersionAction : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            parseResult.InvocationConfiguration.Output.WriteLine($"{BrokerVersion.Product} {BrokerVersion.Display}");
            return ExitOk;
        }
    }

    /// <summary>The standard help, then every configuration key with its default, generated from the options records.</summary>
    private sealed class HelpWithConfigurationAction(HelpAction standard) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            int result = standard.Invoke(parseResult);
            var output = parseResult.InvocationConfiguration.Output;
            output.WriteLine("Configuration overrides (later sources win: ./appsettings.json, environment, command line):");
            output.WriteLine("  --Section:Key=VALUE or --Section:Key VALUE    e.g. --Broker:Tcp:Port=18831, --Logging:LogLevel:Default=Debug");
            output.WriteLine("  environment Section__Key=VALUE                e.g. Broker__KeepAlive__MaxSeconds=300");
            output.WriteLine();
            output.WriteLine("Configuration keys and their defaults (README.md and docs/operations.md explain each):");
            foreach (var (key, value) in EffectiveConfiguration.Defaults())
            {
                output.WriteLine($"  {key,-44} {value}");
            }
            output.WriteLine("  Logging:LogLevel:Default                     Information (standard .NET logging keys)");
            output.WriteLine();
            output.WriteLine("Exit codes: 0 stopped normally, 1 unexpected failure or unhealthy, 2 invalid command line or configuration or unusable persistent store, 3 cannot listen.");
            return result;
        }
    }
}

/// <summary>The configuration as the broker sees it: every Broker key (defaults included) and the Logging keys set.</summary>
internal static class EffectiveConfiguration
{
    private static readonly string[] SecretWords = ["password", "secret", "token", "key", "credential", "connectionstring"];

    public static IEnumerable<(string Key, string Value)> Describe(IConfiguration configuration)
    {
        foreach (var (section, type) in ConfigurationKeyCheck.KnownSections)
        {
            var bound = Bind(configuration.GetSection("Broker:" + section), type);
            foreach (var property in Properties(type))
            {
                string key = $"Broker:{section}:{property.Name}";
                yield return (key, Redact(key, Format(property.GetValue(bound))));
            }
        }
        foreach (var entry in configuration.GetSection("Logging").AsEnumerable().Where(e => e.Value is not null).OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            yield return (entry.Key, Redact(entry.Key, entry.Value!));
        }
    }

    public static IEnumerable<(string Key, string Value)> Defaults()
    {
        foreach (var (section, type) in ConfigurationKeyCheck.KnownSections)
        {
            var defaults = Activator.CreateInstance(type)!;
            foreach (var property in Properties(type))
            {
                yield return ($"Broker:{section}:{property.Name}", Format(property.GetValue(defaults)));
            }
        }
    }

    /// <summary>A secret's value is never printed, only whether it is set.</summary>
    public static string Redact(string key, string value)
    {
        string name = key[(key.LastIndexOf(':') + 1)..];
        bool secret = SecretWords.Any(w => name.Contains(w, StringComparison.OrdinalIgnoreCase));
        return secret && value.Length > 0 && value != "(unset)" ? "***" : value;
    }

    private static object Bind(IConfigurationSection section, Type type)
    {
        try
        {
            return section.Get(type) ?? Activator.CreateInstance(type)!;
        }
        catch (InvalidOperationException)
        {
            return Activator.CreateInstance(type)!; // a value that does not convert: reported by the start-up check
        }
    }

    private static IEnumerable<PropertyInfo> Properties(Type type) => type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite);

    private static string Format(object? value) => value switch
    {
        null => "(unset)",
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? string.Empty,
    };
}
