using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Broker.Hosting;
using Broker.Tests.Security;
using Conformance.Infrastructure;
using Conformance.Operations;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Conformance.Security;

/// <summary>
/// The secured listeners with clients nobody here wrote: mosquitto_pub / mosquitto_sub over TLS with --cafile and a
/// password or a client certificate (Debian mosquitto-clients), MQTT.js over ws:// from Node, and MQTT.js in a
/// headless Chromium page (Debian chromium). .ci/run installs them; in CI a missing one fails its test.
/// </summary>
public sealed class RealClientSecurityTests : IDisposable
{
    private static readonly string MqttJs = RepositoryFiles.PathOf("tests/Conformance/Interop/mqttjs");
    private readonly TempDirectory _dir = new();
    private readonly System.Security.Cryptography.X509Certificates.X509Certificate2 _authority = TestCertificates.CreateAuthority("Interop CA");

    public void Dispose()
    {
        _authority.Dispose();
        _dir.Dispose();
    }

    /// <summary>TLS (server certificate for localhost from the test authority), a password file, optionally client certificates.</summary>
    private Dictionary<string, string?> SecuredSettings(bool clientCertificates = false)
    {
        using var server = TestCertificates.CreateLeaf(_authority, "CN=localhost", "server");
        var (certificate, key) = TestCertificates.WritePem(_dir, "server", server);
        var settings = new Dictionary<string, string?>
        {
            ["Broker:Auth:PasswordFile"] = SecurityKit.WritePasswordFile(_dir),
            ["Broker:Auth:AllowAnonymous"] = "false",
            ["Broker:Tls:Enabled"] = "true",
            ["Broker:Tls:Address"] = "127.0.0.1",
            ["Broker:Tls:Port"] = "0",
            ["Broker:Tls:CertificatePath"] = certificate,
            ["Broker:Tls:KeyPath"] = key,
            ["Broker:WebSocket:Enabled"] = "true",
            ["Broker:WebSocket:Address"] = "127.0.0.1",
            ["Broker:WebSocket:Port"] = "0",
        };
        if (clientCertificates)
        {
            settings["Broker:Tls:ClientCaPath"] = TestCertificates.WriteCertificatePem(_dir, "client-ca", _authority);
            settings["Broker:Auth:AclFile"] = _dir.Write("acl", "user device-7\ntopic readwrite dev/7/#\n");
        }
        return settings;
    }

    private string CaFile => TestCertificates.WriteCertificatePem(_dir, "ca", _authority);

    private static string TlsPort(BrokerInstance broker) => broker.Services.GetRequiredService<TlsServer>().LocalEndPoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string WebSocketUrl(BrokerInstance broker) => $"ws://127.0.0.1:{broker.Services.GetRequiredService<WebSocketServer>().PlainEndPoint!.Port}/mqtt";

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task Mosquitto_clients_publish_and_subscribe_over_TLS_with_cafile_and_a_password(string version)
    {
        string pub = ExternalTool.Require("mosquitto_pub", "mosquitto-clients");
        string sub = ExternalTool.Require("mosquitto_sub", "mosquitto-clients");
        await using var broker = await BrokerInstance.StartAsync(SecuredSettings());
        string[] tls = ["-h", "localhost", "-p", TlsPort(broker), "--cafile", CaFile, "-V", version];

        // Retained, so that the subscriber started afterwards reads it without a race.
        var published = await ExternalTool.RunAsync(pub, [.. tls, "-u", "alice", "-P", "alice-pw", "-i", $"pub-{version}", "-t", $"tls/{version}", "-m", "over tls", "-q", "1", "-r"]);
        Assert.True(published.ExitCode == 0, published.Output);
        var received = await ExternalTool.RunAsync(sub, [.. tls, "-u", "bob", "-P", "bob-pw", "-i", $"sub-{version}", "-t", "tls/#", "-C", "1", "-W", "10", "-v"]);
        Assert.True(received.ExitCode == 0, received.Output);
        Assert.Contains($"tls/{version} over tls", received.Output);

        // A wrong password is refused (0x04 / 0x86), and says so.
        var refused = await ExternalTool.RunAsync(pub, [.. tls, "-u", "alice", "-P", "not-hers", "-i", $"wrong-{version}", "-t", "tls/x", "-m", "x"]);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("name or password", refused.Output, StringComparison.OrdinalIgnoreCase);
        await broker.Logs.WaitForAsync(1100, $"wrong-{version}", SecurityKit.Wait);
    }

