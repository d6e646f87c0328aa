namespace Broker.Hosting;

/// <summary>
/// Separates configuration overrides (<c>--Broker:Tcp:Port=1883</c>, <c>--Broker:Tcp:Port 1883</c>,
/// <c>Broker:Tcp:Port=1883</c>) from the command line's own options before parsing, so that an override is never
/// taken as the value of an option (<c>--help --Broker:Tcp:Port=1</c>) and an unknown option is still an error.
/// A configuration key always has a section (a ':'), which no option of the command line has.
/// </summary>
internal static class ConfigurationArguments
{
    public sealed record Result(IReadOnlyList<string> Overrides, IReadOnlyList<string> Remaining, IReadOnlyList<string> Errors);

    /// <returns>The overrides normalised to <c>--Key=value</c> (what the host's command-line provider reads).</returns>
    public static Result Split(IReadOnlyList<string> args)
    {
        var overrides = new List<string>();
        var remaining = new List<string>();
        var errors = new List<string>();
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (arg == "--")
            {
                remaining.AddRange(args.Skip(i));
                break;
            }
            string body = arg.StartsWith("--", StringComparison.Ordinal) ? arg[2..] : arg;
            int equals = body.IndexOf('=');
            string key = equals < 0 ? body : body[..equals];
            if (!IsConfigurationKey(key) || (equals < 0 && body.Length == arg.Length))
            {
                // Not a key, or a bare "Section:Key" without a value: a subcommand argument such as a path.
                remaining.Add(arg);
                continue;
            }
            if (equals >= 0)
            {
                overrides.Add($"--{key}={body[(equals + 1)..]}");
            }
            else if (i + 1 < args.Count)
            {
                overrides.Add($"--{key}={args[++i]}");
            }
            else
            {
                errors.Add($"{arg} needs a value ({arg}=VALUE or {arg} VALUE)");
            }
        }
        return new Result(overrides, remaining, errors);
    }

    private static bool IsConfigurationKey(string key)
        => key.Length > 2 && key.Contains(':') && key[0] != ':' && key[^1] != ':' && !key.Contains(' ') && char.IsLetter(key[0]);
}
