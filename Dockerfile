# MQTT broker image. Build from the repository root: docker build -t mqtt-broker .
# Run: docker run --ulimit nofile=1048576:1048576 -p 1883:1883 -p 9464:9464 -v mqtt-data:/app/data mqtt-broker

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
# The aspnet image's unprivileged user "app"; 1883 and 9464 are above 1024, so no capability is needed.
USER $APP_UID
EXPOSE 1883 9464
# No curl in the aspnet image: the broker binary checks its own /healthz (exit 0/1). The running broker writes the
# URL it listens on to this file, so the check follows overrides given as arguments after the image name too.
ENV Broker__Metrics__EndpointFile=/tmp/mqtt-broker.endpoint
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["dotnet", "Broker.dll", "--healthcheck"]
ENTRYPOINT ["dotnet", "Broker.dll"]