    [Fact]
    public async Task Mosquitto_clients_log_in_with_a_client_certificate()
    {
        string pub = ExternalTool.Require("mosquitto_pub", "mosquitto-clients");
        string sub = ExternalTool.Require("mosquitto_sub", "mosquitto-clients");
        await using var broker = await BrokerInstance.StartAsync(SecuredSettings(clientCertificates: true));
        using var device = TestCertificates.CreateLeaf(_authority, "CN=device-7", "client");
        var (certificate, key) = TestCertificates.WritePem(_dir, "device-7", device);
        string[] tls = ["-h", "localhost", "-p", TlsPort(broker), "--cafile", CaFile, "--cert", certificate, "--key", key, "-V", "mqttv5"];

        var published = await ExternalTool.RunAsync(pub, [.. tls, "-i", "device-7-pub", "-t", "dev/7/state", "-m", "on", "-q", "1", "-r"]);
        Assert.True(published.ExitCode == 0, published.Output);
        var received = await ExternalTool.RunAsync(sub, [.. tls, "-i", "device-7-sub", "-t", "dev/7/#", "-C", "1", "-W", "10", "-v"]);
        Assert.True(received.ExitCode == 0, received.Output);
        Assert.Contains("dev/7/state on", received.Output);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    public async Task MQTT_js_in_Node_round_trips_over_a_WebSocket(int level)
    {
        string node = ExternalTool.Require("node", "nodejs");
        RequireMqttJs();
        await using var broker = await BrokerInstance.StartAsync(SecuredSettings());

        var (exitCode, output) = await ExternalTool.RunInAsync(MqttJs, node, "websocket.js", WebSocketUrl(broker), level.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "alice", "alice-pw", $"node-{level}");

        Assert.True(exitCode == 0, output);
        using var result = JsonDocument.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries).First(l => l.StartsWith('{')));
        Assert.True(result.RootElement.GetProperty("ok").GetBoolean(), output);
        Assert.Equal($"js/node-{level}", result.RootElement.GetProperty("topic").GetString());
        Assert.Contains(broker.Logs.Messages(2), m => m.Contains($"Client node-{level} connected", StringComparison.Ordinal));
    }

    [Fact]
    public async Task MQTT_js_in_a_headless_Chromium_page_round_trips_over_a_WebSocket()
    {
        string chromium = ExternalTool.Require("chromium", "chromium");
        RequireMqttJs();
        await using var broker = await BrokerInstance.StartAsync(SecuredSettings());
        var result = new TaskCompletionSource<(string Status, string Detail)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var page = await ServePageAsync(result);
        string query = $"?url={Uri.EscapeDataString(WebSocketUrl(broker))}&level=5&username=alice&password=alice-pw&clientId=browser-5";
        string profile = Directory.CreateDirectory(Path.Combine(_dir.Path, "chromium-profile")).FullName;

        using var browser = ExternalTool.Start(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
            "--no-default-browser-check", $"--user-data-dir={profile}", $"http://127.0.0.1:{page.Port}/{query}");
        // Its console output is not needed, but the pipes must be drained.
        var stdout = browser.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = browser.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        try
        {
            var (status, detail) = await result.Task.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
            Assert.True(status == "ok", $"the page reported {status}: {detail}");
            Assert.StartsWith("browser/browser-5 hello from Mozilla/5.0", detail);
        }
        catch (TimeoutException)
        {
            browser.Kill(entireProcessTree: true);
            Assert.Fail($"no result from the page within 60 s; chromium said: {await stderr}");
        }
        finally
        {
            if (!browser.HasExited)
            {
                browser.Kill(entireProcessTree: true);
            }
            await browser.WaitForExitAsync(TestContext.Current.CancellationToken);
        }
        var connection = broker.Logs.Messages(2).Single(m => m.Contains("Client browser-5 connected", StringComparison.Ordinal));
        Assert.Contains("127.0.0.1", connection);
        _ = stdout;
    }

    private static void RequireMqttJs()
    {
        bool installed = File.Exists(Path.Combine(MqttJs, "node_modules", "mqtt", "dist", "mqtt.min.js"));
        Assert.SkipWhen(!installed && !ExternalTool.Required, $"MQTT.js is not installed: run npm ci in {MqttJs}");
        Assert.True(installed, $"MQTT.js is not installed in {MqttJs} (.ci/run runs npm ci there)");
    }

    /// <summary>The page (browser.html), MQTT.js's browser bundle from node_modules, and /result, on 127.0.0.1.</summary>
    private static async Task<PageServer> ServePageAsync(TaskCompletionSource<(string Status, string Detail)> result)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.MapGet("/", () => Results.Content(File.ReadAllText(Path.Combine(MqttJs, "browser.html")), "text/html"));
        app.MapGet("/mqtt.min.js", () => Results.File(Path.Combine(MqttJs, "node_modules", "mqtt", "dist", "mqtt.min.js"), "text/javascript"));
        app.MapGet("/result", (string status, string detail) =>
        {
            result.TrySetResult((status, detail));
            return Results.Ok();
        });
        await app.StartAsync(TestContext.Current.CancellationToken);
        var address = app.Urls.Single();
        return new PageServer(app, new Uri(address).Port);
    }

    private sealed record PageServer(WebApplication App, int Port) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => App.DisposeAsync();
    }
}
