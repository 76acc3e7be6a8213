using KfmRollback.Engine.Tests.Support;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Adapters.Journal;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;

namespace KfmRollback.Engine.Tests.Adapters;

/// <summary>Issue 20 item 7: the journal on the cluster every operator and job reaches, appended under resourceVersion preconditions.</summary>
public sealed class ConfigMapJournalTests : IClassFixture<EngineLab>
{
    private readonly EngineLab _lab;
    private readonly string _id = "INC-" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();

    public ConfigMapJournalTests(EngineLab lab) => _lab = lab;

    /// <summary>A backend with its own client, as another machine would have; <paramref name="context"/> "lab-viewer" has the built-in view role only.</summary>
    private ConfigMapJournal Machine(out IKubernetes client, string context = "lab")
    {
        client = _lab.NewClient(context);
        return new ConfigMapJournal(client, "kfm", "lab");
    }

    private static JsonObject Record(string type, int n) => new() { ["type"] = type, ["n"] = n };

    private sealed class AllowAll : ITextSafety
    {
        public void EnsurePolicySafe(string? text, string field) { }
    }

    [Fact]
    public void Streams_round_trip_and_names_that_differ_only_in_case_stay_apart()
    {
        ConfigMapJournal journal = Machine(out IKubernetes client);
        using (client)
        {
            string upper = JournalStreams.Of("incident", _id), lower = JournalStreams.Of("incident", _id.ToLowerInvariant());
            Assert.Equal(JournalVersions.Empty, journal.Read(upper).Version);

            JournalAppend first = journal.Append(upper, new[] { Record("opened", 1) });
            journal.Append(upper, new[] { Record("timeline", 2), Record("timeline", 3) }, first.Version);
            journal.Append(lower, new[] { Record("opened", 9) });

            Assert.Equal(new[] { 1, 2, 3 }, journal.Read(upper).Records.Select(r => (int)r["n"]!));
            Assert.Equal(9, (int)Assert.Single(journal.Read(lower).Records)["n"]!);
            Assert.NotEqual(ConfigMapJournal.ObjectName(upper), ConfigMapJournal.ObjectName(lower));
            Assert.Contains(_id, journal.List("incident"));
            Assert.Contains(_id.ToLowerInvariant(), journal.List("incident"));
            Assert.DoesNotContain(_id, journal.List("environment"));

            V1ConfigMap map = client.CoreV1.ReadNamespacedConfigMap(ConfigMapJournal.ObjectName(upper), "kfm");
            Assert.Equal(upper, map.Metadata.Annotations[ConfigMapJournal.StreamAnnotation]);
            Assert.Equal("kfm-rollback", map.Metadata.Labels[ConfigMapJournal.ManagedByLabel]);
        }
    }

    [Fact]
    public void An_identity_that_may_only_read_configmaps_reads_the_journal_and_is_refused_writes_naming_the_verbs_to_grant()
    {
        ConfigMapJournal writer = Machine(out IKubernetes admin);
        ConfigMapJournal reader = Machine(out IKubernetes viewer, "lab-viewer");
        using (admin)
        using (viewer)
        {
            string stream = JournalStreams.Of("incident", _id);
            JournalAppend first = writer.Append(stream, new[] { Record("opened", 1) });

            Assert.Equal(1, (int)Assert.Single(reader.Read(stream).Records)["n"]!);
            var refusedAppend = Assert.Throws<JournalWriteException>(() => reader.Append(stream, new[] { Record("timeline", 2) }, first.Version));
            var refusedCreate = Assert.Throws<JournalWriteException>(() => reader.Append(JournalStreams.Of("incident", _id + "-NEW"), new[] { Record("opened", 1) }));

            foreach (KfmException refused in new KfmException[] { refusedAppend, refusedCreate })
            {
                Assert.Equal((KfmErrorKind.WriteError, "JournalNotWritable"), (refused.Kind, refused.ErrorId));
                Assert.Contains("grant create and update on configmaps in namespace kfm", refused.Message, StringComparison.Ordinal);
                Assert.DoesNotContain(_lab.Host.ViewerToken, refused.ToString(), StringComparison.Ordinal);
            }
            Assert.Equal(new[] { 1 }, writer.Read(stream).Records.Select(r => (int)r["n"]!));
            Assert.DoesNotContain(_id + "-NEW", writer.List("incident"));
        }
    }

