namespace KfmRollback.Engine.Incidents;

/// <summary>The incident's latest verification as Test-KfmRollback recorded it: per-section words and the checks that did not pass.</summary>
public sealed record RecordedVerification(TimelineEntry Entry, IReadOnlyDictionary<char, string> Sections, IReadOnlyList<string> NotPassing)
{
    /// <summary>A section's word ("pass", "fail", "inconclusive"), or "not recorded".</summary>
    public string Section(char section) => Sections.TryGetValue(section, out string? word) ? word : "not recorded";

    /// <summary>Every section A–D passed.</summary>
    public bool AllPassed => "ABCD".All(s => Section(s) == "pass");
}

/// <summary>
/// What an incident's timeline says happened, read from the entries the module's steps write (freeze,
/// rollback, rollout, verification, fail-closed). One reader for every use: the stage claims of
/// incident updates (<see cref="StageClaims"/>), the follow-up's pending items and the plots' markers.
/// The forms the steps write are reserved to them (<see cref="EnsureNotStepEvent"/>): Add-KfmTimelineEntry
/// refuses them, so what people type by hand never counts as proof of a change.
/// </summary>
public sealed class TimelineFacts
{
    // The event texts the steps write (Freeze/FreezeService, Rollback/*, Test-KfmRollback, *-KfmFailClosed).
    /// <summary>Written when a freeze starts, before any mechanism is touched: the start of the run's freeze phase.</summary>
    public const string FreezeRequestedPrefix = "Freeze requested for ";
    public const string FrozePrefix = "Froze ";
    public const string JoinedPrefix = "Joined the freeze of ";
    public const string ThawedPrefix = "Thawed ";
    public const string ReleasedPrefix = "Released the freeze of ";
    public const string VerifiedPrefix = "Verified ";
    public const string FailedClosedPrefix = "FAILED CLOSED ";
    public const string ServingAgainPrefix = "Serving again in ";

    private TimelineFacts(IReadOnlyList<TimelineEntry> entries) => Entries = entries;

    /// <summary>The timeline, oldest first.</summary>
    public IReadOnlyList<TimelineEntry> Entries { get; }

    public static TimelineFacts Read(IEnumerable<TimelineEntry> timeline) => new(timeline.OrderBy(e => e.At).ToList());

    /// <summary>The first freeze this incident made or joined.</summary>
    public TimelineEntry? FirstFreeze => Entries.FirstOrDefault(e => FreezeTarget(e.Event, FrozePrefix) is not null || FreezeTarget(e.Event, JoinedPrefix) is not null);

    /// <summary>Freeze targets this incident froze (or joined) and has not thawed or released since.</summary>
    public IReadOnlyList<string> StillFrozen
    {
        get
        {
            var held = new List<string>();
            foreach (TimelineEntry entry in Entries)
            {
                if ((FreezeTarget(entry.Event, FrozePrefix) ?? FreezeTarget(entry.Event, JoinedPrefix)) is { } frozen)
                {
                    held.Remove(frozen);
                    held.Add(frozen);
                }
                else if ((FreezeTarget(entry.Event, ThawedPrefix) ?? FreezeTarget(entry.Event, ReleasedPrefix)) is { } thawed)
                {
                    held.Remove(thawed);
                }
            }
            return held;
        }
    }

    /// <summary>The first rollback this incident applied (a change sent, not a skip, refusal or failure before any change).</summary>
    public TimelineEntry? FirstRollbackApplied => Entries.FirstOrDefault(e => IsRollbackApplied(e.Event));

    /// <summary>
    /// The last rollout that changed what runs and finished (Cluster and Helm: rollout complete; GitOps:
    /// Succeeded). A GitOps change finished after a Cluster or Helm rollback is the re-align the runbook
    /// asks for after an emergency rollback (Test-KfmDrift | Invoke-KfmRollback -Method GitOps): it pins
    /// what already runs, so it neither counts as a new rollout nor makes an earlier verification stale.
    /// </summary>
    public TimelineEntry? LastRollbackCompleted => Rollouts().LastOrDefault(r => r.Ok).Entry;

    /// <summary>The last rollout that failed, when no rollout completed after it (re-align failures excepted, as above).</summary>
    public TimelineEntry? RollbackFailedSinceCompleted => Rollouts().LastOrDefault() is { Entry: not null, Ok: false } failed ? failed.Entry : null;

    /// <summary>Rollouts that change what runs, oldest first, each finished (Ok) or failed.</summary>
    private IEnumerable<(TimelineEntry? Entry, bool Ok)> Rollouts()
    {
        bool clusterSide = false;
        foreach (TimelineEntry entry in Entries)
        {
            bool gitOps = entry.Event.StartsWith("GitOps rollback of ", StringComparison.Ordinal);
            bool done = IsRolloutComplete(entry.Event), failed = IsRolloutFailed(entry.Event);
            if (!done && !failed) continue;
            if (gitOps && clusterSide) continue;   // the re-align after an emergency rollback
            if (!gitOps && done) clusterSide = true;
            yield return (entry, done);
        }
    }

