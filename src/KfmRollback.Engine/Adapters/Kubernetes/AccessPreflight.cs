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
    /// <param name="reviews">Answers already given in this operation (a fleet's environments share a namespace's permissions); null: ask every time.</param>
    public static async Task<IReadOnlyList<AccessCheck>> CheckAsync(IKubernetes client, string environment, IEnumerable<AccessRequirement> requirements, CancellationToken cancellationToken,
        AccessReviews? reviews = null)
    {
        // One review per permission, asked concurrently: a preflight should cost one round trip.
        AccessRequirement[] distinct = requirements.Distinct().ToArray();
        return await Task.WhenAll(distinct.Select(async r =>
        {
            (bool allowed, string? reason) = reviews is null
                ? await AskAsync(client, r, cancellationToken).ConfigureAwait(false)
                : await reviews.AskAsync(client, r, () => AskAsync(client, r, cancellationToken)).ConfigureAwait(false);
            return new AccessCheck(environment, r, allowed, reason);
        })).ConfigureAwait(false);
    }

    private static async Task<(bool Allowed, string? Reason)> AskAsync(IKubernetes client, AccessRequirement requirement, CancellationToken cancellationToken)
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
            return (answer.Status?.Allowed == true, answer.Status?.Reason);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw KubernetesErrors.Wrap(ex, "Checking permissions (SelfSubjectAccessReview)");
        }
    }
}

/// <summary>
/// The apiserver's answers to access reviews within one operation (one cmdlet call): a fleet of
/// environments in one namespace asks each permission of each client once, not once per
/// environment. A failed or cancelled question is asked again; nothing outlives the operation, so a
/// later call sees RBAC as it is then.
/// </summary>
public sealed class AccessReviews
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(IKubernetes Client, AccessRequirement Requirement), Lazy<Task<(bool, string?)>>> _answers = new();

    internal async Task<(bool Allowed, string? Reason)> AskAsync(IKubernetes client, AccessRequirement requirement, Func<Task<(bool, string?)>> ask)
    {
        var key = (client, requirement with { Why = string.Empty });
        Lazy<Task<(bool, string?)>> answer = _answers.GetOrAdd(key, _ => new Lazy<Task<(bool, string?)>>(ask));
        try
        {
            return await answer.Value.ConfigureAwait(false);
        }
        catch (Exception)
        {
            _answers.TryRemove(new KeyValuePair<(IKubernetes, AccessRequirement), Lazy<Task<(bool, string?)>>>(key, answer));
            throw;
        }
    }
}
