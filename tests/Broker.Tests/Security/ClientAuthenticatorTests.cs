using System.Net;
using System.Text;
using Broker.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Broker.Tests.Security;

public sealed class ClientAuthenticatorTests : IDisposable
{
    private static readonly IPAddress Remote = IPAddress.Parse("192.0.2.10");
    private static readonly IPAddress OtherRemote = IPAddress.Parse("192.0.2.99");

    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new();
    private readonly ListLogger<ClientAuthenticator> _log = new();
    private readonly List<ClientAuthenticator> _created = [];

    public void Dispose()
    {
        foreach (var authenticator in _created)
        {
            authenticator.Dispose();
        }
        _dir.Dispose();
    }

    /// <summary>A password file with cheap hashes (the iteration count is the file's, not the code's).</summary>
    private string PasswordFile(params (string User, string Password)[] users) =>
        _dir.Write("pw", string.Concat(users.Select(u => $"{u.User}:{PasswordHash.Create(Encoding.UTF8.GetBytes(u.Password), 1000).Encode()}\n")));

    private ClientAuthenticator Create(AuthOptions options)
    {
        var authenticator = new ClientAuthenticator(options, _time, _log, new SecurityMetrics(), watchFiles: false);
        _created.Add(authenticator);
        return authenticator;
    }

    private static AuthenticationRequest Request(IPAddress? address, string? user, string? password, string? certificateUser = null) =>
        new(address, "client-1", user, password is null ? null : Encoding.UTF8.GetBytes(password), certificateUser);

    [Theory]
    [InlineData("LoopbackOnly", "127.0.0.1", true)]
    [InlineData("LoopbackOnly", "127.8.9.10", true)]
    [InlineData("LoopbackOnly", "::1", true)]
    [InlineData("LoopbackOnly", "::ffff:127.0.0.1", true)]
    [InlineData("LoopbackOnly", "192.0.2.10", false)]
    [InlineData("LoopbackOnly", "2001:db8::1", false)]
    [InlineData("LoopbackOnly", null, false)]
    [InlineData("true", "192.0.2.10", true)]
    [InlineData("false", "127.0.0.1", false)]
    public async Task Anonymous_clients_follow_AllowAnonymous(string allow, string? address, bool accepted)
    {
        var authenticator = Create(new AuthOptions { AllowAnonymous = allow, PasswordFile = PasswordFile(("alice", "pw")) });

        var result = await authenticator.AuthenticateAsync(Request(address is null ? null : IPAddress.Parse(address), null, null));

        Assert.Equal(accepted ? AuthenticationOutcome.Accepted : AuthenticationOutcome.NotAuthorized, result.Outcome);
        Assert.Null(result.UserName);
    }

    [Fact]
    public async Task Without_a_password_file_a_user_name_is_not_trusted_and_the_client_is_anonymous()
    {
        var authenticator = Create(new AuthOptions { AllowAnonymous = "true" });
        var strict = Create(new AuthOptions());

        var accepted = await authenticator.AuthenticateAsync(Request(Remote, "admin", "anything"));
        var refused = await strict.AuthenticateAsync(Request(Remote, "admin", "anything"));

        Assert.Equal(AuthenticationOutcome.Accepted, accepted.Outcome);
        Assert.Null(accepted.UserName);
        Assert.Equal(AuthenticationOutcome.NotAuthorized, refused.Outcome);
    }

    [Fact]
    public async Task The_right_password_is_accepted_and_everything_else_is_bad_credentials()
    {
        var authenticator = Create(new AuthOptions { PasswordFile = PasswordFile(("alice", "correct"), ("bob", "other")) });

        var ok = await authenticator.AuthenticateAsync(Request(Remote, "alice", "correct"));
        var wrong = await authenticator.AuthenticateAsync(Request(OtherRemote, "alice", "Correct"));
        var othersPassword = await authenticator.AuthenticateAsync(Request(Remote, "alice", "other"));
        var unknown = await authenticator.AuthenticateAsync(Request(IPAddress.Loopback, "mallory", "correct"));
        var missing = await authenticator.AuthenticateAsync(Request(IPAddress.Parse("192.0.2.50"), "alice", null));

        Assert.Equal(new AuthenticationResult(AuthenticationOutcome.Accepted, "alice", ClientAuthenticator.ReasonPassword), ok);
        Assert.All([wrong, othersPassword, unknown, missing], r => Assert.Equal(AuthenticationOutcome.BadCredentials, r.Outcome));
        Assert.All([wrong, othersPassword, unknown, missing], r => Assert.Null(r.UserName));
    }

