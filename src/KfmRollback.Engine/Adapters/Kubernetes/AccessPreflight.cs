using k8s;
using k8s.Models;

namespace KfmRollback.Engine.Adapters.Kubernetes;

/// <summary>One permission an operation needs: verb on resource (in group, namespace).</summary>
public sealed record AccessRequirement(string Verb, string Group, string Resource, string? Namespace, string Why, string? Subresource = null, string? Name = null)
{
    public override string ToString() =>
        $"{Verb} {(Group.Length == 0 ? Resource : Resource + "." + Group)}{(Subresource is null ? string.Empty : "/" + Subresource)}{(Namespace is null ? string.Empty : " in " + Namespace)}";
}

/// <summary>The answer for one requirement.</summary>
public sealed record AccessCheck(string Environment, AccessRequirement Requirement, bool Allowed, string? Reason)
{
    public string Verb => Requirement.Verb;
    public string Resource => Requirement.ToString();
    public string Why => Requirement.Why;
}

/// <summary>
/// Asks the apiserver (SelfSubjectAccessReview) whether the current identity may do every verb an
/// operation needs, before anything changes, as `kubectl auth can-i` does.
/// </summary>
public static class AccessPreflight
{
    public static async Task<IReadOnlyList<AccessCheck>> CheckAsync(IKubernetes client, string environment, IEnumerable<AccessRequirement> requirements, CancellationToken cancellationToken)
    {
        // One review per permission, asked concurrently: a preflight should cost one round trip.
        AccessRequirement[] distinct = requirements.Distinct().ToArray();
        return await Task.WhenAll(distinct.Select(r => CheckOneAsync(client, environment, r, cancellationToken))).ConfigureAwait(false);
    }

    private static async Task<AccessCheck> CheckOneAsync(IKubernetes client, string environment, AccessRequirement requirement, CancellationToken cancellationToken)
    {
        var review = new V1SelfSubjectAccessReview
        {
            ApiVersion = "authorization.k8s.io/v1",
            Kind = "SelfSubjectAccessReview",
            Spec = new V1SelfSubjectAccessReviewSpec
            {
                ResourceAttributes = new V1ResourceAttributes
                {
                    Verb = requirement.Verb,
                    Group = requirement.Group,
                    Resource = requirement.Resource,
                    Subresource = requirement.Subresource,
                    NamespaceProperty = requirement.Namespace,
                    Name = requirement.Name,
                },
            },
        };
        try
        {
            V1SelfSubjectAccessReview answer = await client.AuthorizationV1.CreateSelfSubjectAccessReviewAsync(review, cancellationToken: cancellationToken).ConfigureAwait(false);
            return new AccessCheck(environment, requirement, answer.Status?.Allowed == true, answer.Status?.Reason);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw KubernetesErrors.Wrap(ex, "Checking permissions (SelfSubjectAccessReview)");
        }
    }
}
