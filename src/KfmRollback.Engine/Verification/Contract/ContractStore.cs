using KfmRollback.Engine.Adapters.Http;
using System.Text.Json;

namespace KfmRollback.Engine.Verification.Contract;

/// <summary>
/// What api.contract_snapshot_dir holds for known-good builds, by image digest: the response shapes
/// (<c>sha256-HEX.json</c>) and, under <c>openapi/</c>, the specification as the API served it
/// (<c>sha256-HEX.json</c> or <c>.yaml</c>). A comparison uses the running build's own record, else the newest.
/// </summary>
internal sealed class ContractStore(string? directory, string? runningDigest)
{
    public bool Configured => directory is not null;

    private string? Name => runningDigest?.Replace(':', '-');

    private string Specifications => Path.Combine(directory!, "openapi");

    /// <summary>Records both for the running build; false when there is no directory or no digest to file them under.</summary>
    public bool Record(SortedDictionary<string, SortedDictionary<string, string>> shapes, OpenApiContract specification)
    {
        if (directory is null || Name is null) { return false; }
        Directory.CreateDirectory(Specifications);
        File.WriteAllText(Path.Combine(directory, Name + ".json"), JsonSerializer.Serialize(shapes, new JsonSerializerOptions { WriteIndented = true }));
        foreach (string stale in Directory.GetFiles(Specifications, Name + ".*")) { File.Delete(stale); }
        File.WriteAllBytes(Path.Combine(Specifications, Name + "." + specification.Format), specification.Content);
        return true;
    }

    public FileInfo? ShapeBaseline() => Baseline(directory!, "json");

    public FileInfo? SpecificationBaseline() => Baseline(Specifications, "*");

    private FileInfo? Baseline(string folder, string extension)
    {
        if (!Directory.Exists(folder)) { return null; }
        var info = new DirectoryInfo(folder);
        return (Name is null ? null : info.GetFiles(Name + "." + extension).FirstOrDefault())
            ?? info.GetFiles("sha256-*." + extension).OrderByDescending(f => f.LastWriteTimeUtc).FirstOrDefault();
    }
}
