# MQTT broker image. Build from the repository root: docker build -t mqtt-broker .
# Run: docker run --ulimit nofile=1048576:1048576 -p 1883:1883 -p 9464:9464 -v mqtt-data:/app/data \
#        -v /etc/broker:/etc/broker:ro -e Broker__Auth__PasswordFile=/etc/broker/passwd mqtt-broker
# Clients reach a container from the bridge's address, not from loopback: anonymous clients are refused unless
# Broker__Auth__AllowAnonymous=true (a try-out) is set; give them credentials instead (docs/security.md).

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Project files and central package versions first, so the restore layer is cached across source edits.
COPY Directory.Packages.props Directory.Build.props ./
COPY src/Broker.Protocol/Broker.Protocol.csproj src/Broker.Protocol/
COPY src/Broker/Broker.csproj src/Broker/
RUN dotnet restore src/Broker/Broker.csproj
COPY src/ src/
RUN dotnet publish src/Broker/Broker.csproj -c Release --no-restore -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
WORKDIR /app
COPY --from=build /app ./
# Defaults for every key; override with environment variables, e.g. -e Broker__KeepAlive__MaxSeconds=300.
COPY appsettings.json ./
# The persistent store (docs/persistence.md): a directory the unprivileged user owns, declared a volume so that it
# outlives the container (docker run -v mqtt-data:/app/data ...). A new named volume takes this owner. Without
# persistence: -e Broker__Persistence__Enabled=false.
RUN mkdir -p /app/data && chown $APP_UID /app/data
ENV Broker__Persistence__Path=/app/data
VOLUME /app/data
# The aspnet image's unprivileged user "app"; every port is above 1024, so no capability is needed.
USER $APP_UID
# MQTT, metrics; TLS and WebSocket when enabled (Broker__Tls__Enabled, Broker__WebSocket__Enabled).
EXPOSE 1883 9464 8883 8083
# The HTTP listener (metrics, probes, admin API) binds loopback by default; a container's loopback is its own, so it
# binds every address of the container here and publishing the port decides who reaches it (Prometheus on the
# container network). Set Broker__Metrics__Token to require a bearer token on /metrics as well.
ENV Broker__Metrics__Address=0.0.0.0
# No curl in the aspnet image: the broker binary checks its own /healthz (exit 0/1). The running broker writes the
# URL it listens on to this file, so the check follows overrides given as arguments after the image name too.
ENV Broker__Metrics__EndpointFile=/tmp/mqtt-broker.endpoint
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["dotnet", "Broker.dll", "--healthcheck"]
ENTRYPOINT ["dotnet", "Broker.dll"]
