using KfmRollback.Engine.Adapters.PullRequests;
using KfmRollback.Engine.Adapters.Git;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using LibGit2Sharp;

namespace KfmRollback.Engine.Freeze;

/// <summary>One incident holding the kill switch (see <see cref="FreezeHolder"/>).</summary>
public sealed record KillSwitchHolder(
    [property: JsonPropertyName("incident")] string Incident,
    [property: JsonPropertyName("by")] string By,
    [property: JsonPropertyName("at")] DateTimeOffset At,
    [property: JsonPropertyName("reason")] string Reason);

/// <summary>The kill-switch file's content: JSON, which is also valid YAML for pipelines that read YAML.</summary>
public sealed record KillSwitchRecord(
    [property: JsonPropertyName("incident")] string Incident,
    [property: JsonPropertyName("frozen_by")] string FrozenBy,
    [property: JsonPropertyName("frozen_at")] DateTimeOffset FrozenAt,
    [property: JsonPropertyName("reason")] string Reason)
{
    /// <summary>Every incident holding the freeze; a file without the list is held by its own incident.</summary>
    [JsonPropertyName("holders")]
    public IReadOnlyList<KillSwitchHolder>? Holders { get; init; }

    [JsonIgnore]
    public IReadOnlyList<FreezeHolder> EffectiveHolders => Holders is { } list
        ? list.Select(h => new FreezeHolder(h.Incident, h.By, h.At, h.Reason)).ToList()
        : Incident.Length == 0 ? Array.Empty<FreezeHolder>() : new[] { new FreezeHolder(Incident, FrozenBy, FrozenAt, Reason) };

    public bool IsHeldBy(string incident) => EffectiveHolders.Any(h => string.Equals(h.IncidentId, incident, StringComparison.OrdinalIgnoreCase));

    /// <summary>This record with exactly <paramref name="holders"/>.</summary>
    public KillSwitchRecord WithHolders(IEnumerable<FreezeHolder> holders) =>
        this with { Holders = holders.Select(h => new KillSwitchHolder(h.IncidentId, h.By, h.At, h.Reason)).ToList() };
}

/// <summary>
/// Freeze by committing gitops.kill_switch_path (pipelines refuse to deploy while it exists);
/// thaw by committing its removal. Pushed straight to the deploy branch when
/// gitops.allow_direct_push allows, else on ops/freeze-api-&lt;incident&gt; / ops/thaw-api-&lt;incident&gt; with a
/// PR (the freeze is in force once merged). State is always read from the deploy branch's tip.
/// </summary>
public sealed class KillSwitchFreeze : IFreezeMechanism
{
    private readonly string _environment;
    private readonly GitOpsConfig _config;
    private readonly GitCredential? _credential;
    private readonly string? _cacheRoot;
    private readonly Func<PullRequestConfig, Uri?, IPullRequestProvider> _providers;
    private readonly string _path;

    public KillSwitchFreeze(string environment, GitOpsConfig config, GitCredential? credential = null, string? cacheRoot = null,
        Func<PullRequestConfig, Uri?, IPullRequestProvider>? providers = null)
    {
        _environment = environment;
        _config = config;
        _credential = credential;
        _cacheRoot = cacheRoot;
        _providers = providers ?? ((pr, url) => PullRequestProviders.For(pr, url));
        _path = config.KillSwitchPath ?? throw new KfmException(GitOpsErrorIds.KillSwitchNotConfigured, KfmErrorKind.InvalidArgument,
            "The killswitch freeze needs gitops.kill_switch_path (the file pipelines check before deploying). Set it in the configuration.");
    }

    public FreezeKind Kind => FreezeKind.Killswitch;
    public string Target => "git:" + _path;

    public Task<FreezeState> GetAsync(CancellationToken cancellationToken)
    {
        using var repository = GitOpsRepository.Open(_config, _credential, _cacheRoot, cancellationToken);
        return Task.FromResult(State(Read(repository.DeployTip()), changed: false, detail: null));
    }

    public Task<FreezeState> FreezeAsync(FreezeRequest request, bool dryRun, CancellationToken cancellationToken) =>
        ChangeAsync(request, dryRun, freeze: true, cancellationToken);

    public Task<FreezeState> ThawAsync(FreezeRequest request, bool dryRun, CancellationToken cancellationToken) =>
        ChangeAsync(request, dryRun, freeze: false, cancellationToken);

