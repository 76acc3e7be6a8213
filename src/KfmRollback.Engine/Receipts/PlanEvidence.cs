
namespace KfmRollback.Engine.Receipts;

/// <summary>
/// One comparison the decision tree made: a surface, what runs, the last-known-good, and where each
/// was read. The plan shows it, the rollback carries it, the receipt keeps it: it lives with the
/// receipt, the last of them, so that no step has to reach up to another for it.
/// </summary>
public sealed record PlanEvidence(string Surface, string Item, string? Current, string? LastKnownGood, bool Changed, string Source);
