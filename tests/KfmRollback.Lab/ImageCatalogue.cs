using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace KfmRollback.Lab;

/// <summary>What a KFM API build gets wrong, as seen through the stand-in API.</summary>
public enum Regression
{
    None, Http5xx, Latency, ExistenceLeak, MissingAuditRef, WrongDatasetVersionId, CrashLoop, ContractBreak, ImagePull,
    // Builds whose OpenAPI document changes along with their responses (KfmApi.ServedOpenApi).
    ContractFieldRemoved, ContractFieldRetyped, ContractPathRemoved, ContractRequiredParam, ContractEnumRemoved, ContractFieldAdded,
    // Answers as a good build does, but its decisions skip the policy evaluator: no policy.evaluate span.
    NoPolicySpan,
    // Latency distributions with the same slow tenth (so the same P95 and P99 from the histogram): a
    // healthy build, and one whose other requests are all ~60 ms slower (the body shifts, the tail does not).
    SlowTail, LatencyShift,
}

/// <summary>How a container with this image behaves in a pod.</summary>
public enum PodFailure { None, CrashLoopBackOff, ImagePullBackOff }

public sealed record CatalogueEntry(string Name, string Tag, string Digest, Regression Regression, string Description)
{
    public string Image => $"{ImageCatalogue.KfmRepo}@{Digest}";
    public JsonObject ToJson() => new()
    {
        ["name"] = Name, ["tag"] = Tag, ["digest"] = Digest, ["image"] = Image,
        ["regression"] = Regression.ToString(), ["description"] = Description,
    };
}

/// <summary>The lab's registry: kfm-api builds by tag and digest, each with a known behaviour.</summary>
public sealed class ImageCatalogue
{
    public const string KfmRepo = "registry.kfm.local/kfm-api";
    readonly ConcurrentDictionary<string, PodFailure> _overrides = new();

    public IReadOnlyList<CatalogueEntry> Entries { get; }

    public ImageCatalogue()
    {
        CatalogueEntry E(string name, string tag, Regression r, string d) => new(name, tag, DigestOf(name), r, d);
        Entries =
        [
            E("good-1.4.0", "1.4.0", Regression.None, "healthy build"),
            E("good-1.4.1", "1.4.1", Regression.None, "healthy build"),
            E("good-1.5.0", "1.5.0", Regression.None, "healthy build"),
            E("good-1.5.1", "1.5.1", Regression.None, "healthy build (seeded as current)"),
            E("bad-5xx", "1.6.0-5xx", Regression.Http5xx, "about 40% of governed requests answer 500 KFM_INTERNAL"),
            E("bad-latency", "1.6.0-slow", Regression.Latency, "every governed request is delayed ~600 ms"),
            E("bad-leak", "1.6.0-leak", Regression.ExistenceLeak, "public caller gets 403 for a restricted dataset that exists, 404 for a missing one"),
            E("bad-audit", "1.6.0-noaudit", Regression.MissingAuditRef, "responses and errors lack audit_ref"),
            E("bad-dvid", "1.6.0-dvid", Regression.WrongDatasetVersionId, "dataset_version_id not in YYYY-MM.<8hex> form"),
            E("bad-crashloop", "1.6.0-crash", Regression.CrashLoop, "pods go CrashLoopBackOff"),
            E("bad-contract", "1.6.0-contract", Regression.ContractBreak, "datasets lose policy_label and size_bytes becomes a string"),
            E("bad-pull", "1.6.0-gone", Regression.ImagePull, "digest garbage-collected from the registry: ImagePullBackOff"),
            E("bad-contract-field", "1.6.0-notitle", Regression.ContractFieldRemoved, "datasets lose title, in the OpenAPI document and in responses"),
            E("bad-contract-type", "1.6.0-retype", Regression.ContractFieldRetyped, "size_bytes documented and served as a string"),
            E("bad-contract-path", "1.6.0-nostac", Regression.ContractPathRemoved, "GET /api/v1/stac/items removed from the document and the API"),
            E("bad-contract-param", "1.6.0-param", Regression.ContractRequiredParam, "GET /api/v1/stac/items requires a new collection query parameter"),
            E("bad-contract-enum", "1.6.0-enum", Regression.ContractEnumRemoved, "the policy_label filter no longer documents quarantine"),
            E("additive-contract", "1.6.0-license", Regression.ContractFieldAdded, "datasets gain an optional, documented license field (not breaking)"),
            E("good-tail", "1.5.2-tail", Regression.SlowTail, "healthy build whose slowest tenth of governed requests takes ~300 ms (the same P95 as bad-shift)"),
            E("bad-shift", "1.6.0-shift", Regression.LatencyShift, "the same ~300 ms slowest tenth as good-tail, every other governed request ~60 ms slower: equal P95, shifted distribution"),
            E("bad-nopolicy", "1.6.0-nopolicy", Regression.NoPolicySpan, "answers from a decision cache that bypasses the policy evaluator: its traces have no policy.evaluate span"),
        ];
    }

    public static string DigestOf(string name) =>
        "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("kfm-lab-image:" + name)));

    public CatalogueEntry Get(string name) => Entries.First(e => e.Name == name);
    public CatalogueEntry? ByDigest(string digest) => Entries.FirstOrDefault(e => e.Digest == digest);

    public void Mark(string digest, PodFailure f) => _overrides[digest] = f;

    public static (string repo, string? tag, string? digest) Split(string image)
    {
        var at = image.IndexOf('@');
        if (at >= 0) return (image[..at], null, image[(at + 1)..]);
        var slash = image.LastIndexOf('/');
        var colon = image.LastIndexOf(':');
        if (colon > slash) return (image[..colon], image[(colon + 1)..], null);
        return (image, "latest", null);
    }

    /// <summary>Resolves an image reference to the digest a node would pull, and its behaviour.</summary>
    public (string imageId, string? digest, PodFailure failure) Resolve(string image)
    {
        var (repo, tag, digest) = Split(image);
        if (repo == KfmRepo)
        {
            var e = digest != null ? ByDigest(digest) : Entries.FirstOrDefault(x => x.Tag == tag);
            if (e == null) return ("", digest, PodFailure.ImagePullBackOff);
            var f = _overrides.TryGetValue(e.Digest, out var o) ? o
                : e.Regression == Regression.CrashLoop ? PodFailure.CrashLoopBackOff
                : e.Regression == Regression.ImagePull ? PodFailure.ImagePullBackOff : PodFailure.None;
            return (f == PodFailure.ImagePullBackOff ? "" : $"{repo}@{e.Digest}", e.Digest, f);
        }
        digest ??= "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(image)));
        var fo = _overrides.TryGetValue(digest, out var ov) ? ov : PodFailure.None;
        return (fo == PodFailure.ImagePullBackOff ? "" : $"{repo}@{digest}", digest, fo);
    }

    public JsonObject ToJson()
    {
        var o = new JsonObject();
        foreach (var e in Entries) o[e.Name] = e.ToJson();
        return o;
    }
}
