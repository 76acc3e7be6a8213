using System.Security.Cryptography;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;

namespace KfmRollback.Engine.Tests.Receipts;

internal sealed class FixedClock : IClock
{
    public FixedClock(DateTimeOffset now) => UtcNow = now;
    public DateTimeOffset UtcNow { get; set; }
}

/// <summary>A fresh directory per test, removed afterwards.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "kfm-receipts-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            foreach (var f in Directory.EnumerateFiles(Path, "*", SearchOption.AllDirectories)) File.SetAttributes(f, FileAttributes.Normal);
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

internal static class Samples
{
    public const string CurrentDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    public const string TargetDigest = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    public const string GitSha = "0123456789abcdef0123456789abcdef01234567";

    public static readonly DateTimeOffset Now = new(2026, 3, 2, 12, 30, 0, TimeSpan.Zero);

    public static ReceiptInput Input(string incident = "INC-1042") => new()
    {
        IncidentId = incident,
        RequestedBy = "alice",
        ApprovedBy = "bob",
        StartedAt = Now.AddMinutes(-20),
        Environment = "prod",
        Reason = "5xx spike after deploy",
        CurrentRef = CurrentDigest,
        RollbackTargetRef = TargetDigest,
        ChangedSurfaces = new[] { "api" },
        Health = "pass",
        PolicyInvariants = "pass",
        ContractSmoke = "pass",
        Notes = "Rolled back to last-known-good image; error rate back to baseline.",
    };

    public static ReceiptFactory Factory() => new(new FixedClock(Now));

    public static RollbackReceipt Receipt(string incident = "INC-1042") => Factory().Create(Input(incident));

    public static (string PrivatePem, string PublicPem) NewP256Key()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return (key.ExportPkcs8PrivateKeyPem(), key.ExportSubjectPublicKeyInfoPem());
    }
}

/// <summary>
/// Machines that save at the same moment: one thread per machine, each with the store
/// <c>storeFor(machine)</c> opens (its own local copy), released together, each saving
/// <paramref name="count"/> receipts for incidents INC-&lt;machine&gt;&lt;n&gt;. Returns every save's result.
/// </summary>
internal static class RacingMachines
{
    public static List<ReceiptSaveResult> Save(string[] machines, int count, Func<string, ReceiptStore> storeFor)
    {
        using var start = new Barrier(machines.Length);
        var results = new ReceiptSaveResult[machines.Length][];
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var threads = machines.Select((machine, index) => new Thread(() =>
        {
            try
            {
                var store = storeFor("machine-" + machine);
                start.SignalAndWait();
                results[index] = Enumerable.Range(1, count).Select(i => store.Save(Samples.Receipt($"INC-{machine}{i}"))).ToArray();
            }
            catch (Exception e)
            {
                failures.Enqueue(e);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Xunit.Assert.Empty(failures);
        return results.SelectMany(r => r).ToList();
    }
}

/// <summary>
/// Plays a forger who knows the format: edits ledger lines and recomputes every entry digest and prev
/// link, so the chain itself looks intact. Only cross-checks and anchors can catch this.
/// </summary>
internal static class LedgerForger
{
    public static void Rewrite(string ledgerPath, Func<int, System.Text.Json.Nodes.JsonObject, bool> keepAndEdit)
    {
        string? prev = null;
        long seq = 0;
        var output = new List<string>();
        var index = 0;
        foreach (var line in File.ReadAllLines(ledgerPath).Where(l => l.Length > 0))
        {
            var node = System.Text.Json.Nodes.JsonNode.Parse(line)!.AsObject();
            if (!keepAndEdit(index++, node)) continue;
            node["seq"] = ++seq;
            node["prev"] = prev;
            node.Remove("entry_digest");
            var digest = ReceiptDigest.Of(node);
            node["entry_digest"] = digest;
            prev = digest;
            output.Add(node.ToJsonString());
        }
        File.WriteAllLines(ledgerPath, output);
    }
}