    /// <summary>The latest verification Test-KfmRollback recorded, or null.</summary>
    public RecordedVerification? LastVerification
    {
        get
        {
            TimelineEntry? entry = Entries.LastOrDefault(e => e.Event.StartsWith(VerifiedPrefix, StringComparison.Ordinal));
            return entry is null ? null : ParseVerified(entry);
        }
    }

    /// <summary>The fail-closed in force: the last FAILED CLOSED entry with no "Serving again" after it.</summary>
    public TimelineEntry? FailedClosed
    {
        get
        {
            TimelineEntry? closed = null;
            foreach (TimelineEntry entry in Entries)
            {
                if (entry.Event.StartsWith(FailedClosedPrefix, StringComparison.Ordinal)) { closed = entry; }
                else if (entry.Event.StartsWith(ServingAgainPrefix, StringComparison.Ordinal)) { closed = null; }
            }
            return closed;
        }
    }

    /// <summary>True for a text in the form one of the steps writes, which this reader takes as a fact.</summary>
    public static bool IsStepEvent(string text) =>
        new[] { FrozePrefix, JoinedPrefix, ThawedPrefix, ReleasedPrefix }.Any(p => FreezeTarget(text, p) is not null)
        || IsRollbackApplied(text) || IsRolloutComplete(text) || IsRolloutFailed(text)
        || (text.StartsWith(VerifiedPrefix, StringComparison.Ordinal) && text.Contains(": A ", StringComparison.Ordinal))
        || text.StartsWith(FailedClosedPrefix, StringComparison.Ordinal) || text.StartsWith(ServingAgainPrefix, StringComparison.Ordinal)
        || text.StartsWith(FreezeRequestedPrefix, StringComparison.Ordinal);

    /// <summary>
    /// Refuses a hand-written timeline event in the form a step records (a freeze, rollback, rollout,
    /// verification or fail-closed): incident updates take those as proof that the change happened.
    /// </summary>
    public static void EnsureNotStepEvent(string text)
    {
        if (IsStepEvent(text.Trim()))
        {
            throw new Core.KfmException("TimelineEventReserved", Core.KfmErrorKind.InvalidArgument,
                // The text is not echoed: it has not passed the journal's secret check yet.
                "The event has the form of one the module's cmdlets record when they make a change (a freeze, rollback, rollout, verification or fail-closed), " +
                "which incident updates rely on as proof. Make the change with the cmdlet that records it, or describe what was done in your own words (for example 'Rolled back by hand with kubectl rollout undo').", text);
        }
    }

    private static bool IsRollbackApplied(string text) =>
        (text.StartsWith("Cluster rollback of ", StringComparison.Ordinal) || text.StartsWith("Helm rollback of ", StringComparison.Ordinal))
            ? text.Contains(": revision ", StringComparison.Ordinal)
            : text.StartsWith("GitOps rollback of ", StringComparison.Ordinal)
                && (text.Contains(": branch ", StringComparison.Ordinal) || text.Contains(": pushed ", StringComparison.Ordinal));

    private static bool IsRolloutComplete(string text) =>
        (text.StartsWith("Rollout of ", StringComparison.Ordinal) && text.Contains(" complete", StringComparison.Ordinal))
        || (text.StartsWith("GitOps rollback of ", StringComparison.Ordinal) && text.EndsWith(": Succeeded", StringComparison.Ordinal));

    private static bool IsRolloutFailed(string text) =>
        (text.StartsWith("Rollout of ", StringComparison.Ordinal) && text.Contains(" FAILED", StringComparison.Ordinal))
        || (text.StartsWith("GitOps rollback of ", StringComparison.Ordinal) && text.Contains(": Failed", StringComparison.Ordinal));

    /// <summary>"Verified lab: A pass, B fail, C inconclusive, D pass (not passing: B.x fail, C.y inconclusive)".</summary>
    private static RecordedVerification ParseVerified(TimelineEntry entry)
    {
        string text = entry.Event;
        int colon = text.IndexOf(": ", StringComparison.Ordinal);
        string rest = colon < 0 ? string.Empty : text[(colon + 2)..];
        int paren = rest.IndexOf(" (not passing: ", StringComparison.Ordinal);
        string sections = paren < 0 ? rest : rest[..paren];
        var words = new Dictionary<char, string>();
        foreach (string part in sections.Split(", ", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string[] pair = part.Split(' ', 2);
            if (pair.Length == 2 && pair[0].Length == 1 && "ABCD".Contains(pair[0][0])) { words[pair[0][0]] = pair[1]; }
        }
        var notPassing = paren < 0 ? new List<string>()
            : rest[(paren + " (not passing: ".Length)..].TrimEnd(')').Split(", ", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        return new RecordedVerification(entry, words, notPassing);
    }

    /// <summary>
    /// The target of "Froze argocd Application argocd/kfm-api (lab)": what lies between the prefix and the
    /// environment in parentheses; null for any other text (a person's "Froze deploys" names no target).
    /// </summary>
    public static string? FreezeTarget(string text, string prefix)
    {
        if (!text.StartsWith(prefix, StringComparison.Ordinal)) return null;
        int paren = text.IndexOf(" (", prefix.Length, StringComparison.Ordinal);
        int close = paren < 0 ? -1 : text.IndexOf(')', paren);
        return paren > prefix.Length && close > paren + 2 ? text[prefix.Length..paren] : null;
    }
}