    private async Task<FreezeState> ChangeAsync(FreezeRequest request, bool dryRun, bool freeze, CancellationToken cancellationToken)
    {
        using var repository = GitOpsRepository.Open(_config, _credential, _cacheRoot, cancellationToken);
        var tip = repository.DeployTip();
        var record = Read(tip);
        var me = new FreezeHolder(request.IncidentId, request.Actor, request.At, request.Reason);
        // What the file becomes (null: removed), and what that does.
        KillSwitchRecord? next;
        FreezeAction action;
        IReadOnlyList<FreezeHolder> overridden = Array.Empty<FreezeHolder>();
        if (freeze)
        {
            if (record is not null && (record.IsHeldBy(request.IncidentId) || record.EffectiveHolders.Count == 0))
                return State(record, changed: false, detail: "Already frozen.");
            // Frozen for another incident: this one holds it too.
            (next, action) = record is null
                ? (new KillSwitchRecord(request.IncidentId, request.Actor, request.At, request.Reason).WithHolders(new[] { me }), FreezeAction.Froze)
                : (record.WithHolders(record.EffectiveHolders.Append(me)), FreezeAction.Joined);
        }
        else
        {
            if (record is null)
                return State(record, changed: false, detail: "Not frozen.");
            var others = record.EffectiveHolders.Where(h => !string.Equals(h.IncidentId, request.IncidentId, StringComparison.OrdinalIgnoreCase)).ToList();
            if (others.Count > 0 && !request.Force)
            {
                string still = $"still frozen: held by {string.Join(", ", others)}";
                if (!record.IsHeldBy(request.IncidentId))
                    return State(record, changed: false, detail: $"{still}; {request.IncidentId} holds no part of it. Each holder stops its own freeze, or -Force -Reason lifts it for all");
                (next, action) = (record.WithHolders(others), FreezeAction.Released);
            }
            else
            {
                (next, action, overridden) = (null, FreezeAction.Thawed, others);
            }
        }

        string verb = freeze ? "freeze" : "thaw";
        string branch = _config.AllowDirectPush ? _config.Branch : $"ops/{verb}-api-{Safe(request.IncidentId)}";
        if (dryRun)
            return State(record, changed: false, detail: $"Would {Describe(action)} by committing {_path} to '{branch}'.");

        var tree = next is null
            ? TreeDefinition.From(tip.Tree).Remove(_path)
            : TreeDefinition.From(tip.Tree).Add(_path, repository.Repo.ObjectDatabase.CreateBlob(new MemoryStream(Serialize(next))), Mode.NonExecutableFile);
        if (_config.AllowDirectPush)
        {
            Commit(repository, tip, tree, verb, request, branch);
            return State(next, changed: true, detail: $"Pushed the {verb} to '{branch}'.", action, overridden);
        }
        if (repository.Repo.Branches[$"{GitOpsRepository.RemoteName}/{branch}"] is null)
            Commit(repository, tip, tree, verb, request, branch);
        string? url = repository.Repo.Network.Remotes[GitOpsRepository.RemoteName]?.Url;
        var provider = _providers(_config.Pr, url is not null && Uri.TryCreate(url, UriKind.Absolute, out var u) ? u : null);
        var draft = new PullRequestDraft(branch, _config.Branch, $"{(freeze ? "Freeze" : "Thaw")} API deploys ({request.IncidentId})",
            $"Kill switch {_path}: {Describe(action)} for incident {request.IncidentId}.\n\nBy: {request.Actor}\nWhy: {request.Reason}\n");
        var pr = await provider.FindOrCreateAsync(draft, cancellationToken).ConfigureAwait(false);
        string where = pr?.Url ?? provider.CompareUrl(draft) ?? branch;
        // Until the PR merges the deploy branch is unchanged, so the state reported is still the tip's.
        return State(record, changed: true, detail: $"The {verb} waits for review: {where}.");
    }

    private static string Describe(FreezeAction action) => action switch
    {
        FreezeAction.Joined => "add this incident to the holders of the freeze",
        FreezeAction.Released => "release this incident's hold (the freeze stays for the others)",
        FreezeAction.Thawed => "thaw",
        _ => "freeze",
    };

    private void Commit(GitOpsRepository repository, Commit tip, TreeDefinition definition, string verb, FreezeRequest request, string branch)
    {
        var tree = repository.Repo.ObjectDatabase.CreateTree(definition);
        var signature = new Signature(_config.Author.Name, _config.Author.Email, request.At);
        string message = $"{(verb == "freeze" ? "Freeze" : "Thaw")} API deploys ({request.IncidentId})\n\nIncident: {request.IncidentId}\nReason: {request.Reason.ReplaceLineEndings(" ")}\n";
        var commit = repository.Repo.ObjectDatabase.CreateCommit(signature, signature, message, tree, new[] { tip }, prettifyMessage: false);
        repository.Push(commit, branch);
    }

    private KillSwitchRecord? Read(Commit tip)
    {
        byte[]? bytes = GitOpsRepository.ReadFile(tip, _path);
        if (bytes is null)
            return null;
        try
        {
            return JsonSerializer.Deserialize<KillSwitchRecord>(bytes) ?? throw new JsonException("empty");
        }
        catch (JsonException)
        {
            // A file someone wrote by hand still freezes deploys: report frozen, with what is unknown left empty.
            return new KillSwitchRecord("", "", default, "kill-switch file present (not written by KfmRollback)");
        }
    }

    private FreezeState State(KillSwitchRecord? record, bool changed, string? detail, FreezeAction action = FreezeAction.None, IReadOnlyList<FreezeHolder>? overridden = null) => new()
    {
        Environment = _environment,
        Mechanism = FreezeKind.Killswitch,
        Target = Target,
        Frozen = record is not null,
        IncidentId = NullIfEmpty(record?.Incident),
        FrozenBy = NullIfEmpty(record?.FrozenBy),
        FrozenAt = record is null || record.FrozenAt == default ? null : record.FrozenAt,
        Reason = record?.Reason,
        Holders = record?.EffectiveHolders ?? Array.Empty<FreezeHolder>(),
        Changed = changed,
        // A change waiting for review is not in force: the timeline records it once merged, not now.
        Action = changed && _config.AllowDirectPush ? action : FreezeAction.None,
        Overridden = overridden ?? Array.Empty<FreezeHolder>(),
        Detail = detail,
    };

    private static byte[] Serialize(KillSwitchRecord record) =>
        Encoding.UTF8.GetBytes(JsonSerializer.Serialize(record, new JsonSerializerOptions { WriteIndented = true }) + "\n");

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    private static string Safe(string incidentId) => new(incidentId.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '-').ToArray());
}
