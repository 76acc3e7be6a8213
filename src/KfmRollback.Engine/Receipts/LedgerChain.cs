
namespace KfmRollback.Engine.Receipts;

/// <summary>One physical ledger line with what the chain check found about it.</summary>
internal sealed record LedgerLine(int LineNumber, LedgerEntry? Entry, IReadOnlyList<ReceiptStoreProblem> Problems);

/// <summary>
/// Recomputes every entry digest and prev/seq link of ledger.ndjson. Used by Verify and, before every
/// append, by Save, so a new entry is never chained onto a ledger that has already been tampered with.
/// </summary>
internal static class LedgerChain
{
    public static IReadOnlyList<LedgerLine> Check(byte[] ledgerContent, string ledgerPath)
    {
        var result = new List<LedgerLine>();
        string? expectedPrev = null;
        long expectedSeq = 1;
        long? previousSeq = null;
        var linkKnown = true; // false right after an unparsable line: its successor's link cannot be judged
        var lines = LedgerCodec.SplitLines(ledgerContent);
        for (var i = 0; i < lines.Count; i++)
        {
            var lineNumber = i + 1;
            var problems = new List<ReceiptStoreProblem>();
            var entry = LedgerCodec.TryParse(lines[i], out var node, out var reason);
            if (entry is null)
            {
                problems.Add(new(ReceiptProblemKind.LedgerLineUnparsable, expectedSeq, ledgerPath,
                    $"ledger line {lineNumber} {reason}; restore ledger.ndjson from a trusted copy."));
                result.Add(new LedgerLine(lineNumber, null, problems));
                expectedSeq++;
                linkKnown = false;
                continue;
            }
            var recomputed = LedgerCodec.DigestOf(node!);
            if (recomputed != entry.EntryDigest)
            {
                problems.Add(new(ReceiptProblemKind.LedgerEntryAltered, entry.Seq, ledgerPath,
                    $"ledger line {lineNumber} (seq {entry.Seq}) no longer matches its entry_digest: the line was edited after it was written."));
            }
            if (linkKnown && (entry.Prev != expectedPrev || entry.Seq != expectedSeq))
            {
                var after = previousSeq is null ? "the start of the ledger" : $"seq {previousSeq}";
                problems.Add(new(ReceiptProblemKind.ChainBroken, entry.Seq, ledgerPath,
                    $"ledger line {lineNumber} (seq {entry.Seq}) does not follow {after}: expected seq {expectedSeq} with prev " +
                    $"{expectedPrev ?? "null"}, found prev {entry.Prev ?? "null"}. An entry before it was removed, inserted or reordered."));
            }
            result.Add(new LedgerLine(lineNumber, entry, problems));
            expectedPrev = entry.EntryDigest;
            expectedSeq = entry.Seq + 1;
            previousSeq = entry.Seq;
            linkKnown = true;
        }
        return result;
    }
}
