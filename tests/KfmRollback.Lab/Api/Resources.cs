using System.Text.Json.Nodes;

namespace KfmRollback.Lab.Api;

public sealed record ResourceType(
    string Group, string Version, string Plural, string Singular, string Kind, bool Namespaced,
    string[] ShortNames, bool HasStatus, bool IsCustom, string[] Verbs, string[] Categories)
{
    public string GroupVersion => Group == "" ? Version : $"{Group}/{Version}";
    public string Key => $"{Group}/{Plural}";
    /// <summary>Group-qualified resource as used in Status messages, e.g. deployments.apps.</summary>
    public string Qualified => Group == "" ? Plural : $"{Plural}.{Group}";
    public string ListKind => Kind + "List";
}

public static class Resources
{
    static readonly string[] Std = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

    public static readonly ResourceType Namespaces = new("", "v1", "namespaces", "namespace", "Namespace", false, ["ns"], true, false, ["create", "delete", "get", "list", "patch", "update", "watch"], []);
    public static readonly ResourceType Pods = new("", "v1", "pods", "pod", "Pod", true, ["po"], true, false, Std, ["all"]);
    public static readonly ResourceType ConfigMaps = new("", "v1", "configmaps", "configmap", "ConfigMap", true, ["cm"], false, false, Std, []);
    public static readonly ResourceType Secrets = new("", "v1", "secrets", "secret", "Secret", true, [], false, false, Std, []);
    public static readonly ResourceType Events = new("", "v1", "events", "event", "Event", true, ["ev"], false, false, Std, []);
    public static readonly ResourceType Deployments = new("apps", "v1", "deployments", "deployment", "Deployment", true, ["deploy"], true, false, Std, ["all"]);
    public static readonly ResourceType ReplicaSets = new("apps", "v1", "replicasets", "replicaset", "ReplicaSet", true, ["rs"], true, false, Std, ["all"]);
    public static readonly ResourceType HorizontalPodAutoscalers = new("autoscaling", "v2", "horizontalpodautoscalers", "horizontalpodautoscaler", "HorizontalPodAutoscaler", true, ["hpa"], true, false, Std, ["all"]);
    public static readonly ResourceType ResourceQuotas = new("", "v1", "resourcequotas", "resourcequota", "ResourceQuota", true, ["quota"], true, false, Std, []);
    public static readonly ResourceType Leases = new("coordination.k8s.io", "v1", "leases", "lease", "Lease", true, [], false, false, Std, []);
    public static readonly ResourceType SelfSubjectAccessReviews = new("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "selfsubjectaccessreview", "SelfSubjectAccessReview", false, [], false, false, ["create"], []);
    public static readonly ResourceType Applications = new("argoproj.io", "v1alpha1", "applications", "application", "Application", true, ["app", "apps"], false, true, Std, ["argoproj"]);
    public static readonly ResourceType AppProjects = new("argoproj.io", "v1alpha1", "appprojects", "appproject", "AppProject", true, ["appproj", "appprojs"], false, true, Std, ["argoproj"]);
    public static readonly ResourceType ApplicationSets = new("argoproj.io", "v1alpha1", "applicationsets", "applicationset", "ApplicationSet", true, ["appset", "appsets"], false, true, Std, ["argoproj"]);
    public static readonly ResourceType Kustomizations = new("kustomize.toolkit.fluxcd.io", "v1", "kustomizations", "kustomization", "Kustomization", true, ["ks"], true, true, Std, []);
    public static readonly ResourceType HelmReleases = new("helm.toolkit.fluxcd.io", "v2", "helmreleases", "helmrelease", "HelmRelease", true, ["hr"], true, true, Std, []);

    public static readonly ResourceType GitRepositories = new("source.toolkit.fluxcd.io", "v1", "gitrepositories", "gitrepository", "GitRepository", true, ["gitrepo"], true, true, Std, []);
    public static readonly ResourceType ImageUpdateAutomations = new("image.toolkit.fluxcd.io", "v1", "imageupdateautomations", "imageupdateautomation", "ImageUpdateAutomation", true, [], true, true, Std, []);

    public static readonly ResourceType[] All =
        [Namespaces, Pods, ConfigMaps, Secrets, Events, ResourceQuotas, Deployments, ReplicaSets, HorizontalPodAutoscalers, Leases, SelfSubjectAccessReviews, Applications, AppProjects, ApplicationSets, Kustomizations, HelmReleases, GitRepositories, ImageUpdateAutomations];

    public static IEnumerable<string> Groups => All.Where(r => r.Group != "").Select(r => r.Group).Distinct();

    public static ResourceType? Find(string group, string version, string plural) =>
        All.FirstOrDefault(r => r.Group == group && r.Version == version && r.Plural == plural);

    /// <summary>Subresources the lab serves, per resource.</summary>
    public static string[] SubresourcesOf(ResourceType rt) => rt.Plural switch
    {
        "deployments" => ["status", "scale"],
        "replicasets" => ["status", "scale"],
        "pods" => ["status", "log"],
        "namespaces" or "resourcequotas" => ["status"],
        "kustomizations" or "helmreleases" or "gitrepositories" or "imageupdateautomations" or "horizontalpodautoscalers" => ["status"],
        _ => []
    };
}

/// <summary>An error answered as a Kubernetes Status body.</summary>
public sealed class ApiException(int code, string reason, string message, JsonObject? details = null) : Exception(message)
{
    public int Code { get; } = code;
    public string Reason { get; } = reason;
    public JsonObject? Details { get; } = details;

