namespace KfmRollback.Engine.Core;

/// <summary>The engine's shared, stateless services, for the cmdlet layer to hand to engine types.</summary>
public static class EngineServices
{
    public static ITextSafety TextSafety { get; } = new PolicySafeText();
}
