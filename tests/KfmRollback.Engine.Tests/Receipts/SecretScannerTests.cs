using KfmRollback.Engine.Safety;
using Xunit;

namespace KfmRollback.Engine.Tests.Receipts;

public class SecretScannerTests
{
    // Test credentials are assembled at run time so this file itself never looks like it leaks one.
    private static readonly string Jwt = "eyJhbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDAwMH0" + ".c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMTIzNDU2";
    private static readonly string AwsKey = "AKIA" + "IOSFODNN7EXAMPLE";
    private static readonly string GitHubPat = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A";
    private static readonly string FineGrainedPat = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz";
    private static readonly string RandomBase64 = "q8Zt3VxN0pLw7Rk2YbHs9MfJc4GdTe6A" + "u1Wy5QiXo";

    [Theory]
    [InlineData("jwt")]
    [InlineData("bearer")]
    [InlineData("aws")]
    [InlineData("github")]
    [InlineData("github_pat")]
    [InlineData("sas")]
    [InlineData("pem")]
    [InlineData("password")]
    [InlineData("apikey")]
    [InlineData("json-token")]
    [InlineData("base64")]
    [InlineData("url")]
    [InlineData("basic")]
    public void FindsCredentialShapes_AndRedactsThemWithoutKeepingTheValue(string which)
    {
        var (text, secret, kind) = which switch
        {
            "jwt" => ($"token in log: {Jwt} end", Jwt, SecretScanner.Jwt),
            "bearer" => ("Authorization: Bearer abc123DEF456ghi789", "abc123DEF456ghi789", SecretScanner.BearerToken),
            "aws" => ($"key {AwsKey} leaked", AwsKey, SecretScanner.AwsAccessKey),
            "github" => ($"used {GitHubPat} to push", GitHubPat, SecretScanner.GitHubToken),
            "github_pat" => ($"pat={FineGrainedPat}", FineGrainedPat, SecretScanner.GitHubToken),
            "sas" => ("https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sig=AbCdEf0123456789%2BxyZ%3D&se=2026", "AbCdEf0123456789%2BxyZ%3D", SecretScanner.SasSignature),
            "pem" => ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----", SecretScanner.PrivateKey),
            "password" => ("db password=hunter2hunter2 was used", "hunter2hunter2", SecretScanner.CredentialAssignment),
            "apikey" => ("call with apikey=zzTopSecret99", "zzTopSecret99", SecretScanner.CredentialAssignment),
            "json-token" => ("{\"refresh_token\": \"r3fr3sh-value\"}", "r3fr3sh-value", SecretScanner.CredentialAssignment),
            "base64" => ($"blob {RandomBase64} here", RandomBase64, SecretScanner.HighEntropyBase64),
            "url" => ("postgres://kfm:s3cretPw@db:5432/kfm", "kfm:s3cretPw", SecretScanner.UrlCredentials),
            "basic" => ("Authorization: Basic " + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes("ops:pa55word")), Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes("ops:pa55word")), SecretScanner.BasicAuth),
            _ => throw new ArgumentOutOfRangeException(nameof(which)),
        };
        var findings = SecretScanner.Default.Scan(text);
        var f = Assert.Single(findings);
        Assert.Equal(kind, f.Kind);
        Assert.Equal(secret, text.Substring(f.Start, f.Length));

        var redacted = Redactor.Default.Text(text);
        Assert.DoesNotContain(secret, redacted);
        Assert.Contains($"[REDACTED:{kind}]", redacted);
        // Redacting twice changes nothing: markers are not themselves secrets.
        Assert.Equal(redacted, Redactor.Default.Text(redacted));
    }

    [Theory]
    [InlineData("image images.example.invalid/kfm/kfm-api@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 is running")]
    [InlineData("reverted commit 0123456789abcdef0123456789abcdef01234567 on main")]
    [InlineData("receipt 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.json stored")]
    [InlineData("audit_ref kfm://audit/entry/01ARZ3NDEKTSV4RRFFQ69G5FAV dataset 2026-02.abcd1234")]
    [InlineData("Rolled back to last-known-good image; 5xx back to baseline; P95 latency 240 ms.")]
    [InlineData("see src/KfmRollback.Engine/Receipts/ReceiptStore.cs and KfmRollbackEngineReceiptsReceiptStoreTests")]
    [InlineData("password=<PASSWORD> and token=$KFM_TOKEN are placeholders")]
    [InlineData("the token was rotated; secret manager updated")]
    [InlineData("Basic verification passed; bearer authentication is enforced on every endpoint")]
    [InlineData("token=none, password=xxxxxxxx in the template")]
    [InlineData("trace id 4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7")]
    public void IgnoresDigestsCommitIdsAndOrdinaryOpsText(string text)
    {
        Assert.Empty(SecretScanner.Default.Scan(text));
        Assert.Equal(text, Redactor.Default.Text(text));
    }

    [Fact]
    public void BareHexLongerThanACommitIdAndNotADigestLength_IsFlagged()
    {
        var hex = "3f9a1c7e5b2d8f4a6c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d"; // 48 hex: no digest or commit id is this long
        var f = Assert.Single(SecretScanner.Default.Scan($"key {hex}"));
        Assert.Equal(SecretScanner.HighEntropyHex, f.Kind);
    }

    [Fact]
    public void SeveralFindings_AreOrderedAndAllRedacted()
    {
        var text = $"a {AwsKey} b password=abcd1234xyz c {Jwt}";
        var findings = SecretScanner.Default.Scan(text);
        Assert.Equal(new[] { SecretScanner.AwsAccessKey, SecretScanner.CredentialAssignment, SecretScanner.Jwt }, findings.Select(f => f.Kind));
        Assert.Equal("a [REDACTED:aws-access-key] b password=[REDACTED:credential-assignment] c [REDACTED:jwt]", Redactor.Default.Text(text));
    }

    [Fact]
    public void FindingsCarryNoValue()
    {
        // The record's shape is the guarantee: kind and position only.
        Assert.Equal(new[] { "Kind", "Length", "Start" }, typeof(SecretFinding).GetProperties().Select(p => p.Name).Where(n => n != "EqualityContract").Order());
    }
}