    public JsonObject ToStatus() => Status(Code, Reason, Message, Details);

    public static JsonObject Status(int code, string reason, string message, JsonObject? details = null)
    {
        var o = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = message,
        };
        // metav1.Status omits an empty reason (a webhook denial without one, as kyverno's).
        if (reason.Length > 0) o["reason"] = reason;
        if (details != null) o["details"] = details;
        o["code"] = code;
        return o;
    }

    static JsonObject D(ResourceType rt, string name) =>
        new() { ["name"] = name, ["group"] = rt.Group, ["kind"] = rt.Plural };

    public static ApiException NotFound(ResourceType rt, string name) =>
        new(404, "NotFound", $"{rt.Qualified} \"{name}\" not found", D(rt, name));
    public static ApiException AlreadyExists(ResourceType rt, string name) =>
        new(409, "AlreadyExists", $"{rt.Qualified} \"{name}\" already exists", D(rt, name));
    public static ApiException Conflict(ResourceType rt, string name) =>
        new(409, "Conflict", $"Operation cannot be fulfilled on {rt.Qualified} \"{name}\": the object has been modified; please apply your changes to the latest version and try again", D(rt, name));
    public static ApiException Invalid(ResourceType rt, string name, string field, string detail, string type = "FieldValueInvalid")
    {
        var d = D(rt, name);
        d["kind"] = rt.Kind;
        d["causes"] = new JsonArray(new JsonObject { ["reason"] = type, ["message"] = detail, ["field"] = field });
        return new(422, "Invalid", $"{rt.Kind}{(rt.Group == "" ? "" : "." + rt.Group)} \"{name}\" is invalid: {field}: {detail}", d);
    }
    public static ApiException BadRequest(string msg) => new(400, "BadRequest", msg);
    public static ApiException Forbidden(string user, string verb, ResourceType rt, string? ns, string? name)
    {
        var what = name != null ? $"{rt.Qualified} \"{name}\"" : rt.Qualified;
        var where = ns != null && rt.Namespaced ? $" in the namespace \"{ns}\"" : rt.Namespaced ? "" : " at the cluster scope";
        var d = new JsonObject { ["group"] = rt.Group, ["kind"] = rt.Plural };
        if (name != null) d["name"] = name;
        return new(403, "Forbidden", $"{what} is forbidden: User \"{user}\" cannot {verb} resource \"{rt.Plural}\" in API group \"{rt.Group}\"{where}", d);
    }
    public static ApiException MethodNotAllowed(string verb) =>
        new(405, "MethodNotAllowed", $"the server does not allow this method on the requested resource");
}
