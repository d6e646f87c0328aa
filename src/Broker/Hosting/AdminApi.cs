using System.Net;
using System.Text;
using System.Text.Json.Serialization;
using Broker.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Broker.Hosting;

/// <summary>
/// The admin HTTP API on the metrics listener: list the connected clients, show one, disconnect one. Built only on
/// <see cref="IClientDirectory"/>. Without <c>Broker:Admin:Token</c> only loopback callers are served, because the
/// metrics listener commonly faces a network for Prometheus; with a token, every caller must present it.
/// </summary>
internal sealed class AdminApi
{
    public const int DefaultLimit = 1000;

    public static void Map(WebApplication app, IClientDirectory clients, AdminOptions options, ILogger<AdminApi> logger)
    {
        byte[]? token = options.Token is { } t ? Encoding.UTF8.GetBytes(t) : null;
        var api = app.MapGroup("/api").AddEndpointFilter(async (context, next) =>
            Authorize(context.HttpContext, token) is { } refusal ? refusal : await next(context).ConfigureAwait(false));

        // ?limit=N (default 1000, sorted by client id) keeps one request bounded at fleet size; total says how many there are.
        api.MapGet("/clients", (int? limit, string? prefix) =>
        {
            var all = clients.List();
            var selected = (prefix is null ? all : all.Where(c => c.ClientId.StartsWith(prefix, StringComparison.Ordinal)))
                .OrderBy(c => c.ClientId, StringComparer.Ordinal)
                .Take(Math.Max(0, limit ?? DefaultLimit))
                .ToList();
            return Results.Ok(new ClientList(all.Count, selected));
        });
        // Client identifiers may contain '/': the rest of the path is the identifier (percent-encoded or not).
        api.MapGet("/clients/{**clientId}", (string clientId) =>
            clients.Find(Uri.UnescapeDataString(clientId)) is { } client ? Results.Ok(client) : NotConnected(clientId));
        api.MapDelete("/clients/{**clientId}", (string clientId, HttpContext http) => Disconnect(Uri.UnescapeDataString(clientId), http));
        api.MapPost("/clients/{**path}", (string path, HttpContext http) =>
            path.EndsWith("/disconnect", StringComparison.Ordinal)
                ? Disconnect(Uri.UnescapeDataString(path[..^"/disconnect".Length]), http)
                : Results.NotFound(new AdminError("POST /api/clients/{id}/disconnect is the only POST")));

        IResult Disconnect(string clientId, HttpContext http)
        {
            string remote = http.Connection.RemoteIpAddress?.ToString() ?? "unknown";
            if (!clients.Disconnect(clientId, $"disconnected by an operator (admin API, {remote})"))
            {
                return NotConnected(clientId);
            }
            BrokerLog.AdminDisconnect(logger, LogText.Escape(clientId), remote);
            return Results.Accepted(value: new DisconnectResult(clientId, "disconnecting"));
        }
    }

    private static IResult NotConnected(string clientId)
        => Results.NotFound(new AdminError($"no connected client '{Uri.UnescapeDataString(clientId)}'"));

    private static IResult? Authorize(HttpContext http, byte[]? token)
    {
        if (token is null)
        {
            var remote = http.Connection.RemoteIpAddress;
            return remote is not null && IPAddress.IsLoopback(remote)
                ? null
                : Results.Json(new AdminError("the admin API answers loopback callers only; set Broker:Admin:Token to use it from elsewhere"),
                    AdminJsonContext.Default.AdminError, statusCode: StatusCodes.Status403Forbidden);
        }
        if (BearerToken.IsPresented(http, token))
        {
            return null;
        }
        http.Response.Headers.WWWAuthenticate = "Bearer";
        return Results.Json(new AdminError("missing or wrong bearer token (Broker:Admin:Token)"), AdminJsonContext.Default.AdminError,
            statusCode: StatusCodes.Status401Unauthorized);
    }
}

internal sealed record ClientList(int Total, IReadOnlyList<ClientSnapshot> Clients);

internal sealed record DisconnectResult(string ClientId, string Status);

internal sealed record AdminError(string Error);

[JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(ClientList))]
[JsonSerializable(typeof(ClientSnapshot))]
[JsonSerializable(typeof(DisconnectResult))]
[JsonSerializable(typeof(AdminError))]
internal sealed partial class AdminJsonContext : JsonSerializerContext;
