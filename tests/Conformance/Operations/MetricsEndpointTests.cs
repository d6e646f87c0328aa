using System.Diagnostics;
using System.Net;
using Broker.Hosting;
using Broker.Protocol;
using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using Xunit;

namespace Conformance.Operations;

/// <summary>The Prometheus endpoint reports what happened on the MQTT socket, and the probes follow the listener.</summary>
[Collection(Conformance.Infrastructure.RealTimeCollection.Name)]
public sealed class MetricsEndpointTests
{
    [Fact]
    public async Task Keep_alive_timeout_is_counted_and_the_client_leaves_the_connected_gauge()
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var scraper = new MetricsScraper(broker);
        // The first scrape compiles the exporter and the process and runtime instrumentations (about a second on a
        // busy machine): done before the client's 1.5 s of silence start, so the gauge is read while it is connected.
        await scraper.ScrapeAsync();
        await using var raw = await RawClient.ConnectAsync(broker);

        var ack = await raw.HandshakeAsync(MqttProtocolVersion.V311, "metrics-silent", keepAlive: 1);
        // The client's last packet was the CONNECT: the silence starts there, not after the scrapes below
        // (a slow scrape used to eat most of the 1.5 s and the close looked early).
        var silence = Stopwatch.StartNew();
        Assert.Equal(0, ack.ReasonCode);
        await scraper.WaitUntilAsync(
            s => MetricsScraper.Value(s, "mqtt_clients_connected", ("protocol", "3.1.1")) == 1
                && MetricsScraper.Value(s, "mqtt_connect_attempts_total", ("result", "accepted")) == 1,
            "one 3.1.1 client connected and one accepted attempt");

        // Silence: [MQTT-3.1.2-24] the broker closes after 1.5 x 1 s without a packet.
        await raw.ReadUntilClosedAsync(MqttProtocolVersion.V311, TimeSpan.FromSeconds(5));
        Assert.InRange(silence.Elapsed, TimeSpan.FromSeconds(1.2), TimeSpan.FromSeconds(3));

