namespace Conformance.Operations;

/// <summary>Files of the repository the tests read (docs, deploy/): found from the test binary upwards.</summary>
internal static class RepositoryFiles
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(string relative) => Path.Combine(Root, relative);

    /// <summary>README.md, tests/Load/README.md, docs/*.md and every file under deploy/ with one of the extensions.</summary>
    public static IEnumerable<string> Documents(params string[] deployExtensions)
    {
        yield return PathOf("README.md");
        foreach (var doc in Directory.EnumerateFiles(PathOf("docs"), "*.md"))
        {
            yield return doc;
        }
        foreach (var extension in deployExtensions)
        {
            foreach (var file in Directory.EnumerateFiles(PathOf("deploy"), "*" + extension, SearchOption.AllDirectories))
            {
                yield return file;
            }
        }
    }

    private static string FindRoot()
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
