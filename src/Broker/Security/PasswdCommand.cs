using System.CommandLine;
using System.Text;

namespace Broker.Security;

/// <summary>
/// <c>passwd [-c | -D] [--iterations N] FILE USER</c> (a subcommand of the broker's command line): adds, replaces or removes a user in a Mosquitto-format
/// password file, like <c>mosquitto_passwd</c>. The password is read twice without echo from a terminal; from a
/// pipe (scripts) the first line is the password and a second line, if present, must repeat it. The file is
/// replaced atomically (written beside it, then renamed) and created readable by its owner only.
/// </summary>
internal sealed class PasswdCommand
{
    public const string Name = "passwd";

    private const int ExitOk = 0;
    private const int ExitFailed = 1;
    private const int ExitUsage = 2;
    private const int MaxUtf8StringBytes = 65_535; // an MQTT UTF-8 string / binary field [1.5.4], [1.5.6]

    private readonly TextWriter _output;
    private readonly TextWriter _error;
    private readonly Func<string?> _readSecretLine;
    private readonly bool _interactive;

    /// <param name="readTerminalSecret">Reads one line without echo; null when the input is not a terminal.</param>
    public PasswdCommand(TextReader input, TextWriter output, TextWriter error, Func<string?>? readTerminalSecret = null)
    {
        _output = output;
        _error = error;
        _interactive = readTerminalSecret is not null;
        _readSecretLine = readTerminalSecret ?? input.ReadLine;
    }

    /// <summary>The <c>passwd</c> subcommand of the broker's command line, on the console (no echo from a terminal).</summary>
    public static Command CreateConsoleCommand() =>
        new PasswdCommand(Console.In, Console.Out, Console.Error, Console.IsInputRedirected ? null : ReadConsoleWithoutEcho).CreateCommand();

