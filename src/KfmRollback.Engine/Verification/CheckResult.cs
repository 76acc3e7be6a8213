using KfmRollback.Engine.Adapters.Http;

namespace KfmRollback.Engine.Verification;

public enum Verdict
{
    Pass,
    Fail,
    /// <summary>Not enough evidence either way (no data, too few requests, a query failed): never a pass.</summary>
    Inconclusive,
}

/// <summary>The runbook's verification checklist sections.</summary>
public enum CheckSection
{
    Health,
    PolicyInvariants,
    Contract,
    Observability,
}

/// <summary>
/// One check's verdict with policy-safe evidence: numbers, counts and names only, never a token,
/// a restricted identifier or a response body.
/// </summary>
public sealed record CheckResult
{
    public required string Environment { get; init; }
    public required CheckSection Section { get; init; }
    /// <summary>Stable name, e.g. <c>A.error-ratio</c> or <c>B.existence-leak</c>.</summary>
    public required string Check { get; init; }
    public required Verdict Verdict { get; init; }
    public required string Summary { get; init; }
    public IReadOnlyDictionary<string, string> Evidence { get; init; } = new Dictionary<string, string>();
    /// <summary>
    /// True when waiting cannot change the verdict (the check is not configured here, a credential or
    /// input only a person can give is missing), so -Wait does not wait on it (<see cref="WaitingRules"/>).
    /// </summary>
    public bool Settled { get; init; }
    /// <summary>For a check that did not pass: what would change its verdict, for the operator.</summary>
    public string? NextStep { get; init; }
    /// <summary>
    /// The typed figures a later round of a wait builds on; <see cref="Evidence"/> shows them to people and is
    /// never read back. Null for a check that reads nothing a later round needs.
    /// </summary>
    public CheckReading? Reading { get; init; }
}

/// <summary>What a check read that the next round of a wait builds on (<see cref="ChecklistInput.Previous"/>, <see cref="WaitingRules.NextRound"/>).</summary>
public sealed record CheckReading
{
    /// <summary>A.deployment-stable: the containers' restart count at the round's last read (the next round's earlier observation).</summary>
    public int? Restarts { get; init; }
    /// <summary>A.error-ratio: the requests counted in the window judged.</summary>
    public double? Requests { get; init; }
    /// <summary>A.error-ratio: the window those requests were counted over (it ends later than the round's start when the round waited for its evidence).</summary>
    public TimeSpan? Window { get; init; }
    /// <summary>A.error-ratio: the sequential 5xx test's outcome (<see cref="SequentialTest.Outcome.RequestsToPass"/> schedules a wait's next round).</summary>
    public SequentialTest.Outcome? ErrorTest { get; init; }
}

/// <summary>The baseline window of checklist A's comparisons (kfm_integrity.baseline in the receipt).</summary>
public sealed record VerificationBaseline(DateTimeOffset From, DateTimeOffset To, string Reason)
{
    public override string ToString() => $"{TimeWindow.Utc(From)} to {TimeWindow.Utc(To)}";
}

/// <summary>
/// Checklist A–D in one object. <see cref="Health"/>, <see cref="PolicyInvariants"/> and
/// <see cref="ContractSmoke"/> are the receipt's words ("pass"/"fail"; inconclusive is a fail), so
/// the summary binds by property name into New-KfmRollbackReceipt.
/// </summary>
public sealed record VerificationSummary
{
    public required string Environment { get; init; }
    public string? IncidentId { get; init; }
    public required IReadOnlyList<CheckResult> Results { get; init; }

    // The rollback being verified, carried along so the summary binds into New-KfmRollbackReceipt.
    public string? CurrentRef { get; init; }
    public string? RollbackTargetRef { get; init; }
    public IReadOnlyList<string>? ChangedSurfaces { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? CompletedAt { get; init; }
    public string? Method { get; init; }
    public string? FromRevision { get; init; }
    public string? ToRevision { get; init; }
    public string? Reason { get; init; }
    /// <summary>The decision tree's comparisons behind the rollback verified, passed on to the receipt.</summary>
    public IReadOnlyList<Receipts.PlanEvidence> Evidence { get; init; } = Array.Empty<Receipts.PlanEvidence>();

    /// <summary>The verified-good window checklist A compared with, and why (from the metric checks' evidence); null when none was used.</summary>
    public VerificationBaseline? Baseline => Results
        .Where(r => r.Evidence.ContainsKey("baseline_from") && r.Evidence.ContainsKey("baseline_to"))
        .Select(r => new VerificationBaseline(
            DateTimeOffset.Parse(r.Evidence["baseline_from"], System.Globalization.CultureInfo.InvariantCulture),
            DateTimeOffset.Parse(r.Evidence["baseline_to"], System.Globalization.CultureInfo.InvariantCulture),
            r.Evidence.GetValueOrDefault("baseline_reason") ?? ""))
        .FirstOrDefault();

    public Verdict HealthVerdict => Aggregate(CheckSection.Health);
    public Verdict PolicyVerdict => Aggregate(CheckSection.PolicyInvariants);
    public Verdict ContractVerdict => Aggregate(CheckSection.Contract);
    public Verdict ObservabilityVerdict => Aggregate(CheckSection.Observability);

    public string Health => ReceiptWord(HealthVerdict);
    public string PolicyInvariants => ReceiptWord(PolicyVerdict);
    public string ContractSmoke => ReceiptWord(ContractVerdict);

    public bool Passed => Results.Count > 0 && Results.All(r => r.Verdict == Verdict.Pass);

    /// <summary>Any fail fails the section; otherwise any inconclusive (or no check at all) leaves it inconclusive.</summary>
    public Verdict Aggregate(CheckSection section)
    {
        var results = Results.Where(r => r.Section == section).ToList();
        if (results.Any(r => r.Verdict == Verdict.Fail)) { return Verdict.Fail; }
        if (results.Count == 0 || results.Any(r => r.Verdict == Verdict.Inconclusive)) { return Verdict.Inconclusive; }
        return Verdict.Pass;
    }

    private static string ReceiptWord(Verdict verdict) => verdict == Verdict.Pass ? "pass" : "fail";
}
