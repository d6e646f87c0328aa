using Broker.Hosting;
using Broker.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Broker.Tests.Security;

public sealed class SecurityOptionsTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static T Bind<T>(string section, params (string Key, string? Value)[] pairs) where T : new() =>
        new ConfigurationBuilder()
            .AddInMemoryCollection(pairs.Select(p => new KeyValuePair<string, string?>(section + ":" + p.Key, p.Value)))
            .Build().GetSection(section).Get<T>() ?? new T();

    [Fact]
    public void Defaults_are_valid_and_safe()
    {
        var auth = new AuthOptions();
        Assert.True(new AuthOptionsValidator().Validate(null, auth).Succeeded);
        Assert.True(new TlsOptionsValidator().Validate(null, new TlsOptions()).Succeeded);
        Assert.Equal(AnonymousAccess.LoopbackOnly, auth.Anonymous);
        Assert.True(auth.TakeoverRequiresSameUser);
        Assert.False(new TlsOptions().Enabled);
        Assert.Equal(8883, new TlsOptions().Port);
    }

    [Theory]
    [InlineData("LoopbackOnly", "LoopbackOnly")]
    [InlineData("loopbackonly", "LoopbackOnly")]
    [InlineData("true", "Allowed")]
    [InlineData("True", "Allowed")]
    [InlineData("false", "Refused")]
    public void AllowAnonymous_accepts_LoopbackOnly_true_and_false(string value, string expected)
    {
        var options = Bind<AuthOptions>(AuthOptions.SectionName, ("AllowAnonymous", value));
        Assert.True(new AuthOptionsValidator().Validate(null, options).Succeeded);
        Assert.Equal(Enum.Parse<AnonymousAccess>(expected), options.Anonymous);
    }

    [Fact]
    public void The_repository_appsettings_names_only_known_keys_with_the_safe_defaults()
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "appsettings.json")) || !Directory.Exists(Path.Combine(root, "src")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("repository root not found");
        }
        var configuration = new ConfigurationBuilder().AddJsonFile(Path.Combine(root, "appsettings.json")).Build();

        Assert.Empty(ConfigurationKeyCheck.FindUnknownKeys(configuration));
        var auth = configuration.GetSection(AuthOptions.SectionName).Get<AuthOptions>()!;
        var tls = configuration.GetSection(TlsOptions.SectionName).Get<TlsOptions>()!;
        Assert.Equal(new AuthOptions(), auth);
        Assert.Equal(new TlsOptions(), tls);
    }

    [Fact]
    public void A_misspelt_security_key_is_refused_by_name()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([
            new("Broker:Auth:AllowAnonymus", "true"), new("Broker:Tls:CertPath", "x"), new("Broker:Auth:AclFile", "acl")]).Build();
        var problems = ConfigurationKeyCheck.FindUnknownKeys(configuration);
        Assert.Equal(2, problems.Count);
        Assert.Contains(problems, p => p.StartsWith("Broker:Auth:AllowAnonymus is not a known setting", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Broker:Tls:CertPath is not a known setting", StringComparison.Ordinal));
    }

    [Fact]
    public void Auth_validation_names_the_key_and_the_broken_line()
    {
        string badPasswords = _dir.Write("pw", "alice:plaintext\n");
        string badAcl = _dir.Write("acl", "topic read a\nuser\n");
        var options = new AuthOptions
        {
            AllowAnonymous = "maybe",
            PasswordFile = badPasswords,
            AclFile = badAcl,
            FailureDelayMilliseconds = -1,
            VerificationCacheSize = -1,
        };

        var failures = new AuthOptionsValidator().Validate(null, options).Failures!.ToList();

        Assert.Contains("Broker:Auth:AllowAnonymous must be LoopbackOnly, true or false (was 'maybe')", failures);
        Assert.Contains(failures, f => f.StartsWith($"Broker:Auth:PasswordFile: {badPasswords} line 1:", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith($"Broker:Auth:AclFile: {badAcl} line 2:", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Broker:Auth:FailureDelayMilliseconds", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Broker:Auth:VerificationCacheSize", StringComparison.Ordinal));
        Assert.DoesNotContain(failures, f => f.Contains("plaintext"));
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        var failures = new AuthOptionsValidator().Validate(null, new AuthOptions { PasswordFile = _dir.File("missing") }).Failures!;
        Assert.StartsWith("Broker:Auth:PasswordFile cannot be read:", Assert.Single(failures));
    }

    [Theory]
    [InlineData(new string[0], "Broker:Tls:Enabled needs Broker:Tls:CertificatePath and Broker:Tls:KeyPath (PEM) or Broker:Tls:PfxPath")]
    [InlineData(new[] { "CertificatePath=a.crt" }, "Broker:Tls:CertificatePath and Broker:Tls:KeyPath must be set together")]
    [InlineData(new[] { "CertificatePath=a.crt", "KeyPath=a.key", "PfxPath=a.pfx" }, "Broker:Tls:PfxPath and Broker:Tls:CertificatePath/KeyPath cannot both be set")]
    [InlineData(new[] { "PfxPath=a.pfx", "RequireClientCertificate=true" }, "Broker:Tls:RequireClientCertificate needs Broker:Tls:ClientCaPath")]
    [InlineData(new[] { "PfxPath=missing.pfx" }, "Broker:Tls:PfxPath: cannot load")]
    [InlineData(new[] { "CertificatePath=missing.crt", "KeyPath=missing.key" }, "Broker:Tls:CertificatePath/KeyPath: cannot load")]
    [InlineData(new[] { "PfxPath=a.pfx", "Port=70000" }, "Broker:Tls:Port must be between 0 and 65535 (was 70000)")]
    public void Tls_validation_names_the_key(string[] settings, string expected)
    {
        var pairs = settings.Select(s => s.Split('=')).Select(p => (p[0], (string?)p[1])).Append(("Enabled", "true")).ToArray();
        var options = Bind<TlsOptions>(TlsOptions.SectionName, pairs);

        var failures = new TlsOptionsValidator().Validate(null, options).Failures!;

        Assert.Contains(failures, f => f.StartsWith(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("true", "0.0.0.0", null, 1101)]
    [InlineData("true", "127.0.0.1", null, null)]
    [InlineData("LoopbackOnly", "0.0.0.0", null, 1102)]
    [InlineData("LoopbackOnly", "::", "pw", null)]
    [InlineData("false", "0.0.0.0", null, null)]
    public void Start_up_warns_when_anonymous_access_is_open_to_the_network(string anonymous, string address, string? passwordFile, int? expectedEvent)
    {
        string? file = passwordFile is null ? null : _dir.Write(passwordFile, $"alice:{PasswordHashTests.Alice}\n");
        var options = new AuthOptions { AllowAnonymous = anonymous, PasswordFile = file };
        var time = new FakeTimeProvider();
        using var authenticator = new ClientAuthenticator(options, time, new ListLogger<ClientAuthenticator>(), new SecurityMetrics(), watchFiles: false);
        using var authorizer = new TopicAuthorizer(options, time, new ListLogger<TopicAuthorizer>(), new SecurityMetrics(), watchFiles: false);
        var log = new ListLogger<SecurityStartupReport>();

        new SecurityStartupReport(options, authenticator, authorizer, false, [new ListenerAddress("MQTT", address)], log).Report();

        Assert.Contains(log.Entries, e => e.Id.Id == 1103 && e.Level == LogLevel.Information);
        var hints = log.Entries.Where(e => e.Id.Id is 1101 or 1102).Select(e => e.Id.Id).ToList();
        Assert.Equal(expectedEvent is null ? [] : [expectedEvent.Value], hints);
        if (expectedEvent == 1101)
        {
            Assert.Contains(log.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("MQTT listener at 0.0.0.0"));
        }
    }
}
