using System.Text.Json.Nodes;

namespace KfmRollback.Lab.Api;

/// <summary>
/// The apiserver's audit log (kube-apiserver --audit-log-path, audit.k8s.io/v1 Event, one JSON per
/// line): every write the lab accepts, so tests can compare what a client said it would send with
/// what it sent. Secrets are logged at Metadata level, as the recommended audit policy does, so
/// their data never lands in the log.
/// </summary>
public sealed class AuditLog
{
    private readonly object _gate = new();
    private readonly List<JsonObject> _events = new();
    private readonly string? _path;

    public AuditLog(string? path) => _path = path;

    public static readonly string[] WriteVerbs = ["create", "update", "patch", "delete", "deletecollection"];

    public IReadOnlyList<JsonObject> Events
    {
        get { lock (_gate) return _events.Select(e => (JsonObject)e.DeepClone()).ToList(); }
    }

    public void Record(string user, string verb, string uri, ResourceType resource, string? ns, string? name, string? sub, JsonNode? body, int code, DateTimeOffset at)
    {
        bool metadataOnly = resource.Plural == "secrets";
        var e = new JsonObject
        {
            ["kind"] = "Event",
            ["apiVersion"] = "audit.k8s.io/v1",
            ["level"] = metadataOnly ? "Metadata" : "Request",
            ["auditID"] = Guid.NewGuid().ToString(),
            ["stage"] = "ResponseComplete",
            ["requestURI"] = uri,
            ["verb"] = verb,
            ["user"] = new JsonObject { ["username"] = user },
            ["objectRef"] = new JsonObject
            {
                ["resource"] = resource.Plural, ["namespace"] = ns, ["name"] = name, ["apiGroup"] = resource.Group,
                ["apiVersion"] = resource.Version, ["subresource"] = sub,
            },
            ["responseStatus"] = new JsonObject { ["code"] = code },
            ["stageTimestamp"] = at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'"),
        };
        if (!metadataOnly && body is not null) e["requestObject"] = body.DeepClone();
        lock (_gate)
        {
            _events.Add(e);
            if (_path is not null) File.AppendAllText(_path, e.ToJsonString(J.Compact) + "\n");
        }
    }
}