    [Fact]
    public async Task Refusals_are_logged_with_address_and_client_id_but_never_the_password()
    {
        var authenticator = Create(new AuthOptions { PasswordFile = PasswordFile(("alice", "correct")) });

        await authenticator.AuthenticateAsync(Request(Remote, "alice", "hunter2-guess"));

        var entry = Assert.Single(_log.Entries, e => e.Id.Id == 1100);
        Assert.Contains("client-1", entry.Message);
        Assert.Contains("192.0.2.10", entry.Message);
        Assert.DoesNotContain("hunter2", _log.All);
    }

    [Fact]
    public async Task A_repeated_valid_login_is_answered_from_the_cache_synchronously()
    {
        var authenticator = Create(new AuthOptions { PasswordFile = PasswordFile(("alice", "correct")) });
        Assert.True((await authenticator.AuthenticateAsync(Request(Remote, "alice", "correct"))).IsAccepted);

        var again = authenticator.AuthenticateAsync(Request(Remote, "alice", "correct"));
        var wrong = authenticator.AuthenticateAsync(Request(Remote, "alice", "incorrect"));

        Assert.True(again.IsCompletedSuccessfully);
        Assert.Equal("alice", again.Result.UserName);
        Assert.Equal(AuthenticationOutcome.BadCredentials, (await wrong).Outcome);
    }

    [Fact]
    public async Task A_changed_password_file_takes_effect_and_invalidates_cached_logins()
    {
        string file = PasswordFile(("alice", "old"));
        var authenticator = Create(new AuthOptions { PasswordFile = file });
        Assert.True((await authenticator.AuthenticateAsync(Request(Remote, "alice", "old"))).IsAccepted);

        File.WriteAllText(file, $"alice:{PasswordHash.Create("new"u8, 1000).Encode()}\n");
        File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddMinutes(1));
        Assert.True(authenticator.ReloadIfChanged());

