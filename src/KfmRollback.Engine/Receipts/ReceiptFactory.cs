using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Safety;

namespace KfmRollback.Engine.Receipts;

/// <summary>
/// Turns what the operator supplied into a valid receipt, or refuses with a message that says what to fix.
/// Fails closed: missing or ambiguous fields are errors, never guesses, except completed_at (now) and notes ("").
/// </summary>
public sealed class ReceiptFactory
{
    public static readonly string[] CanonicalSurfaces = { "api", "config", "policy" };

    private static readonly Regex IncidentIdPattern = new(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", RegexOptions.CultureInvariant);
    private static readonly Regex EnvironmentPattern = new(@"^[a-z0-9][a-z0-9-]{0,62}$", RegexOptions.CultureInvariant);

    private readonly IClock _clock;
    private readonly SecretScanner _scanner;
    private readonly ToolIdentity _tool;

    public ReceiptFactory(IClock? clock = null, SecretScanner? scanner = null, ToolIdentity? tool = null)
    {
        _clock = clock ?? SystemClock.Instance;
        _scanner = scanner ?? SecretScanner.Default;
        _tool = tool ?? DefaultTool;
    }

    public static ToolIdentity DefaultTool { get; } = new()
    {
        Name = "KfmRollback",
        Version = typeof(ReceiptFactory).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                  ?? typeof(ReceiptFactory).Assembly.GetName().Version?.ToString() ?? "0.0.0",
    };

    public RollbackReceipt Create(ReceiptInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var incident = Required("incident_id", input.IncidentId);
        if (!IncidentIdPattern.IsMatch(incident))
            throw Invalid("incident_id", "must be a ticket id such as INC-1042 or inc-2026-05-12-001 (letters, digits, '.', '_', '-'; at most 128 characters)");
        var environment = Required("environment", input.Environment).ToLowerInvariant();
        if (!EnvironmentPattern.IsMatch(environment))
            throw Invalid("environment", "must be an environment name such as prod or staging (lowercase letters, digits, '-')");

        var requestedBy = FreeText("requested_by", Required("requested_by", input.RequestedBy));
        var approvedBy = FreeText("approved_by", Required("approved_by", input.ApprovedBy));
        var reason = FreeText("reason", Required("reason", input.Reason));
        var notes = Notes(input.Notes);

        var started = input.StartedAt ?? throw Missing("started_at", "Pass the time the rollback began (UTC).");
        var completed = input.CompletedAt ?? _clock.UtcNow;
        var startedText = Rfc3339Utc(started);
        var completedText = Rfc3339Utc(completed);
        if (string.CompareOrdinal(completedText, startedText) < 0)
            throw new KfmException("ReceiptTimesOutOfOrder", KfmErrorKind.InvalidArgument,
                $"completed_at ({completedText}) is earlier than started_at ({startedText}). Check both times are UTC and in the right order.", "completed_at");

        var currentRef = ImmutableRef.Normalize("current_ref", input.CurrentRef);
        var targetRef = ImmutableRef.Normalize("rollback_target_ref", input.RollbackTargetRef);
        if (currentRef == targetRef)
            throw new KfmException("ReceiptRefsIdentical", KfmErrorKind.InvalidArgument,
                "current_ref and rollback_target_ref are the same revision, so nothing was rolled back. Record the revision that was running before the rollback as current_ref.", "rollback_target_ref");

        var receipt = new RollbackReceipt
        {
            IncidentId = incident,
            RequestedBy = requestedBy,
            ApprovedBy = approvedBy,
            StartedAt = startedText,
            CompletedAt = completedText,
            Environment = environment,
            Reason = reason,
            CurrentRef = currentRef,
            RollbackTargetRef = targetRef,
            ChangedSurfaces = Surfaces(input.ChangedSurfaces),
            Verification = new ReceiptVerification
            {
                Health = Outcome("verification.health", input.Health),
                PolicyInvariants = Outcome("verification.policy_invariants", input.PolicyInvariants),
                ContractSmoke = Outcome("verification.contract_smoke", input.ContractSmoke),
            },
            Notes = notes,
            KfmIntegrity = new KfmIntegrity
            {
                Tool = _tool,
                Subjects = new[]
                {
                    ImmutableRef.ToSubject($"{environment}/current_ref", currentRef),
                    ImmutableRef.ToSubject($"{environment}/rollback_target_ref", targetRef),
                }.Concat(EvidenceSubjects(input.EvidenceDigests)).ToList(),
                Revision = Revision(input),
                InsecureTls = input.InsecureTls ? true : null,
                Baseline = input.Baseline is { } baseline
                    ? new ReceiptBaseline { From = Rfc3339Utc(baseline.From), To = Rfc3339Utc(baseline.To), Reason = baseline.Reason }
                    : null,
                Decision = input.Evidence is { Count: > 0 } evidence
                    ? evidence.Select(e => new DecisionEvidence { Surface = e.Surface, Item = e.Item, Current = e.Current, LastKnownGood = e.LastKnownGood, Changed = e.Changed, Source = e.Source }).ToList()
                    : null,
                ForcedChecks = input.ForcedChecks is { Count: > 0 } forced ? forced.Select(f => new ForcedCheck { Check = f.Check, ErrorId = f.ErrorId, Target = f.Target, Reason = Notes(f.Reason) }).ToList() : null,
                Phases = input.Phases is { } phases ? ReceiptPhases.From(phases) : null,
            },
        };
        // The schema is the contract other tools read; never hand out something that breaks it.
        ReceiptSchema.Validate(ReceiptJson.ToJsonObject(receipt));
        return receipt;
    }

    /// <summary>Each evidence bundle as a subject named <c>evidence/&lt;hex&gt;</c>, so Test-KfmRollbackReceipt can find and re-hash it.</summary>
    private static IEnumerable<ReceiptSubject> EvidenceSubjects(IEnumerable<string>? digests) =>
        (digests ?? Array.Empty<string>()).Select(d => d.Trim().ToLowerInvariant()).Distinct().Select(d =>
        {
            string hex = ReceiptDigest.Hex(d);
            if (hex.Length != 64 || !hex.All(Uri.IsHexDigit))
                throw Invalid("kfm_integrity.subjects", "evidence digests must be sha256: followed by 64 hex characters (as Save-KfmEvidence reports them)");
            return new ReceiptSubject { Name = ReceiptSubject.EvidencePrefix + hex, Digest = new Dictionary<string, string> { ["sha256"] = hex } };
        });

    /// <summary>RFC 3339 in UTC with a 'Z', to the second, as in the runbook's example.</summary>
    public static string Rfc3339Utc(DateTimeOffset t) =>
        t.ToUniversalTime().ToString("yyyy'-'MM'-'dd'T'HH':'mm':'ss'Z'", CultureInfo.InvariantCulture);

    private string Notes(string? notes)
    {
        var text = notes?.Trim() ?? string.Empty;
        var findings = _scanner.Scan(text);
        if (findings.Count == 0) return text;
        throw new KfmException("ReceiptNotesLookSecret", KfmErrorKind.SecurityError,
            $"notes contain what looks like a credential ({Describe(findings)}). Receipts are kept forever and linked from " +
            "the incident ticket, so notes must be a policy-safe summary: remove it (Safety.Redactor.Default.Text shows the text with it masked) " +
            "and rotate the credential if it was real.", "notes");
    }

    private string FreeText(string field, string value)
    {
        var findings = _scanner.Scan(value);
        if (findings.Count == 0) return value;
        throw new KfmException("ReceiptFieldLooksSecret", KfmErrorKind.SecurityError,
            $"{field} contains what looks like a credential ({Describe(findings)}). Remove it and rotate the credential if it was real.", field);
    }

    private static string Describe(IReadOnlyList<SecretFinding> findings) =>
        string.Join(", ", findings.Select(f => $"{f.Kind} at character {f.Start + 1}"));

    private static IReadOnlyList<string> Surfaces(IEnumerable<string>? surfaces)
    {
        var given = (surfaces ?? Array.Empty<string>())
            .Where(s => !string.IsNullOrWhiteSpace(s))
            .Select(s => s.Trim().ToLowerInvariant())
            .ToHashSet(StringComparer.Ordinal);
        if (given.Count == 0)
            throw Missing("changed_surfaces", "Name what the rollback changed: one or more of api, config, policy.");
        var unknown = given.Except(CanonicalSurfaces).ToList();
        if (unknown.Count > 0)
            throw Invalid("changed_surfaces", $"may only contain api, config and policy ({unknown.Count} other value(s) given); data or catalog problems need the dataset/catalog runbooks instead");
        return CanonicalSurfaces.Where(given.Contains).ToArray();
    }

    private static string Outcome(string field, string? value)
    {
        var v = value?.Trim().ToLowerInvariant();
        if (string.IsNullOrEmpty(v)) throw Missing(field, "Run the verification checklist and record pass or fail.");
        return v switch
        {
            ReceiptVerification.Pass or "passed" or "true" => ReceiptVerification.Pass,
            ReceiptVerification.Fail or "failed" or "false" => ReceiptVerification.Fail,
            _ => throw Invalid(field, "must be pass or fail"),
        };
    }

    private static RevisionDetail? Revision(ReceiptInput input)
    {
        if (string.IsNullOrWhiteSpace(input.RevisionMethod))
        {
            if (!string.IsNullOrWhiteSpace(input.RevisionFrom) || !string.IsNullOrWhiteSpace(input.RevisionTo))
                throw Missing("kfm_integrity.revision.method", "Say how the revisions were changed: gitops, cluster or helm.");
            return null;
        }
        var method = input.RevisionMethod.Trim().ToLowerInvariant();
        if (method is not (RevisionDetail.GitOps or RevisionDetail.Cluster or RevisionDetail.Helm))
            throw Invalid("kfm_integrity.revision.method", "must be gitops, cluster or helm");
        return new RevisionDetail
        {
            Method = method,
            From = string.IsNullOrWhiteSpace(input.RevisionFrom) ? null : input.RevisionFrom.Trim(),
            To = string.IsNullOrWhiteSpace(input.RevisionTo) ? null : input.RevisionTo.Trim(),
        };
    }

    private static string Required(string field, string? value) =>
        string.IsNullOrWhiteSpace(value) ? throw Missing(field, "Supply it; the runbook lists it as a minimum field.") : value.Trim();

    private static KfmException Missing(string field, string what) =>
        new("ReceiptFieldMissing", KfmErrorKind.InvalidArgument, $"{field} is required. {what}", field);

    private static KfmException Invalid(string field, string rule) =>
        new("ReceiptFieldInvalid", KfmErrorKind.InvalidArgument, $"{field} {rule}.", field);
}
