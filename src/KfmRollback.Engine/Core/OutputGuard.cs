using KfmRollback.Engine.Safety;

namespace KfmRollback.Engine.Core;

/// <summary>The last guard before anything is written: the one redaction's findings, as the engine's error.</summary>
public static class OutputGuard
{
    /// <summary>Refuses text that still carries a credential or a restricted id (the last guard before anything is written).</summary>
    public static void EnsureClean(this Redactor redactor, string text, string what)
    {
        IReadOnlyList<SecretFinding> findings = redactor.Scan(text);
        bool restricted = redactor.IsRestricted(text);
        if (findings.Count == 0 && !restricted) return;
        string kinds = string.Join(", ", findings.Select(f => f.Kind).Append(restricted ? "restricted-id" : null).Where(k => k is not null).Distinct());
        // Where, never what: line numbers let the report be filed without the content.
        string lines = string.Join(", ", findings.Select(f => 1 + text.AsSpan(0, f.Start).Count('\n')).Distinct().Take(5));
        throw new KfmException("OutputNotPolicySafe", KfmErrorKind.SecurityError,
            $"{what} would carry sensitive content ({kinds}{(lines.Length > 0 ? $" on line {lines}" : "")}) and was not written. Report this: redaction missed it.", what);
    }
}