        Assert.Equal(AuthenticationOutcome.BadCredentials, (await authenticator.AuthenticateAsync(Request(Remote, "alice", "old"))).Outcome);
        Assert.True((await authenticator.AuthenticateAsync(Request(OtherRemote, "alice", "new"))).IsAccepted);
    }

    [Fact]
    public async Task A_broken_password_file_change_keeps_the_previous_users()
    {
        string file = PasswordFile(("alice", "pw"));
        var authenticator = Create(new AuthOptions { PasswordFile = file });

        File.WriteAllText(file, "alice:plaintext\n");
        File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddMinutes(1));

        Assert.False(authenticator.ReloadIfChanged());
        Assert.True((await authenticator.AuthenticateAsync(Request(Remote, "alice", "pw"))).IsAccepted);
        Assert.Contains(_log.Entries, e => e.Level == LogLevel.Error && e.Message.Contains("line 1"));
    }

    [Fact]
    public async Task Changes_are_noticed_at_connects_once_the_check_interval_has_passed()
    {
        string file = PasswordFile(("alice", "old"));
        var authenticator = Create(new AuthOptions { PasswordFile = file });
        File.WriteAllText(file, $"alice:{PasswordHash.Create("new"u8, 1000).Encode()}\n");
        File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddMinutes(1));

        Assert.True((await authenticator.AuthenticateAsync(Request(Remote, "alice", "old"))).IsAccepted);
        _time.Advance(TimeSpan.FromSeconds(1));
        // The connect that finds the check due is decided with the file in force: the check (a stat, and a reload
        // here) runs on the thread pool, never on the connect's socket thread.
        Assert.True((await authenticator.AuthenticateAsync(Request(Remote, "alice", "old"))).IsAccepted);
        using var bounded = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while ((await authenticator.AuthenticateAsync(Request(Remote, "alice", "old"))).IsAccepted)
        {
            await Task.Delay(10, bounded.Token);
        }
        Assert.True((await authenticator.AuthenticateAsync(Request(OtherRemote, "alice", "new"))).IsAccepted);
    }

    [Fact]
    public async Task Failures_from_one_address_delay_its_next_attempts_but_not_other_addresses()
    {
        var authenticator = Create(new AuthOptions { PasswordFile = PasswordFile(("alice", "pw")), FailureDelayMilliseconds = 100, MaxFailureDelaySeconds = 1 });
        Assert.False((await authenticator.AuthenticateAsync(Request(Remote, "alice", "guess"))).IsAccepted);
        for (int i = 0; i < 2; i++)
        {
            // Each further guess waits for the delay the previous failures earned (100 ms, then 200 ms).
            var guess = authenticator.AuthenticateAsync(Request(Remote, "alice", "guess")).AsTask();
            _time.Advance(authenticator.Throttle.DelayFor(Remote));
            Assert.False((await guess.WaitAsync(TimeSpan.FromSeconds(10))).IsAccepted);
        }
        // Three failures: the next attempt waits 100 ms x 2^2 = 400 ms before it is even verified.
        Assert.Equal(TimeSpan.FromMilliseconds(400), authenticator.Throttle.DelayFor(Remote));

        var delayed = authenticator.AuthenticateAsync(Request(Remote, "alice", "pw")).AsTask();
        var elsewhere = await authenticator.AuthenticateAsync(Request(OtherRemote, "alice", "pw"));
        Assert.True(elsewhere.IsAccepted);
        Assert.False(delayed.IsCompleted);

        _time.Advance(TimeSpan.FromMilliseconds(399));
        Assert.False(delayed.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True((await delayed.WaitAsync(TimeSpan.FromSeconds(10))).IsAccepted);
    }

    [Fact]
    public async Task Waiting_for_the_slow_down_ends_when_the_connection_goes_away()
    {
        var authenticator = Create(new AuthOptions { PasswordFile = PasswordFile(("alice", "pw")) });
        await authenticator.AuthenticateAsync(Request(Remote, "alice", "guess"));
        using var cts = new CancellationTokenSource();

        var pending = authenticator.AuthenticateAsync(Request(Remote, "alice", "pw"), cts.Token).AsTask();
        cts.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
    }

    [Fact]
    public async Task A_validated_client_certificate_is_the_user_name_whatever_the_connect_says()
    {
        var authenticator = Create(new AuthOptions { AllowAnonymous = "false", PasswordFile = PasswordFile(("alice", "pw")) });

        var result = await authenticator.AuthenticateAsync(Request(Remote, "alice", "wrong", certificateUser: "sensor-17"));

        Assert.Equal(AuthenticationOutcome.Accepted, result.Outcome);
        Assert.Equal("sensor-17", result.UserName);
    }

    [Theory]
    [InlineData(true, "alice", "alice", true)]
    [InlineData(true, "alice", "bob", false)]
    [InlineData(true, "alice", null, false)]
    [InlineData(true, null, "alice", false)]
    [InlineData(true, null, null, true)]
    [InlineData(false, "alice", "bob", true)]
    public void Takeover_requires_the_same_user_unless_configured_otherwise(bool sameUserOnly, string? owner, string? newUser, bool allowed)
    {
        var authenticator = Create(new AuthOptions { TakeoverRequiresSameUser = sameUserOnly });
        Assert.Equal(allowed, authenticator.MayTakeOver(owner, newUser));
    }

    [Theory]
    [InlineData("Accepted", 0x00, 0x00)]
    [InlineData("BadCredentials", 0x04, 0x86)]
    [InlineData("NotAuthorized", 0x05, 0x87)]
    public void Outcomes_map_to_connack_codes_of_both_versions(string outcome, byte v311, byte v5)
    {
        var result = new AuthenticationResult(Enum.Parse<AuthenticationOutcome>(outcome), null, "");
        Assert.Equal(v311, (byte)result.ReturnCode);
        Assert.Equal(v5, (byte)result.ReasonCode);
    }
}
