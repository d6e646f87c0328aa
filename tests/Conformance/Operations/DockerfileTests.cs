using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Xunit;

namespace Conformance.Operations;

/// <summary>
/// There is no Docker engine in CI: these tests read the Dockerfile against the repository so that a moved
/// project, a renamed assembly or a changed default port breaks a test instead of the image build.
/// </summary>
public sealed class DockerfileTests
{
    private static readonly string Root = FindRepositoryRoot();
    private static readonly IReadOnlyList<Instruction> Instructions = Parse(File.ReadAllText(Path.Combine(Root, "Dockerfile")));

    private sealed record Instruction(int Stage, string Keyword, string Arguments);

    [Fact]
    public void Every_copy_source_from_the_build_context_exists()
    {
        var copies = Instructions.Where(i => i.Keyword == "COPY" && !i.Arguments.StartsWith("--from", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(copies);
        foreach (var copy in copies)
        {
            var words = Words(copy.Arguments).Where(w => !w.StartsWith("--", StringComparison.Ordinal)).ToList();
            Assert.True(words.Count >= 2, $"COPY {copy.Arguments}: needs a source and a destination");
            foreach (var source in words[..^1])
            {
                string path = Path.Combine(Root, source);
                Assert.True(File.Exists(path) || Directory.Exists(path), $"COPY source '{source}' does not exist in the repository");
            }
        }
    }

    [Fact]
    public void Published_project_exists_and_the_entrypoint_runs_its_assembly()
    {
        var publish = Instructions.Single(i => i.Keyword == "RUN" && i.Arguments.Contains("dotnet publish", StringComparison.Ordinal));
        string project = Words(publish.Arguments).Single(w => w.EndsWith(".csproj", StringComparison.Ordinal));
        string projectPath = Path.Combine(Root, project);
        Assert.True(File.Exists(projectPath), $"published project '{project}' does not exist");

        string assembly = XDocument.Load(projectPath).Descendants("AssemblyName").FirstOrDefault()?.Value
            ?? Path.GetFileNameWithoutExtension(projectPath);
        var entrypoint = Instructions.Single(i => i.Keyword == "ENTRYPOINT");
        var command = JsonSerializer.Deserialize<string[]>(entrypoint.Arguments)!;
        Assert.Equal(["dotnet", assembly + ".dll"], command);
    }

    [Fact]
    public void Exposes_the_default_mqtt_and_metrics_ports()
    {
        var exposed = Instructions.Where(i => i.Keyword == "EXPOSE").SelectMany(i => Words(i.Arguments)).Select(p => p.Split('/')[0]).ToHashSet();
        Assert.Contains("1883", exposed);
        Assert.Contains("9464", exposed);

        // The image copies appsettings.json: its defaults must be the ports the image exposes.
        using var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "appsettings.json")));
        var broker = settings.RootElement.GetProperty("Broker");
        Assert.Contains(broker.GetProperty("Tcp").GetProperty("Port").GetInt32().ToString(), exposed);
        Assert.Contains(broker.GetProperty("Metrics").GetProperty("Port").GetInt32().ToString(), exposed);
    }

    [Fact]
    public void Final_stage_runs_as_a_non_root_user_with_a_healthcheck()
    {
        int finalStage = Instructions.Max(i => i.Stage);
        var user = Instructions.LastOrDefault(i => i.Stage == finalStage && i.Keyword == "USER");
        Assert.NotNull(user);
        string name = user.Arguments.Split(':')[0].Trim();
        Assert.DoesNotContain(name, new[] { "root", "0" });

        var healthcheck = Instructions.SingleOrDefault(i => i.Stage == finalStage && i.Keyword == "HEALTHCHECK");
        Assert.NotNull(healthcheck);
        Assert.Contains("CMD", healthcheck.Arguments, StringComparison.Ordinal);
        Assert.Contains("--healthcheck", healthcheck.Arguments, StringComparison.Ordinal);
        // The check follows the URL the broker wrote: the HEALTHCHECK process does not see `docker run` arguments.
        Assert.Contains(Instructions, i => i.Stage == finalStage && i.Keyword == "ENV" && i.Arguments.StartsWith("Broker__Metrics__EndpointFile=/", StringComparison.Ordinal));
    }

    [Fact]
    public void The_container_opens_its_metrics_listener_beyond_its_own_loopback_but_keeps_the_secure_MQTT_defaults()
    {
        int finalStage = Instructions.Max(i => i.Stage);
        var env = Instructions.Where(i => i.Stage == finalStage && i.Keyword == "ENV").Select(i => i.Arguments).ToList();
        // The default is 127.0.0.1, which inside a container nobody else can reach (Prometheus scrapes from outside).
        Assert.Contains("Broker__Metrics__Address=0.0.0.0", env);
        Assert.DoesNotContain(env, e => e.StartsWith("Broker__Auth__AllowAnonymous", StringComparison.Ordinal));
        using var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "appsettings.json")));
        Assert.Equal("127.0.0.1", settings.RootElement.GetProperty("Broker").GetProperty("Metrics").GetProperty("Address").GetString());
        Assert.Equal("LoopbackOnly", settings.RootElement.GetProperty("Broker").GetProperty("Auth").GetProperty("AllowAnonymous").GetString());
    }

    [Fact]
    public void The_persistent_store_is_a_volume_the_unprivileged_user_owns()
    {
        int finalStage = Instructions.Max(i => i.Stage);
        var env = Instructions.Single(i => i.Stage == finalStage && i.Keyword == "ENV" && i.Arguments.StartsWith("Broker__Persistence__Path=", StringComparison.Ordinal));
        string path = env.Arguments["Broker__Persistence__Path=".Length..];
        Assert.StartsWith("/", path);
        var volume = Instructions.Single(i => i.Stage == finalStage && i.Keyword == "VOLUME");
        Assert.Equal(path, volume.Arguments);
        // Created and handed to the user before USER: a new named volume copies the directory's owner.
        int chown = Instructions.ToList().FindIndex(i => i.Stage == finalStage && i.Keyword == "RUN" && i.Arguments.Contains($"chown $APP_UID {path}", StringComparison.Ordinal));
        int user = Instructions.ToList().FindIndex(i => i.Stage == finalStage && i.Keyword == "USER");
        Assert.True(chown >= 0 && chown < user, "the store directory is created and chowned before USER");
    }

    /// <summary>Instructions with their stage number (each FROM starts one); comments dropped, continuations joined.</summary>
    private static List<Instruction> Parse(string dockerfile)
    {
        var joined = Regex.Replace(dockerfile, @"\\\r?\n", " ");
        var result = new List<Instruction>();
        int stage = -1;
        foreach (var raw in joined.Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }
            int space = line.IndexOf(' ');
            string keyword = (space < 0 ? line : line[..space]).ToUpperInvariant();
            if (keyword == "FROM")
            {
                stage++;
            }
            result.Add(new Instruction(stage, keyword, space < 0 ? string.Empty : line[(space + 1)..].Trim()));
        }
        return result;
    }

    private static string[] Words(string arguments) => arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Broker.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("repository root (Broker.sln) not found above " + AppContext.BaseDirectory);
    }
}