    /// <summary>
    /// The subcommand: <c>passwd [-c | -D] [--iterations N] FILE USER</c>, parsed by System.CommandLine like the rest
    /// of the broker's command line (usage errors exit 2, <c>--help</c> describes it).
    /// </summary>
    public Command CreateCommand()
    {
        var create = new Option<bool>("-c") { Description = "Create FILE, replacing it if it exists" };
        var delete = new Option<bool>("-D") { Description = "Delete USER" };
        var iterations = new Option<int>("--iterations", "-I")
        {
            Description = $"PBKDF2 iterations (default {PasswordHash.DefaultIterations}; see docs/security.md)",
            HelpName = "N",
            DefaultValueFactory = _ => PasswordHash.DefaultIterations,
        };
        iterations.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < 1 or > PasswordHash.MaxIterations)
            {
                result.AddError($"--iterations needs a number between 1 and {PasswordHash.MaxIterations}");
            }
        });
        var file = new Argument<string>("FILE") { Description = "The password file (Mosquitto's format, Broker:Auth:PasswordFile)" };
        var user = new Argument<string>("USER") { Description = "The user to add, change or delete" };
        foreach (var argument in new[] { file, user })
        {
            // "-x FILE USER" would otherwise take "-x" for the file: a misspelt option is an error, not a name.
            argument.Validators.Add(result =>
            {
                if (result.GetValueOrDefault<string>() is { Length: > 1 } value && value[0] == '-')
                {
                    result.AddError($"unknown option {value}");
                }
            });
        }
        var command = new Command(Name,
            "Add, change or delete a user of a Mosquitto-format password file. The password is read from the terminal " +
            "without echo, or from standard input when it is piped (first line; a second line, if present, must repeat it).")
        {
            create, delete, iterations, file, user,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(create) && result.GetValue(delete))
            {
                result.AddError("-c and -D cannot be combined");
            }
        });
        command.SetAction((result, _) => RunAsync(new Arguments(result.GetValue(file)!, result.GetValue(user)!,
            result.GetValue(create), result.GetValue(delete), result.GetValue(iterations))));
        return command;
    }

    /// <summary>Parses <paramref name="args"/> (without the word <c>passwd</c>) and runs; usage errors print and return 2.</summary>
    public async Task<int> RunAsync(string[] args)
    {
        var parse = CreateCommand().Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                await _error.WriteLineAsync($"passwd: {error.Message}");
            }
            return ExitUsage;
        }
        return await parse.InvokeAsync(new InvocationConfiguration { Output = _output, Error = _error });
    }

    private async Task<int> RunAsync(Arguments parsed)
    {
        string? userProblem = CheckUserName(parsed.User);
        if (userProblem is not null)
        {
            await _error.WriteLineAsync($"passwd: {userProblem}");
            return ExitUsage;
        }

        try
        {
            return parsed.Delete ? await DeleteAsync(parsed) : await AddOrReplaceAsync(parsed);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or SecurityFileException)
        {
            await _error.WriteLineAsync($"passwd: {ex.Message}");
            return ExitFailed;
        }
    }

    private async Task<int> AddOrReplaceAsync(Arguments parsed)
    {
        List<string> lines;
        if (parsed.Create)
        {
            lines = [];
        }
        else if (!File.Exists(parsed.File))
        {
            await _error.WriteLineAsync($"passwd: {parsed.File} does not exist (use -c to create it)");
            return ExitFailed;
        }
        else
        {
            lines = await ReadValidatedLinesAsync(parsed.File);
        }

        string? password = await ReadPasswordAsync();
        if (password is null)
        {
            return ExitFailed;
        }

        byte[] passwordBytes = Encoding.UTF8.GetBytes(password);
        string entry;
        try
        {
            entry = parsed.User + ":" + PasswordHash.Create(passwordBytes, parsed.Iterations).Encode();
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(passwordBytes);
        }

        int index = lines.FindIndex(l => IsLineOfUser(l, parsed.User));
        bool replaced = index >= 0;
        if (replaced)
        {
            lines[index] = entry;
            // A hand-edited file may repeat the user; the broker refuses such a file, so keep only the new entry.
            for (int i = lines.Count - 1; i > index; i--)
            {
                if (IsLineOfUser(lines[i], parsed.User))
                {
                    lines.RemoveAt(i);
                }
            }
        }
        else
        {
            lines.Add(entry);
        }

        WriteAtomically(parsed.File, lines);
        await _output.WriteLineAsync(replaced ? $"Updated the password of {parsed.User}" : $"Added {parsed.User}");
        return ExitOk;
    }

    private async Task<int> DeleteAsync(Arguments parsed)
    {
        if (!File.Exists(parsed.File))
        {
            await _error.WriteLineAsync($"passwd: {parsed.File} does not exist");
            return ExitFailed;
        }
        var lines = await ReadValidatedLinesAsync(parsed.File);
        int removed = lines.RemoveAll(l => IsLineOfUser(l, parsed.User));
        if (removed == 0)
        {
            await _error.WriteLineAsync($"passwd: {parsed.User} is not in {parsed.File}");
            return ExitFailed;
        }
        WriteAtomically(parsed.File, lines);
        await _output.WriteLineAsync($"Deleted {parsed.User}");
        return ExitOk;
    }

    /// <summary>The file's lines, after checking that the broker could load it (so an edit never hides a broken file).</summary>
    private static async Task<List<string>> ReadValidatedLinesAsync(string path)
    {
        string text = await File.ReadAllTextAsync(path);
        PasswordFile.Parse(new StringReader(text), path);
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        if (lines.Count > 0 && lines[^1].Length == 0)
        {
            lines.RemoveAt(lines.Count - 1);
        }
        return lines;
    }

    private static bool IsLineOfUser(string line, string user) =>
        line.Length > user.Length && line[user.Length] == ':' && line.StartsWith(user, StringComparison.Ordinal);

    private async Task<string?> ReadPasswordAsync()
    {
        if (_interactive)
        {
            await _output.WriteAsync("Password: ");
        }
        string? first = _readSecretLine();
        if (string.IsNullOrEmpty(first))
        {
            await _error.WriteLineAsync("passwd: no password given (an empty password is not allowed)");
            return null;
        }
        if (_interactive)
        {
            await _output.WriteAsync("Reenter password: ");
        }
        string? second = _readSecretLine();
        // From a pipe the repetition is optional (echo "$PW" | ... passwd FILE USER); from a terminal it is not.
        if ((second is not null || _interactive) && second != first)
        {
            await _error.WriteLineAsync("passwd: the passwords do not match");
            return null;
        }
        if (Encoding.UTF8.GetByteCount(first) > MaxUtf8StringBytes)
        {
            await _error.WriteLineAsync($"passwd: the password is longer than MQTT allows ({MaxUtf8StringBytes} bytes)");
            return null;
        }
        return first;
    }

    private static string? CheckUserName(string user)
    {
        if (user.Length == 0)
        {
            return "the user name is empty";
        }
        if (user.Contains(':'))
        {
            return "a user name cannot contain ':' (it separates name and hash in the file)";
        }
        if (user.Any(char.IsControl) || user[0] == '#' || char.IsWhiteSpace(user[0]) || char.IsWhiteSpace(user[^1]))
        {
            return "a user name cannot contain control characters, start with '#' or start or end with white space";
        }
        if (Encoding.UTF8.GetByteCount(user) > MaxUtf8StringBytes)
        {
            return $"the user name is longer than MQTT allows ({MaxUtf8StringBytes} bytes)";
        }
        return null;
    }

    /// <summary>
    /// Writes beside the target and renames over it, so the broker (which reloads on change) never reads half a
    /// file. A new file is readable by its owner only; a replaced one keeps its permissions.
    /// </summary>
    internal static void WriteAtomically(string path, IReadOnlyList<string> lines)
    {
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full)!;
        string temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = File.Exists(full)
                ? File.GetUnixFileMode(full)
                : UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        try
        {
            using (var stream = new FileStream(temporary, options))
            using (var writer = new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)))
            {
                writer.NewLine = "\n";
                foreach (string line in lines)
                {
                    writer.WriteLine(line);
                }
                writer.Flush();
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    private static string? ReadConsoleWithoutEcho()
    {
        var text = new StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter)
            {
                Console.WriteLine();
                return text.ToString();
            }
            if (key.Key == ConsoleKey.Backspace)
            {
                if (text.Length > 0)
                {
                    text.Length--;
                }
            }
            else if (key.KeyChar != '\0')
            {
                text.Append(key.KeyChar);
            }
        }
    }

    private readonly record struct Arguments(string File, string User, bool Create, bool Delete, int Iterations);
}
