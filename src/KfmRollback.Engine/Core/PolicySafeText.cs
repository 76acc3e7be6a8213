using KfmRollback.Engine.Safety;

namespace KfmRollback.Engine.Core;

/// <summary>Refuses free text that carries a credential; the error names the field and the kind, never the value.</summary>
public sealed class PolicySafeText : ITextSafety
{
    private readonly SecretScanner _scanner;

    public PolicySafeText(SecretScanner? scanner = null) => _scanner = scanner ?? SecretScanner.Default;

    public void EnsurePolicySafe(string? text, string field)
    {
        IReadOnlyList<SecretFinding> findings = _scanner.Scan(text);
        if (findings.Count == 0)
        {
            return;
        }
        string kinds = string.Join(", ", findings.Select(f => f.Kind).Distinct());
        throw new KfmException("TextLooksSecret", KfmErrorKind.SecurityError,
            $"{field} looks like it contains a credential ({kinds}) and was not recorded. Incident records are shared widely: " +
            "remove the secret (refer to it by name, e.g. 'the deploy token') and try again.", field);
    }
}