    [Fact]
    public void An_append_conditional_on_a_version_another_writer_moved_writes_nothing()
    {
        ConfigMapJournal mine = Machine(out IKubernetes a), theirs = Machine(out IKubernetes b);
        using (a)
        using (b)
        {
            string stream = JournalStreams.Of("incident", _id);
            JournalAppend opened = mine.Append(stream, new[] { Record("opened", 1) });
            theirs.Append(stream, new[] { Record("run.planned", 2) }, opened.Version);

            Assert.Throws<JournalConflictException>(() => mine.Append(stream, new[] { Record("run.planned", 3) }, opened.Version));
            Assert.Equal(new[] { 1, 2 }, mine.Read(stream).Records.Select(r => (int)r["n"]!));

            // Creating a stream that another writer created meanwhile is a conflict too, not an overwrite.
            string fresh = JournalStreams.Of("incident", _id + "-B");
            theirs.Append(fresh, new[] { Record("opened", 7) });
            Assert.Throws<JournalConflictException>(() => mine.Append(fresh, new[] { Record("opened", 8) }, JournalVersions.Empty));
            Assert.Equal(7, (int)Assert.Single(mine.Read(fresh).Records)["n"]!);
        }
    }

    [Fact]
    public void Two_machines_appending_at_once_lose_nothing()
    {
        ConfigMapJournal one = Machine(out IKubernetes a), two = Machine(out IKubernetes b);
        using (a)
        using (b)
        {
            string stream = JournalStreams.Of("incident", _id);
            Parallel.For(0, 40, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => (i % 2 == 0 ? one : two).Append(stream, new[] { Record("timeline", i) }));
            Assert.Equal(Enumerable.Range(0, 40), one.Read(stream).Records.Select(r => (int)r["n"]!).Order());
        }
    }

    [Fact]
    public void A_record_edited_by_hand_stops_the_read_naming_the_object_and_record()
    {
        ConfigMapJournal journal = Machine(out IKubernetes client);
        using (client)
        {
            string stream = JournalStreams.Of("incident", _id);
            journal.Append(stream, new[] { Record("opened", 1), Record("timeline", 2) });
            V1ConfigMap map = client.CoreV1.ReadNamespacedConfigMap(ConfigMapJournal.ObjectName(stream), "kfm");
            map.Data[ConfigMapJournal.RecordsKey] = map.Data[ConfigMapJournal.RecordsKey].Replace("{\"type\":\"timeline\"", "{\"type\":timeline", StringComparison.Ordinal);
            client.CoreV1.ReplaceNamespacedConfigMap(map, map.Metadata.Name, "kfm");

            var e = Assert.Throws<JournalCorruptException>(() => journal.Read(stream));
            Assert.Equal(2, e.RecordNumber);
            Assert.Contains(ConfigMapJournal.ObjectName(stream), e.Location, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void An_incident_opened_on_one_machine_is_found_and_continued_by_a_fresh_one()
    {
        ConfigMapJournal first = Machine(out IKubernetes a), second = Machine(out IKubernetes b);
        using (a)
        using (b)
        {
            var opener = new IncidentJournal(first, first.Description, new AllowAll());
            opener.Open(new IncidentRequest { IncidentId = _id, Commander = "alice", Reason = "5xx spike after deploy", Environment = "lab" }, "job@sandbox-1");
            opener.AppendTimeline(_id, "OPS", "Froze deploys", "job@sandbox-1");

            var rerun = new IncidentJournal(second, second.Description, new AllowAll());
            Assert.False(rerun.Open(new IncidentRequest { IncidentId = _id, Commander = "alice", Reason = "5xx spike after deploy", Environment = "lab" }, "job@sandbox-2").Created);
            Parallel.For(0, 20, i => new IncidentJournal(i % 2 == 0 ? first : second, "lab", new AllowAll()).AppendTimeline(_id, "OPS", $"step {i}", "bot"));

            Incident incident = opener.Get(_id);
            Assert.Equal("job@sandbox-1", incident.OpenedBy);
            Assert.Equal(21, incident.Timeline.Count);
        }
    }

    [Fact]
    public void Object_names_are_valid_Kubernetes_names_for_any_stream_name()
    {
        foreach (string name in new[] { "INC-1042", "inc_1042.retry", "A", new string('x', 128), "lab" })
        {
            string objectName = ConfigMapJournal.ObjectName(JournalStreams.Of("incident", name));
            Assert.Matches("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", objectName);
            Assert.True(objectName.Length <= 253, objectName);
        }
    }
}
