using Broker.Security;
using Xunit;

namespace Broker.Tests.Security;

public sealed class PasswdCommandTests
{
    private const string FastIterations = "1000";

    private static async Task<(int Exit, string Output, string Error)> Run(string stdin, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = await new PasswdCommand(new StringReader(stdin), output, error).RunAsync(args);
        return (exit, output.ToString(), error.ToString());
    }

    private static PasswordHash HashOf(string file, string user)
    {
        Assert.True(PasswordFile.Load(file).TryGetHash(user, out var hash), $"{user} not in the file");
        return hash!;
    }

    [Fact]
    public async Task Create_writes_a_pbkdf2_entry_readable_by_the_owner_only()
    {
        using var dir = new TempDirectory();
        string file = dir.File("pw");

        var (exit, output, _) = await Run("s3cret\ns3cret\n", "-c", file, "alice");

        Assert.Equal(0, exit);
        Assert.Contains("Added alice", output);
        var hash = HashOf(file, "alice");
        Assert.Equal(PasswordHash.DefaultIterations, hash.Iterations);
        Assert.True(hash.Verify("s3cret"u8));
        Assert.DoesNotContain("s3cret", File.ReadAllText(file));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }
        Assert.Single(Directory.GetFiles(dir.Path)); // no temporary file left behind
    }

    [Fact]
    public async Task Adding_and_replacing_keep_comments_and_other_users_in_place()
    {
        using var dir = new TempDirectory();
        string file = dir.Write("pw", $"# devices\nalice:{PasswordHashTests.Alice}\nbob:{PasswordHashTests.Bob}\n");

        Assert.Equal(0, (await Run("new\nnew\n", "--iterations", FastIterations, file, "carol")).Exit);
        var (exit, output, _) = await Run("changed\n", "-I", FastIterations, file, "alice");

        Assert.Equal(0, exit);
        Assert.Contains("Updated the password of alice", output);
        string[] lines = File.ReadAllLines(file);
        Assert.Equal("# devices", lines[0]);
        Assert.StartsWith("alice:$7$1000$", lines[1]);
        Assert.Equal($"bob:{PasswordHashTests.Bob}", lines[2]);
        Assert.StartsWith("carol:$7$1000$", lines[3]);
        Assert.True(HashOf(file, "alice").Verify("changed"u8));
        Assert.False(HashOf(file, "alice").Verify("correct horse"u8));
        Assert.True(HashOf(file, "carol").Verify("new"u8));
    }

    [Fact]
    public async Task A_piped_password_may_come_once_and_a_repetition_must_match()
    {
        using var dir = new TempDirectory();
        string file = dir.File("pw");

        Assert.Equal(0, (await Run("only-once", "-c", "-I", FastIterations, file, "a")).Exit);
        var mismatch = await Run("one\ntwo\n", "-I", FastIterations, file, "a");

        Assert.Equal(1, mismatch.Exit);
        Assert.Contains("do not match", mismatch.Error);
        Assert.True(HashOf(file, "a").Verify("only-once"u8));
    }

    [Fact]
    public async Task A_terminal_is_asked_twice_and_both_answers_must_match()
    {
        using var dir = new TempDirectory();
        string file = dir.File("pw");
        var answers = new Queue<string?>(["first", "first", "x", "y"]);
        var output = new StringWriter();
        var command = new PasswdCommand(TextReader.Null, output, TextWriter.Null, () => answers.Dequeue());

        Assert.Equal(0, await command.RunAsync(["-c", "-I", FastIterations, file, "a"]));
        Assert.Equal(1, await command.RunAsync(["-I", FastIterations, file, "a"]));

        Assert.Contains("Password: ", output.ToString());
        Assert.Contains("Reenter password: ", output.ToString());
        Assert.True(HashOf(file, "a").Verify("first"u8));
    }

    [Fact]
    public async Task Delete_removes_only_that_user_and_reports_an_unknown_one()
    {
        using var dir = new TempDirectory();
        string file = dir.Write("pw", $"alice:{PasswordHashTests.Alice}\nbob:{PasswordHashTests.Bob}\n");

        var deleted = await Run("", "-D", file, "alice");
        var unknown = await Run("", "-D", file, "zoe");

        Assert.Equal(0, deleted.Exit);
        Assert.Equal(["bob"], PasswordFile.Load(file).UserNames);
        Assert.Equal(1, unknown.Exit);
        Assert.Contains("zoe is not in", unknown.Error);
    }

    [Theory]
    [InlineData(new[] { "pw", "alice" }, "does not exist (use -c to create it)")]
    [InlineData(new[] { "-c", "-D", "pw", "alice" }, "-c and -D cannot be combined")]
    [InlineData(new[] { "pw" }, "Required argument 'USER' missing")]
    [InlineData(new[] { "-x", "pw", "alice" }, "unknown option -x")]
    [InlineData(new[] { "--iterations", "0", "pw", "alice" }, "--iterations needs a number")]
    [InlineData(new[] { "-c", "pw", "al:ice" }, "cannot contain ':'")]
    [InlineData(new[] { "-c", "pw", "#alice" }, "start with '#'")]
    public async Task Mistakes_are_reported_and_change_nothing(string[] args, string expected)
    {
        using var dir = new TempDirectory();
        string[] inDir = args.Select(a => a == "pw" ? dir.File("pw") : a).ToArray();

        var (exit, _, error) = await Run("pw\npw\n", inDir);

        Assert.NotEqual(0, exit);
        Assert.Contains(expected, error);
        Assert.False(File.Exists(dir.File("pw")));
    }

    [Fact]
    public async Task An_empty_password_is_refused()
    {
        using var dir = new TempDirectory();
        var (exit, _, error) = await Run("\n\n", "-c", dir.File("pw"), "alice");
        Assert.Equal(1, exit);
        Assert.Contains("empty password", error);
        Assert.False(File.Exists(dir.File("pw")));
    }

    [Fact]
    public async Task A_file_the_broker_could_not_load_is_not_edited()
    {
        using var dir = new TempDirectory();
        string file = dir.Write("pw", "alice:plaintext\n");

        var (exit, _, error) = await Run("pw\n", file, "bob");

        Assert.Equal(1, exit);
        Assert.Contains("line 1", error);
        Assert.Equal("alice:plaintext\n", File.ReadAllText(file));
    }

    [Fact]
    public async Task Replacing_keeps_the_permissions_of_an_existing_file()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "Unix permissions");
        using var dir = new TempDirectory();
        string file = dir.Write("pw", $"alice:{PasswordHashTests.Alice}\n");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);

        Assert.Equal(0, (await Run("x\n", "-I", FastIterations, file, "alice")).Exit);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(file));
    }

    [Fact]
    public async Task The_broker_command_line_runs_passwd_as_a_subcommand_and_lists_it_in_help()
    {
        using var dir = new TempDirectory();
        string file = dir.File("pw");
        var output = new StringWriter();
        var error = new StringWriter();
        var commandLine = new Broker.Hosting.BrokerCommandLine(output, error);
        commandLine.Add(new PasswdCommand(new StringReader("s3cret\n"), output, error).CreateCommand());

        Assert.Equal(0, await commandLine.RunAsync(["passwd", "-c", "--iterations", FastIterations, file, "alice"], TestContext.Current.CancellationToken));
        Assert.True(HashOf(file, "alice").Verify("s3cret"u8));
        Assert.Equal(2, await commandLine.RunAsync(["passwd", "-c", "-D", file, "alice"], TestContext.Current.CancellationToken));
        Assert.Contains("-c and -D cannot be combined", error.ToString());

        var help = new StringWriter();
        var helpLine = new Broker.Hosting.BrokerCommandLine(help, TextWriter.Null);
        helpLine.Add(new PasswdCommand(TextReader.Null, help, TextWriter.Null).CreateCommand());
        Assert.Equal(0, await helpLine.RunAsync(["--help"], TestContext.Current.CancellationToken));
        Assert.Contains("passwd", help.ToString());
        // The subcommand's own help, although FILE and USER are missing.
        var passwdHelp = new StringWriter();
        var passwdLine = new Broker.Hosting.BrokerCommandLine(passwdHelp, TextWriter.Null);
        passwdLine.Add(new PasswdCommand(TextReader.Null, passwdHelp, TextWriter.Null).CreateCommand());
        Assert.Equal(0, await passwdLine.RunAsync(["passwd", "--help"], TestContext.Current.CancellationToken));
        Assert.Contains("--iterations", passwdHelp.ToString());
    }
}