        var samples = await scraper.WaitUntilAsync(
            s => MetricsScraper.Value(s, "mqtt_disconnects_total", ("cause", "keep_alive_timeout")) == 1
                && MetricsScraper.Value(s, "mqtt_clients_connected", ("protocol", "3.1.1")) == 0,
            "one keep_alive_timeout disconnect and no 3.1.1 client connected");
        Assert.Equal(1, MetricsScraper.Value(samples, "mqtt_keepalive_expiries_total"));
        Assert.Equal(1, MetricsScraper.Value(samples, "mqtt_keepalive_negotiated_seconds_count"));
        Assert.Equal(1, MetricsScraper.Value(samples, "mqtt_packets_received_total", ("type", "CONNECT")));
        Assert.Equal(1, MetricsScraper.Value(samples, "mqtt_packets_sent_total", ("type", "CONNACK")));
        Assert.True(MetricsScraper.Value(samples, "mqtt_network_received_bytes_total") > 0);
        Assert.Equal(0, MetricsScraper.Value(samples, "mqtt_disconnects_total", ("cause", "client_disconnect")));
    }

    [Fact]
    public async Task With_a_token_metrics_need_it_and_the_probes_do_not()
    {
        const string token = "scrape-token-0123456789";
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Metrics:Token"] = token });
        using var scraper = new MetricsScraper(broker);

        // Every spelling routing sends to the exporter needs the token (/metrics/ did not, once).
        foreach (var path in new[] { "metrics", "metrics/", "METRICS" })
        {
            using var anonymous = await scraper.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            Assert.Equal("Bearer", anonymous.Headers.WwwAuthenticate.Single().Scheme);
        }
        var endPoint = broker.Services.GetRequiredService<MetricsEndpoint>().LocalEndPoint!;
        using var http = new HttpClient { BaseAddress = new Uri($"http://{endPoint}/"), Timeout = TimeSpan.FromSeconds(20) };
        using (var wrong = new HttpRequestMessage(HttpMethod.Get, "metrics"))
        {
            wrong.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token + "x");
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(wrong, TestContext.Current.CancellationToken)).StatusCode);
        }
        using (var right = new HttpRequestMessage(HttpMethod.Get, "metrics"))
        {
            right.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            using var response = await http.SendAsync(right, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Contains("mqtt_clients_connected", await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        }
        foreach (var probe in new[] { "healthz", "readyz" })
        {
            using var response = await scraper.GetAsync(probe);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    [Fact]
    public async Task Health_and_readiness_answer_200_while_running_and_readiness_503_once_the_listener_stops()
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var scraper = new MetricsScraper(broker);

        using (var health = await scraper.GetAsync("healthz"))
        {
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        }
        using (var ready = await scraper.GetAsync("readyz"))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await broker.Services.GetRequiredService<BrokerServer>().StopAsync(stop.Token);

        using (var ready = await scraper.GetAsync("readyz"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        }
        using (var health = await scraper.GetAsync("healthz"))
        {
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        }
    }

    [Fact]
    public async Task Gauges_report_sessions_subscriptions_and_queued_messages()
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var scraper = new MetricsScraper(broker);
        await using var subscriber = await RawClient.ConnectAsync(broker);
        // A persistent session whose client never acknowledges: its QoS 1 messages stay in flight.
        await subscriber.HandshakeAsync(MqttProtocolVersion.V500, "metrics-sub", keepAlive: 60, cleanStart: false,
            properties: new MqttProperties { SessionExpiryInterval = 60, ReceiveMaximum = 1 });
        await subscriber.SendAsync(new SubscribePacket
        {
            PacketId = 1,
            Subscriptions = [new TopicSubscription("metrics/#", QualityOfService.AtLeastOnce)],
        }, MqttProtocolVersion.V500);
        Assert.IsType<SubAckPacket>(await subscriber.ReceiveAsync(MqttProtocolVersion.V500, TimeSpan.FromSeconds(5)));

        using var publisher = await MqttClients.ConnectAsync(broker, MQTTnet.Formatter.MqttProtocolVersion.V500);
        for (int i = 0; i < 3; i++)
        {
            await publisher.PublishStringAsync("metrics/a", "m" + i, MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce);
        }

        // Receive Maximum 1: one message in flight, two queued behind it.
        await scraper.WaitUntilAsync(
            s => MetricsScraper.Value(s, "mqtt_messages_pending", ("state", "inflight")) == 1
                && MetricsScraper.Value(s, "mqtt_messages_pending", ("state", "queued")) == 2
                && MetricsScraper.Value(s, "mqtt_sessions", ("state", "online")) == 2
                && MetricsScraper.Value(s, "mqtt_subscriptions") == 1
                && MetricsScraper.Value(s, "mqtt_messages_published_total", ("qos", "1")) == 3
                && MetricsScraper.Value(s, "mqtt_messages_delivered_total", ("qos", "1")) == 1,
            "1 inflight, 2 queued, 2 online sessions, 1 subscription, 3 published, 1 delivered");
    }

    [Fact]
    public async Task With_metrics_disabled_the_probes_are_still_served_and_metrics_are_not()
    {
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Metrics:Enabled"] = "false" });
        using var scraper = new MetricsScraper(broker);
        using (var health = await scraper.GetAsync("healthz"))
        {
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        }
        using (var ready = await scraper.GetAsync("readyz"))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }
        using var metrics = await scraper.GetAsync("metrics");
        Assert.Equal(HttpStatusCode.NotFound, metrics.StatusCode);
    }

    [Fact]
    public async Task Exporter_output_has_no_scope_labels_a_service_name_build_info_process_metrics_and_zero_series()
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var scraper = new MetricsScraper(broker);
        using var response = await scraper.GetAsync("metrics");
        string text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("otel_scope_name", text);
        Assert.Matches("target_info\\{[^}]*service_name=\"mqtt-broker\"", text);
        var samples = await scraper.ScrapeAsync();
        Assert.Equal(1, MetricsScraper.Value(samples, "mqtt_build_info"));
        Assert.Contains(samples, s => s.Name == "mqtt_build_info" && s.Labels.ContainsKey("version"));
        Assert.True(MetricsScraper.Value(samples, "process_memory_usage_bytes") > 0);
        Assert.Contains(samples, s => s.Name.StartsWith("dotnet_gc_", StringComparison.Ordinal));
        if (OperatingSystem.IsLinux())
        {
            Assert.True(MetricsScraper.Value(samples, "process_open_fds") > 0);
            Assert.True(MetricsScraper.Value(samples, "process_max_fds") >= MetricsScraper.Value(samples, "process_open_fds"));
        }
        // Before any event, every label value Prometheus rules refer to already has a series at 0.
        foreach (var cause in new[] { "keep_alive_timeout", "client_disconnect", "socket_error", "administrative_action" })
        {
            Assert.Contains(samples, s => s.Name == "mqtt_disconnects_total" && s.Labels.GetValueOrDefault("cause") == cause && s.Value == 0);
        }
        Assert.Contains(samples, s => s.Name == "mqtt_messages_dropped_total" && s.Labels.GetValueOrDefault("reason") == "queue_full");
        Assert.Contains(samples, s => s.Name == "mqtt_connect_attempts_total" && s.Labels.GetValueOrDefault("result") == "keep_alive_refused");
    }
}
