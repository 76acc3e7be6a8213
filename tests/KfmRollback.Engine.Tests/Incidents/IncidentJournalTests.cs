using KfmRollback.Engine.Adapters.Journal;
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
        Assert.Single(File.ReadAllLines(journal.Locate("INC-1042")));
    }

    [Fact]
    public void A_different_incident_under_an_existing_id_is_refused_and_nothing_is_written()
    {
        IncidentJournal journal = NewJournal();
        journal.Open(Request(), "job");
        long before = new FileInfo(journal.Locate("INC-1042")).Length;

        var ex = Assert.Throws<KfmException>(() => journal.Open(Request(reason: "another reason"), "job"));

        Assert.Equal("IncidentAlreadyExists", ex.ErrorId);
        Assert.Equal(KfmErrorKind.ResourceExists, ex.Kind);
        Assert.Equal(before, new FileInfo(journal.Locate("INC-1042")).Length);
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
        Assert.False(Directory.Exists(_dir.File("journal")));
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
        Assert.Single(File.ReadAllLines(journal.Locate("INC-1042")));
        Assert.False(File.Exists(journal.Locate("INC-9999")));
    }

    [Fact]
    public void Secret_looking_text_is_refused_before_anything_is_written()
    {
        IncidentJournal journal = NewJournal();
        var ex = Assert.Throws<KfmException>(() => journal.Open(Request(reason: "password hunter2 leaked"), "job"));
        Assert.Equal("TextLooksSecret", ex.ErrorId);
        Assert.False(File.Exists(journal.Locate("INC-1042")));

        journal.Open(Request(), "job");
        Assert.Throws<KfmException>(() => journal.AppendTimeline("INC-1042", "OPS", "hunter2", "bob"));
        Assert.DoesNotContain("hunter2", File.ReadAllText(journal.Locate("INC-1042")));
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
        File.AppendAllText(journal.Locate("INC-1042"), "{not json\n");
        var ex = Assert.Throws<KfmException>(() => journal.Get("INC-1042"));
        Assert.Equal("IncidentJournalCorrupt", ex.ErrorId);
        Assert.Contains("Line 2", ex.Message);
        // A damaged complete record stops appends too: writing after it would hide the damage from readers.
        Assert.Equal("IncidentJournalCorrupt", Assert.Throws<KfmException>(() => journal.AppendTimeline("INC-1042", "OPS", "x", "bob")).ErrorId);
    }

    [Fact]
    public void A_torn_last_record_is_set_aside_with_one_warning_and_the_next_append_starts_on_a_new_line()
    {
        var warnings = new List<string>();
        IncidentJournal NewWarningJournal() => new(_dir.File("journal/incidents.ndjson"), new RefuseWord(), _clock) { Warn = warnings.Add };
        IncidentJournal journal = NewWarningJournal();
        journal.Open(Request(), "job");
        journal.AppendTimeline("INC-1042", "OPS", "Froze deploys", "alice");
        string file = journal.Locate("INC-1042");
        // What a kill mid-write or a full disk leaves: the start of a record and no newline.
        File.AppendAllText(file, "{\"v\":1,\"type\":\"timeline\",\"incident_id\":\"INC-1042\",\"at\":\"2026-07-04T14:");
        long tornLength = new FileInfo(file).Length;

        Incident read = journal.Get("INC-1042");
        Assert.Equal(new[] { "Froze deploys" }, read.Timeline.Select(t => t.Event));
        journal.AppendTimeline("INC-1042", "OPS", "Rolled back", "alice");
        Assert.Single(warnings);
        Assert.Contains("cut off mid-write", warnings[0]);

        string[] lines = File.ReadAllLines(file);
        Assert.StartsWith("{\"v\":1,\"type\":\"timeline\"", lines[^2]);
        Assert.Contains("\"event\":\"Rolled back\"", lines[^1]);
        Assert.Equal((byte)'\n', File.ReadAllBytes(file)[tornLength]);
        Assert.True(File.Exists(file + NdjsonFileJournal.SetAsideExtension));

        // A fresh reader (the next run) reads everything, warns nothing, and keeps appending.
        warnings.Clear();
        IncidentJournal next = NewWarningJournal();
        Assert.Equal(new[] { "Froze deploys", "Rolled back" }, next.Get("INC-1042").Timeline.Select(t => t.Event));
        next.AppendTimeline("INC-1042", "OPS", "Verified", "alice");
        Assert.Equal(3, next.Get("INC-1042").Timeline.Count);
        Assert.Empty(warnings);
    }

    [Fact]
    public void A_torn_first_write_does_not_stop_opening_the_incident()
    {
        var warnings = new List<string>();
        var journal = new IncidentJournal(_dir.File("journal/incidents.ndjson"), new RefuseWord(), _clock) { Warn = warnings.Add };
        string file = journal.Locate("INC-1042");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllText(file, "{\"v\":1,\"type\":\"incident.ope");

        Assert.True(journal.Open(Request(), "job").Created);
        Assert.Equal("alice", journal.Get("INC-1042").Commander);
        Assert.Single(warnings);
    }

    [Fact]
    public void A_record_that_only_lacks_its_newline_is_kept_and_the_next_append_starts_on_a_new_line()
    {
        IncidentJournal journal = NewJournal();
        journal.Open(Request(), "job");
        string file = journal.Locate("INC-1042");
        string text = File.ReadAllText(file);
        File.WriteAllText(file, text.TrimEnd('\n'));
        journal.AppendTimeline("INC-1042", "OPS", "Froze deploys", "alice");
        Assert.Equal(2, File.ReadAllLines(file).Length);
        Assert.Equal("Froze deploys", Assert.Single(journal.Get("INC-1042").Timeline).Event);
        Assert.False(File.Exists(file + NdjsonFileJournal.SetAsideExtension));
    }

    [Fact]
    public void One_damaged_incident_does_not_stop_reading_another_since_each_has_its_own_records()
    {
        IncidentJournal journal = NewJournal();
        journal.Open(Request("INC-1"), "job");
        journal.Open(Request("INC-2"), "job");
        File.AppendAllText(journal.Locate("INC-1"), "{not json\n");
        Assert.Equal("INC-2", journal.Get("INC-2").IncidentId);
        journal.AppendTimeline("INC-2", "OPS", "still works", "bob");
        Assert.Equal("IncidentJournalCorrupt", Assert.Throws<KfmException>(() => journal.Get("INC-1")).ErrorId);
    }

    [Fact]
    public void A_single_file_journal_is_imported_once_and_stays_readable_and_appendable()
    {
        string legacy = _dir.File("journal/incidents.ndjson");
        Directory.CreateDirectory(Path.GetDirectoryName(legacy)!);
        // The layout every earlier version wrote: all incidents in one file.
        File.WriteAllLines(legacy, new[]
        {
            "{\"v\":1,\"type\":\"incident.opened\",\"incident_id\":\"INC-1\",\"at\":\"2026-07-01T10:00:00.000Z\",\"actor\":\"job\",\"commander\":\"alice\",\"reason\":\"first\",\"environment\":\"prod\",\"started_at\":\"2026-07-01T10:00:00.000Z\",\"impacted_endpoints\":[]}",
            "{\"v\":1,\"type\":\"incident.opened\",\"incident_id\":\"INC-2\",\"at\":\"2026-07-02T10:00:00.000Z\",\"actor\":\"job\",\"commander\":\"bob\",\"reason\":\"second\",\"environment\":\"prod\",\"started_at\":\"2026-07-02T10:00:00.000Z\",\"impacted_endpoints\":[]}",
            "{\"v\":1,\"type\":\"timeline\",\"incident_id\":\"INC-1\",\"at\":\"2026-07-01T10:05:00.000Z\",\"actor\":\"alice\",\"role\":\"IC\",\"event\":\"Froze deploys\"}",
        });
        byte[] before = File.ReadAllBytes(legacy);

        IncidentJournal journal = NewJournal();
        Assert.Equal(new[] { "INC-1", "INC-2" }, journal.ReadAll().Select(i => i.IncidentId));
        Assert.Equal("Froze deploys", Assert.Single(journal.Get("inc-1").Timeline).Event);
        journal.AppendTimeline("INC-1", "OPS", "Rolled back", "bob");
        Assert.Equal(before, File.ReadAllBytes(legacy));

        // An older module still appending to the single file: what it adds is imported, and nothing twice.
        File.AppendAllText(legacy, "{\"v\":1,\"type\":\"timeline\",\"incident_id\":\"INC-2\",\"at\":\"2026-07-02T10:05:00.000Z\",\"actor\":\"bob\",\"role\":\"IC\",\"event\":\"Paged\"}\n");
        IncidentJournal again = NewJournal();
        Assert.Equal("Paged", Assert.Single(again.Get("INC-2").Timeline).Event);
        Assert.Equal(new[] { "Froze deploys", "Rolled back" }, again.Get("INC-1").Timeline.Select(t => t.Event));
        Assert.Single(NewJournal().Get("INC-2").Timeline);
    }

    [Fact]
    public void An_import_cut_short_by_a_crash_and_done_again_adds_nothing_twice()
    {
        string legacy = _dir.File("journal/incidents.ndjson");
        Directory.CreateDirectory(Path.GetDirectoryName(legacy)!);
        File.WriteAllLines(legacy, new[]
        {
            "{\"v\":1,\"type\":\"incident.opened\",\"incident_id\":\"INC-1\",\"at\":\"2026-07-01T10:00:00.000Z\",\"actor\":\"job\",\"commander\":\"alice\",\"reason\":\"first\",\"started_at\":\"2026-07-01T10:00:00.000Z\",\"impacted_endpoints\":[]}",
            "{\"v\":1,\"type\":\"timeline\",\"incident_id\":\"INC-1\",\"at\":\"2026-07-01T10:05:00.000Z\",\"actor\":\"alice\",\"role\":\"IC\",\"event\":\"Froze deploys\"}",
        });
        Assert.Single(NewJournal().Get("INC-1").Timeline);
        // The crash: the incident's records were copied, the imported length was not recorded.
        File.Delete(Path.Combine(IncidentJournal.StreamsDirectory(legacy), "journal", "legacy-import.ndjson"));
        Assert.Single(NewJournal().Get("INC-1").Timeline);
        Assert.Equal(2, File.ReadAllLines(NewJournal().Locate("INC-1")).Length);
    }

    [Fact]
    public void A_torn_single_file_journal_warns_and_still_reads_the_incidents_before_the_tear()
    {
        string legacy = _dir.File("journal/incidents.ndjson");
        Directory.CreateDirectory(Path.GetDirectoryName(legacy)!);
        File.WriteAllText(legacy,
            "{\"v\":1,\"type\":\"incident.opened\",\"incident_id\":\"INC-1\",\"at\":\"2026-07-01T10:00:00.000Z\",\"actor\":\"job\",\"commander\":\"alice\",\"reason\":\"first\",\"started_at\":\"2026-07-01T10:00:00.000Z\",\"impacted_endpoints\":[]}\n" +
            "{\"v\":1,\"type\":\"timeline\",\"incident_id\":\"INC-1\",\"at\":");
        var warnings = new List<string>();
        var journal = new IncidentJournal(legacy, new RefuseWord(), _clock) { Warn = warnings.Add };
        Assert.Equal("alice", journal.Get("INC-1").Commander);
        journal.AppendTimeline("INC-1", "OPS", "continues", "bob");
        Assert.Single(warnings);
    }

    [Fact]
    public void Opening_the_same_incident_from_many_threads_writes_one_opened_record()
    {
        IncidentJournal journal = NewJournal();
        var created = new System.Collections.Concurrent.ConcurrentBag<bool>();
        Parallel.For(0, 16, _ => created.Add(new IncidentJournal(journal.JournalPath, new RefuseWord(), _clock).Open(Request(), "job").Created));
        Assert.Single(created, c => c);
        Assert.Single(File.ReadAllLines(journal.Locate("INC-1042")));
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
