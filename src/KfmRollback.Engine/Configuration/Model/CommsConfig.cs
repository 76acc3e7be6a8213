using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Engine.Configuration;

/// <summary>Where an incident update can be posted.</summary>
public enum ChannelKind
{
    /// <summary>A Slack incoming webhook (the webhook URL is the secret).</summary>
    Slack,
    /// <summary>A Microsoft Teams Workflows webhook ("when a Teams webhook request is received"), posting an Adaptive Card.</summary>
    Teams,
    /// <summary>PagerDuty Events API v2 change events (the integration's routing key is the secret).</summary>
    Pagerduty,
    /// <summary>An Atlassian Statuspage incident, created once and updated after (the API key is the secret).</summary>
    Statuspage,
}

/// <summary>
/// Where New-KfmIncidentUpdate -Post sends the runbook's policy-safe update. Webhook URLs, routing keys
/// and API keys are secrets: the configuration names an environment variable or a file that holds them.
/// </summary>
public sealed class CommsConfig : IConfigSection
{
    /// <summary>The channels, posted in order.</summary>
    [RequiredKey, NonEmpty]
    public IReadOnlyList<CommsChannelConfig> Channels { get; init; } = Array.Empty<CommsChannelConfig>();

    /// <summary>How many times one channel is tried before the update is recorded as not posted there.</summary>
    [Range(1, 10)]
    public int Attempts { get; init; } = 4;

    /// <summary>How long one request to a channel may take.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(15);

    void IConfigSection.Validate(ValidationScope scope)
    {
        var duplicate = Channels.GroupBy(c => c.Name, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw scope.Invalid("channels", $"names channel '{duplicate.Key}' more than once; each channel needs its own name (the timeline records posts by it).");
        if (Timeout > TimeSpan.FromMinutes(2))
            throw scope.Invalid("timeout", "must be at most 2m: an update must not hold up the incident.");
    }
}

/// <summary>One channel an incident update is posted to.</summary>
public sealed partial class CommsChannelConfig : IConfigSection
{
    /// <summary>The channel's name, as the timeline, -WhatIf and errors show it (never its URL).</summary>
    [RequiredKey]
    public string Name { get; init; } = null!;

    /// <summary>What kind of channel.</summary>
    [RequiredKey]
    public ChannelKind Kind { get; init; }

    /// <summary>Environment variable holding the secret: the webhook URL (slack, teams), the routing key (pagerduty) or the API key (statuspage).</summary>
    [EnvVarName]
    public string? SecretEnv { get; init; }

    /// <summary>File holding the secret (as <see cref="SecretEnv"/>).</summary>
    [LocalPath]
    public string? SecretFile { get; init; }

    /// <summary>API base URL for pagerduty and statuspage; absent means the public service. Tests point it at a loopback server.</summary>
    public Uri? BaseUrl { get; init; }

    /// <summary>The Statuspage page's id (statuspage only).</summary>
    public string? PageId { get; init; }

    /// <summary>The source a PagerDuty change event names (pagerduty only; default kfm-rollback).</summary>
    public string? Source { get; init; }

    [System.Text.RegularExpressions.GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex NameRule();

    [System.Text.RegularExpressions.GeneratedRegex("^[A-Za-z0-9]{1,64}$", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex PageIdRule();

    void IConfigSection.Validate(ValidationScope scope)
    {
        string kind = ConfigSchema.YamlName(Kind);
        if (!NameRule().IsMatch(Name))
            throw scope.Invalid("name", $"must be 1-63 letters, digits, '.', '_' or '-' starting with a letter or digit, such as ops-slack (got '{Name}').");
        scope.ExactlyOne($"a {kind} channel's {SecretWhat(Kind)} is a secret, read from an environment variable or a file.", "secret_env", "secret_file");
        if (Kind is ChannelKind.Slack or ChannelKind.Teams && BaseUrl is not null)
            throw scope.Invalid("base_url", $"does not apply to kind {kind}: its webhook URL is the secret (secret_env or secret_file).");
        if (Kind == ChannelKind.Statuspage && PageId is null)
            throw scope.Missing("page_id", "kind statuspage posts to one page's incidents.");
        if (PageId is not null && Kind != ChannelKind.Statuspage)
            throw scope.Invalid("page_id", $"applies to kind statuspage only (this channel is {kind}).");
        if (PageId is not null && !PageIdRule().IsMatch(PageId))
            throw scope.Invalid("page_id", $"must be the page's id as Statuspage shows it (letters and digits; got '{PageId}').");
        if (Source is not null && Kind != ChannelKind.Pagerduty)
            throw scope.Invalid("source", $"applies to kind pagerduty only (this channel is {kind}).");
        scope.CredentialsTravelSafely("base_url", BaseUrl, withCredentials: true, $"the {kind} {SecretWhat(Kind)}");
    }

    /// <summary>What the secret of a channel of <paramref name="kind"/> is.</summary>
    public static string SecretWhat(ChannelKind kind) => kind switch
    {
        ChannelKind.Slack or ChannelKind.Teams => "webhook URL",
        ChannelKind.Pagerduty => "routing key",
        _ => "API key",
    };
}
