using System.Net;
using System.Net.Sockets;
using System.Text;
using Broker.Security;
using Xunit;

namespace Broker.Tests.Security;

/// <summary>
/// Both directions with the real tools (Debian's mosquitto package; .ci/run installs it, elsewhere these skip):
/// files written by mosquitto_passwd verify here, and files written by our passwd command verify in the real
/// Mosquitto broker, including our higher iteration count.
/// </summary>
public sealed class MosquittoPasswdCompatibilityTests
{
    [Fact]
    public async Task Files_written_by_mosquitto_passwd_verify_in_both_hash_formats()
    {
        string tool = ExternalTool.Require("mosquitto_passwd", "mosquitto");
        using var dir = new TempDirectory();
        string file = dir.File("pw");

        Assert.Equal(0, (await ExternalTool.RunAsync(tool, "-c", "-b", file, "alice", "correct horse")).ExitCode);
        Assert.Equal(0, (await ExternalTool.RunAsync(tool, "-H", "sha512", "-b", file, "bob", "s3cret")).ExitCode);
        Assert.Equal(0, (await ExternalTool.RunAsync(tool, "-b", file, "carol", "pässwörd")).ExitCode);

        var loaded = PasswordFile.Load(file);
        Assert.True(loaded.TryGetHash("alice", out var alice));
        Assert.Equal(PasswordHashKind.Sha512Pbkdf2, alice!.Kind);
        Assert.True(alice.Verify("correct horse"u8));
        Assert.False(alice.Verify("correct horse!"u8));
        Assert.True(loaded.TryGetHash("bob", out var bob));
        Assert.Equal(PasswordHashKind.Sha512, bob!.Kind);
        Assert.True(bob.Verify("s3cret"u8));
        Assert.True(loaded.TryGetHash("carol", out var carol));
        Assert.True(carol!.Verify(Encoding.UTF8.GetBytes("pässwörd")));
    }

    [Fact]
    public async Task Mosquitto_passwd_edits_a_file_written_by_our_passwd_command_and_keeps_our_entries()
    {
        string tool = ExternalTool.Require("mosquitto_passwd", "mosquitto");
        using var dir = new TempDirectory();
        string file = dir.File("pw");
        Assert.Equal(0, await Passwd(["-c", "--iterations", "2000", file, "ours"], "pw-ours\npw-ours\n"));
        Assert.Equal(0, await Passwd(["--iterations", "2000", file, "gone"], "x\n"));

        Assert.Equal(0, (await ExternalTool.RunAsync(tool, "-b", file, "theirs", "pw-theirs")).ExitCode);
        Assert.Equal(0, (await ExternalTool.RunAsync(tool, "-D", file, "gone")).ExitCode);

        var loaded = PasswordFile.Load(file);
        Assert.Equal(["ours", "theirs"], loaded.UserNames.Order());
        Assert.True(loaded.TryGetHash("ours", out var ours));
        Assert.Equal(2000, ours!.Iterations);
        Assert.True(ours.Verify("pw-ours"u8));
        Assert.True(loaded.TryGetHash("theirs", out var theirs));
        Assert.True(theirs!.Verify("pw-theirs"u8));
    }

    [Fact]
    public async Task The_mosquitto_broker_accepts_our_hash_with_the_default_iteration_count_and_refuses_a_wrong_password()
    {
        string broker = ExternalTool.Require("mosquitto", "mosquitto");
        string pub = ExternalTool.Require("mosquitto_pub", "mosquitto-clients");
        using var dir = new TempDirectory();
        string file = dir.File("pw");
        Assert.Equal(0, await Passwd(["-c", file, "device-1"], "Very secret 1\n"));
        Assert.Contains($"$7${PasswordHash.DefaultIterations}$", File.ReadAllText(file));

        await using var mosquitto = await MosquittoBroker.StartAsync(broker, dir, file);

        var good = await ExternalTool.RunAsync(pub, "-h", "127.0.0.1", "-p", mosquitto.Port.ToString(), "-u", "device-1", "-P", "Very secret 1", "-t", "t", "-m", "m");
        var bad = await ExternalTool.RunAsync(pub, "-h", "127.0.0.1", "-p", mosquitto.Port.ToString(), "-u", "device-1", "-P", "Very secret 2", "-t", "t", "-m", "m");

        Assert.True(good.ExitCode == 0, good.Output + "\n" + mosquitto.Log);
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("refused", bad.Output, StringComparison.OrdinalIgnoreCase);
    }

    private static Task<int> Passwd(string[] args, string stdin) =>
        new PasswdCommand(new StringReader(stdin), TextWriter.Null, TextWriter.Null).RunAsync(args);

    /// <summary>A real Mosquitto on a free loopback port with our password file, stopped on dispose.</summary>
    private sealed class MosquittoBroker : IAsyncDisposable
    {
        private readonly System.Diagnostics.Process _process;
        private readonly StringBuilder _log;

        private MosquittoBroker(System.Diagnostics.Process process, int port, StringBuilder log)
        {
            _process = process;
            Port = port;
            _log = log;
        }

        public int Port { get; }

        public string Log
        {
            get
            {
                lock (_log)
                {
                    return _log.ToString();
                }
            }
        }

        public static async Task<MosquittoBroker> StartAsync(string broker, TempDirectory dir, string passwordFile)
        {
            // Mosquitto cannot report an ephemeral port, so take one the kernel just handed out; retry if it is
            // taken again before Mosquitto binds it.
            for (int attempt = 1; ; attempt++)
            {
                int port = FreeLoopbackPort();
                // "user root": started as root (CI), Mosquitto would switch to its own user, which cannot read the
                // test's private directory; as any other user the line has no effect.
                string config = dir.Write($"mosquitto-{attempt}.conf",
                    $"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwordFile}\nlog_dest stderr\npersistence false\nuser root\n");
                var process = ExternalTool.Start(broker, "-c", config);
                var log = new StringBuilder();
                var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                process.OutputDataReceived += (_, e) => Collect(e.Data);
                process.ErrorDataReceived += (_, e) => Collect(e.Data);
                process.EnableRaisingEvents = true;
                process.Exited += (_, _) => ready.TrySetException(new InvalidOperationException("mosquitto exited"));
                process.BeginOutputReadLine();
                process.BeginErrorReadLine();

                void Collect(string? line)
                {
                    if (line is null)
                    {
                        return;
                    }
                    lock (log)
                    {
                        log.AppendLine(line);
                    }
                    if (line.Contains(" running", StringComparison.Ordinal))
                    {
                        ready.TrySetResult();
                    }
                }

                try
                {
                    await ready.Task.WaitAsync(ExternalTool.Timeout);
                    return new MosquittoBroker(process, port, log);
                }
                catch (InvalidOperationException) when (attempt < 3)
                {
                    process.Dispose();
                }
                catch (InvalidOperationException ex)
                {
                    throw new InvalidOperationException("mosquitto did not start:\n" + log, ex);
                }
            }
        }

        private static int FreeLoopbackPort()
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            return ((IPEndPoint)socket.LocalEndPoint!).Port;
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                using var cts = new CancellationTokenSource(ExternalTool.Timeout);
                await _process.WaitForExitAsync(cts.Token);
            }
            _process.Dispose();
        }
    }
}
