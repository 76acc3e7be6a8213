using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;
using KfmRollback.Engine.Tests.Support;

namespace KfmRollback.Engine.Tests.Incidents;

public sealed class IncidentJournalTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 7, 4, 14, 2, 30, TimeSpan.Zero));

    private sealed class RefuseWord : ITextSafety
    {
        public void EnsurePolicySafe(string? text, string field)
        {
            if (text?.Contains("hunter2", StringComparison.Ordinal) == true)
            {
                throw new KfmException("TextLooksSecret", KfmErrorKind.SecurityError, $"{field} looks like it holds a password.");
            }
        }
    }

    private IncidentJournal NewJournal() => new(_dir.File("journal/incidents.ndjson"), new RefuseWord(), _clock);

    private static IncidentRequest Request(string id = "INC-1042", string reason = "5xx spike after deploy") => new()
    {
        IncidentId = id,
        Commander = "alice",
        Reason = reason,
        Environment = "prod",
        ImpactedEndpoints = new[] { new ImpactedEndpoint("/api/v1/datasets/{id}", EndpointExposure.Restricted) },
    };

    [Fact]
    public void Open_then_get_round_trips_every_field()
    {
        IncidentJournal journal = NewJournal();
        IncidentOpenResult opened = journal.Open(Request(), "ops@host");

        Assert.True(opened.Created);
        Incident read = new IncidentJournal(journal.JournalPath, new RefuseWord()).Get("inc-1042");
        Assert.Equal("INC-1042", read.IncidentId);
        Assert.Equal("alice", read.Commander);
        Assert.Equal("prod", read.Environment);
        Assert.Equal(_clock.UtcNow, read.StartedAt);
        Assert.Equal("ops@host", read.OpenedBy);
        Assert.Equal(EndpointExposure.Restricted, Assert.Single(read.ImpactedEndpoints).Exposure);
    }

    [Fact]
    public void Reopening_the_same_incident_is_idempotent_so_restarted_jobs_continue()
    {
        IncidentJournal journal = NewJournal();
        journal.Open(Request(), "job");
        IncidentOpenResult again = journal.Open(Request(), "job");

        Assert.False(again.Created);
        Assert.Single(journal.ReadAll());
        Assert.Single(File.ReadAllLines(journal.JournalPath));
    }

    [Fact]
    public void A_different_incident_under_an_existing_id_is_refused_and_nothing_is_written()
    {
        IncidentJournal journal = NewJournal();
        journal.Open(Request(), "job");
        long before = new FileInfo(journal.JournalPath).Length;

        var ex = Assert.Throws<KfmException>(() => journal.Open(Request(reason: "another reason"), "job"));

        Assert.Equal("IncidentAlreadyExists", ex.ErrorId);
        Assert.Equal(KfmErrorKind.ResourceExists, ex.Kind);
        Assert.Equal(before, new FileInfo(journal.JournalPath).Length);
    }

    [Theory]
    [InlineData("")]
    [InlineData("INC 1042")]
    [InlineData("-leading-dash")]
    [InlineData("../../etc/passwd")]
    public void Bad_incident_ids_are_refused(string id)
    {
        var ex = Assert.Throws<KfmException>(() => NewJournal().Open(Request(id), "job"));
        Assert.Equal("IncidentIdInvalid", ex.ErrorId);
        Assert.False(File.Exists(_dir.File("journal/incidents.ndjson")));
    }

    [Fact]
    public void Timeline_entries_append_in_order_with_the_runbook_line_format()
    {
        IncidentJournal journal = NewJournal();
        journal.Open(Request(), "job");
        journal.AppendTimeline("INC-1042", "ic", "Froze deploys", "alice");
        _clock.UtcNow = _clock.UtcNow.AddMinutes(7);
        journal.AppendTimeline("INC-1042", "OPS", "Rolled back to last-known-good", "bob");

        Incident incident = journal.Get("INC-1042");
        Assert.Equal(new[] { "14:02 UTC  IC  Froze deploys", "14:09 UTC  OPS  Rolled back to last-known-good" },
            incident.Timeline.Select(t => t.Line));
        Assert.Equal("bob", incident.Timeline[1].Actor);
    }

    [Fact]
    public void Timeline_for_an_unknown_incident_fails_and_writes_nothing()
    {
        IncidentJournal journal = NewJournal();
        journal.Open(Request(), "job");
        var ex = Assert.Throws<KfmException>(() => journal.AppendTimeline("INC-9999", "OPS", "x", "bob"));
        Assert.Equal("IncidentNotFound", ex.ErrorId);
        Assert.Single(File.ReadAllLines(journal.JournalPath));
    }

    [Fact]
    public void Secret_looking_text_is_refused_before_anything_is_written()
    {
        IncidentJournal journal = NewJournal();
        var ex = Assert.Throws<KfmException>(() => journal.Open(Request(reason: "password hunter2 leaked"), "job"));
        Assert.Equal("TextLooksSecret", ex.ErrorId);
        Assert.False(File.Exists(journal.JournalPath));

        journal.Open(Request(), "job");
        Assert.Throws<KfmException>(() => journal.AppendTimeline("INC-1042", "OPS", "hunter2", "bob"));
        Assert.DoesNotContain("hunter2", File.ReadAllText(journal.JournalPath));
    }

    [Theory]
    [InlineData("OPS lead")]
    [InlineData("")]
    [InlineData("THIS-ROLE-IS-MUCH-TOO-LONG")]
    public void Bad_roles_are_refused(string role)
    {
        IncidentJournal journal = NewJournal();
        journal.Open(Request(), "job");
        Assert.Equal("TimelineRoleInvalid", Assert.Throws<KfmException>(() => journal.AppendTimeline("INC-1042", role, "x", "bob")).ErrorId);
    }

    [Fact]
    public void Concurrent_appends_from_many_threads_never_interleave()
    {
        IncidentJournal journal = NewJournal();
        journal.Open(Request(), "job");
        Parallel.For(0, 40, i => new IncidentJournal(journal.JournalPath, new RefuseWord(), _clock)
            .AppendTimeline("INC-1042", "OPS", $"step {i}", "bot"));

        Incident incident = journal.Get("INC-1042");
        Assert.Equal(40, incident.Timeline.Count);
        Assert.Equal(Enumerable.Range(0, 40).Select(i => $"step {i}").OrderBy(s => s), incident.Timeline.Select(t => t.Event).OrderBy(s => s));
    }

    [Fact]
    public void A_corrupt_line_is_reported_with_its_number()
    {
        IncidentJournal journal = NewJournal();
        journal.Open(Request(), "job");
        File.AppendAllText(journal.JournalPath, "{not json\n");
        var ex = Assert.Throws<KfmException>(() => journal.Get("INC-1042"));
        Assert.Equal("IncidentJournalCorrupt", ex.ErrorId);
        Assert.Contains("Line 2", ex.Message);
    }

    [Fact]
    public void An_unwritable_journal_location_gives_a_clear_error()
    {
        string blocker = _dir.File("a-file");
        File.WriteAllText(blocker, "x");
        var journal = new IncidentJournal(Path.Combine(blocker, "incidents.ndjson"), new RefuseWord(), _clock);
        var ex = Assert.Throws<KfmException>(() => journal.Open(Request(), "job"));
        Assert.Equal(KfmErrorKind.WriteError, ex.Kind);
    }

    [Theory]
    [InlineData("2026-01-15T18:00:00Z", "2026-01-15 12:00:00 CST (UTC-06:00)")]
    [InlineData("2026-07-04T14:02:30Z", "2026-07-04 09:02:30 CDT (UTC-05:00)")]
    public void Chicago_time_follows_daylight_saving(string utc, string expected)
    {
        Assert.Equal(expected, IncidentTime.FormatChicago(DateTimeOffset.Parse(utc, System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Theory]
    [InlineData("public:/api/v1/stac/items", "/api/v1/stac/items", EndpointExposure.Public)]
    [InlineData("Restricted: /api/v1/datasets/{id}", "/api/v1/datasets/{id}", EndpointExposure.Restricted)]
    public void Impacted_endpoints_parse(string text, string path, EndpointExposure exposure)
    {
        Assert.Equal(new ImpactedEndpoint(path, exposure), ImpactedEndpointParser.Parse(text));
    }

    [Theory]
    [InlineData("/api/v1/stac/items")]
    [InlineData("secret:/api/v1/x")]
    [InlineData("public:api/v1/x")]
    public void Unmarked_or_malformed_endpoints_are_refused(string text)
    {
        Assert.Equal("ImpactedEndpointUnmarked", Assert.Throws<KfmException>(() => ImpactedEndpointParser.Parse(text)).ErrorId);
    }

    public void Dispose() => _dir.Dispose();
}
