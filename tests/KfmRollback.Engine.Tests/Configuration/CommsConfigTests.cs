using KfmRollback.Engine.Configuration;
using Xunit;
using static KfmRollback.Engine.Tests.Configuration.ConfigTestSupport;

namespace KfmRollback.Engine.Tests.Configuration;

/// <summary>The comms section: named channels of four kinds, each secret (webhook URL, routing key, API key) by reference only.</summary>
public sealed class CommsConfigTests
{
    private static string With(string channels, string extra = "") =>
        InsertAfter("      deployment: kfm-api", "    comms:\n" + extra + "      channels:\n" + channels);

    [Fact]
    public void LoadsEveryKindWithItsSecretByReference()
    {
        var comms = Prod(With(
            "        - name: ops-slack\n          kind: slack\n          secret_env: KFM_SLACK_WEBHOOK_URL\n" +
            "        - name: ops-teams\n          kind: teams\n          secret_env: KFM_TEAMS_WEBHOOK_URL\n" +
            "        - name: pager\n          kind: pagerduty\n          secret_env: KFM_PD_KEY\n          source: kfm-prod\n" +
            "        - name: status\n          kind: statuspage\n          page_id: kctbh9vrtdwd\n          secret_env: KFM_SP_KEY\n          base_url: https://api.statuspage.io/\n",
            "      attempts: 3\n")).Comms!;
        Assert.Equal(new[] { ChannelKind.Slack, ChannelKind.Teams, ChannelKind.Pagerduty, ChannelKind.Statuspage }, comms.Channels.Select(c => c.Kind));
        Assert.Equal((3, TimeSpan.FromSeconds(15)), (comms.Attempts, comms.Timeout));
        Assert.Equal(("kctbh9vrtdwd", "kfm-prod"), (comms.Channels[3].PageId, comms.Channels[2].Source));
        Assert.Null(Prod(Minimal).Comms);
    }

    [Fact]
    public void RefusesAnInlineSecretWithoutEchoingIt()
    {
        var e = LoadFails(With("        - name: ops-slack\n          kind: slack\n          secret: https://hooks.slack.com/services/T0/B0/inline-literal\n"), "ConfigInvalidValue");
        Assert.DoesNotContain("inline-literal", e.Message);
    }

    [Fact]
    public void AChannelNeedsItsSecretByReference() =>
        Assert.Contains("secret_env", LoadFails(With("        - name: ops-slack\n          kind: slack\n"), "ConfigMissingKey").Message);

    [Fact]
    public void AStatuspageChannelNeedsItsPage() =>
        Assert.Contains("page_id", LoadFails(With("        - name: status\n          kind: statuspage\n          secret_env: KFM_SP_KEY\n"), "ConfigMissingKey").Message);

    [Fact]
    public void AnApiKeyNeverTravelsOverPlainHttpToAnotherHost() =>
        Assert.Contains("plain http://", LoadFails(With("        - name: pager\n          kind: pagerduty\n          secret_env: KFM_PD_KEY\n          base_url: http://events.example.test/\n"), "ConfigInvalidValue").Message);

    [Fact]
    public void AWebhookChannelTakesNoBaseUrl() =>
        Assert.Contains("webhook URL is the secret", LoadFails(With("        - name: ops-slack\n          kind: slack\n          secret_env: KFM_SLACK\n          base_url: https://hooks.slack.com/\n"), "ConfigInvalidValue").Message);

    [Fact]
    public void ChannelNamesAreUnique() =>
        Assert.Contains("more than once", LoadFails(With(
            "        - name: ops\n          kind: slack\n          secret_env: KFM_A\n        - name: OPS\n          kind: teams\n          secret_env: KFM_B\n"), "ConfigInvalidValue").Message);
}
