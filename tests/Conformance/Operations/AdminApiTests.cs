using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Broker.Hosting;
using Broker.Protocol;
using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using static Conformance.Infrastructure.TestClients;

namespace Conformance.Operations;

/// <summary>GET /api/clients, GET /api/clients/{id}, DELETE (or POST .../disconnect) on the metrics listener.</summary>
public sealed class AdminApiTests
{
    private const string Token = "test-token-0123456789";

    private static HttpClient Http(BrokerInstance broker)
    {
        var endPoint = broker.Services.GetRequiredService<MetricsEndpoint>().LocalEndPoint!;
        return new HttpClient { BaseAddress = new Uri($"http://{endPoint}/"), Timeout = TimeSpan.FromSeconds(5) };
    }

    private static async Task<JsonElement> JsonAsync(HttpResponseMessage response)
    {
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    [Fact]
    public async Task Lists_and_shows_connected_clients_with_address_protocol_keep_alive_activity_and_queues()
    {
        // The user name shown is the authenticated one: alice must be in a password file.
        using var dir = new Broker.Tests.Security.TempDirectory();
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Auth:PasswordFile"] = Conformance.Security.SecurityKit.WritePasswordFile(dir, ("alice", "secret")),
        });
        using var http = Http(broker);
        using var v5 = await MqttClients.ConnectAsync(broker, V500, "admin-a",
            o => o.WithKeepAlivePeriod(TimeSpan.FromSeconds(30)).WithCredentials("alice", "secret"));
        await using var v3 = await RawConnectedAsync(broker, MqttProtocolVersion.V311, "admin-b");

        var list = await JsonAsync(await http.GetAsync("api/clients"));
        Assert.Equal(2, list.GetProperty("total").GetInt32());
        var ids = list.GetProperty("clients").EnumerateArray().Select(c => c.GetProperty("clientId").GetString()).ToList();
        Assert.Equal(["admin-a", "admin-b"], ids);

        var a = await JsonAsync(await http.GetAsync("api/clients/admin-a"));
        Assert.Equal("5.0", a.GetProperty("protocol").GetString());
        Assert.Equal(30, a.GetProperty("keepAlive").GetInt32());
        Assert.Equal("alice", a.GetProperty("userName").GetString());
        Assert.StartsWith("127.0.0.1:", a.GetProperty("remoteAddress").GetString());
        Assert.Equal("tcp", a.GetProperty("listener").GetString());
        Assert.Equal(0, a.GetProperty("queued").GetInt32());
        Assert.Equal(0, a.GetProperty("inflight").GetInt32());
        var connectedAt = a.GetProperty("connectedAt").GetDateTimeOffset();
        Assert.InRange(DateTimeOffset.UtcNow - connectedAt, TimeSpan.FromSeconds(-5), TimeSpan.FromMinutes(1));
        Assert.True(a.GetProperty("lastActivity").GetDateTimeOffset() >= connectedAt.AddSeconds(-1));

        var b = await JsonAsync(await http.GetAsync("api/clients/admin-b"));
        Assert.Equal("3.1.1", b.GetProperty("protocol").GetString());
        Assert.Equal(60, b.GetProperty("keepAlive").GetInt32());

        using var missing = await http.GetAsync("api/clients/nobody");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);

        var limited = await JsonAsync(await http.GetAsync("api/clients?limit=1"));
        Assert.Equal(2, limited.GetProperty("total").GetInt32());
        Assert.Single(limited.GetProperty("clients").EnumerateArray());
    }

    [Fact]
    public async Task Disconnect_ends_the_connection_and_a_5_0_client_learns_administrative_action()
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var http = Http(broker);
        await using var v5 = await RawConnectedAsync(broker, MqttProtocolVersion.V500, "admin-v5");
        await using var v3 = await RawConnectedAsync(broker, MqttProtocolVersion.V311, "site/7/dev");

        using (var deleted = await http.DeleteAsync("api/clients/admin-v5"))
        {
            Assert.Equal(HttpStatusCode.Accepted, deleted.StatusCode);
        }
        var disconnect = await v5.ExpectAsync<DisconnectPacket>(MqttProtocolVersion.V500);
        Assert.Equal(ReasonCode.AdministrativeAction, disconnect.ReasonCode);

        // A client identifier with slashes, percent-encoded or not, through the POST form.
        using (var posted = await http.PostAsync("api/clients/site%2F7%2Fdev/disconnect", null))
        {
            Assert.Equal(HttpStatusCode.Accepted, posted.StatusCode);
        }
        var rest = await v3.ReadUntilClosedAsync(MqttProtocolVersion.V311, TimeSpan.FromSeconds(5));
        Assert.Empty(rest);

        using var scraper = new MetricsScraper(broker);
        await scraper.WaitUntilAsync(s => MetricsScraper.Value(s, "mqtt_disconnects_total", ("cause", "administrative_action")) == 2,
            "two disconnects with cause administrative_action");
        using var gone = await http.GetAsync("api/clients/admin-v5");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        using var again = await http.DeleteAsync("api/clients/admin-v5");
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        await broker.Logs.WaitForAsync(33, "admin-v5", TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task With_a_token_configured_every_request_must_present_it()
    {
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Admin:Token"] = Token });
        using var http = Http(broker);

        using (var none = await http.GetAsync("api/clients"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        }
        using (var wrong = new HttpRequestMessage(HttpMethod.Get, "api/clients"))
        {
            wrong.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token + "x");
            using var response = await http.SendAsync(wrong);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }
        using var right = new HttpRequestMessage(HttpMethod.Get, "api/clients");
        right.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        Assert.Equal(0, (await JsonAsync(await http.SendAsync(right))).GetProperty("total").GetInt32());

        // The probes never need the token.
        using var health = await http.GetAsync("healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task Disabled_admin_api_is_not_served()
    {
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Admin:Enabled"] = "false" });
        using var http = Http(broker);
        using var response = await http.GetAsync("api/clients");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }
}
