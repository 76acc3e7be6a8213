using System.Text.Json.Nodes;

namespace KfmRollback.Lab.Api;

/// <summary>
/// One denying validating admission webhook, registered by tests (POST /lab/admission), standing in
/// for a policy engine such as kyverno (kyverno/kyverno#5363: admission rejects the undo). It matches
/// as a ValidatingWebhookConfiguration's rules do: operations (CREATE, UPDATE, DELETE; a PATCH is an
/// UPDATE), resources (plural, or plural/subresource), a namespace, an objectSelector (matched against
/// the new object's labels, or the old one's, as the apiserver does) and, a lab convenience, object names.
/// </summary>
public sealed class WebhookRule
{
    /// <summary>The webhook's name, as the apiserver quotes it in the denial.</summary>
    public string Name { get; set; } = "deny.lab.kfm.local";
    public string[] Operations { get; set; } = ["CREATE", "UPDATE", "DELETE"];
    public string[] Resources { get; set; } = ["*"];
    public string? Namespace { get; set; }
    public string[] Names { get; set; } = [];
    public string? ObjectSelector { get; set; }
    /// <summary>The webhook response's status.message.</summary>
    public string Message { get; set; } = "denied by the lab";
    /// <summary>The webhook response's status.code; below 400 (or unset) the apiserver answers 400.</summary>
    public int Code { get; set; }
    /// <summary>The webhook response's status.reason (kyverno sets none).</summary>
    public string? Reason { get; set; }

    public static WebhookRule FromJson(JsonNode n) => new()
    {
        Name = n.Str("name") ?? "deny.lab.kfm.local",
        Operations = Strings(n["operations"]) ?? ["CREATE", "UPDATE", "DELETE"],
        Resources = Strings(n["resources"]) ?? ["*"],
        Namespace = n.Str("namespace"),
        Names = Strings(n["names"]) ?? [],
        ObjectSelector = n.Str("objectSelector"),
        Message = n.Str("message") ?? "denied by the lab",
        Code = (int)(n.Long("code") ?? 0),
        Reason = n.Str("reason"),
    };

    static string[]? Strings(JsonNode? node) => node is JsonArray a ? a.Select(x => x!.GetValue<string>()).ToArray() : null;

    public JsonObject ToJson() => new()
    {
        ["name"] = Name,
        ["operations"] = new JsonArray(Operations.Select(x => (JsonNode?)x).ToArray()),
        ["resources"] = new JsonArray(Resources.Select(x => (JsonNode?)x).ToArray()),
        ["namespace"] = Namespace,
        ["names"] = new JsonArray(Names.Select(x => (JsonNode?)x).ToArray()),
        ["objectSelector"] = ObjectSelector,
        ["message"] = Message,
        ["code"] = Code,
        ["reason"] = Reason,
    };

    public bool Matches(string operation, ResourceType rt, string? sub, string? ns, string? name, JsonObject? newObject, JsonObject? oldObject)
    {
        string resource = sub is null ? rt.Plural : $"{rt.Plural}/{sub}";
        if (!Operations.Contains(operation) && !Operations.Contains("*")) return false;
        if (!Resources.Contains(resource) && !(Resources.Contains("*") && sub is null)) return false;
        if (Namespace is not null && Namespace != ns) return false;
        if (Names.Length > 0 && (name is null || !Names.Contains(name))) return false;
        if (ObjectSelector is not null)
        {
            var selector = LabelSelector.Parse(ObjectSelector);
            if (!(newObject is not null && selector.Matches(newObject)) && !(oldObject is not null && selector.Matches(oldObject))) return false;
        }
        return true;
    }

    /// <summary>
    /// What the apiserver answers for a denial (apiserver/pkg/admission/plugin/webhook/errors
    /// ToStatusErr): code at least 400, "admission webhook \"name\" denied the request: message".
    /// </summary>
    public ApiException Denial() =>
        new(Code < 400 ? 400 : Code, Reason ?? "", $"admission webhook \"{Name}\" denied the request: {Message}");
}

/// <summary>The validating webhooks the lab's apiserver calls on every write, dry runs included (sideEffects: None).</summary>
public sealed class ValidatingWebhooks
{
    readonly object _lock = new();
    readonly List<WebhookRule> _rules = new();

    public void Add(WebhookRule rule) { lock (_lock) _rules.Add(rule); }
    public void Clear() { lock (_lock) _rules.Clear(); }

    public JsonObject ToJson()
    {
        lock (_lock) return new JsonObject { ["webhooks"] = new JsonArray(_rules.Select(r => (JsonNode)r.ToJson()).ToArray()) };
    }

    /// <summary>Throws the first matching webhook's denial.</summary>
    public void Admit(string operation, ResourceType rt, string? sub, string? ns, string? name, JsonObject? newObject, JsonObject? oldObject)
    {
        WebhookRule? denying;
        lock (_lock) denying = _rules.FirstOrDefault(r => r.Matches(operation, rt, sub, ns, name, newObject, oldObject));
        if (denying is not null) throw denying.Denial();
    }
}
