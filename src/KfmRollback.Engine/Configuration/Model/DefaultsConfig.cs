using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Engine.Configuration;

/// <summary>Settings shared by every environment.</summary>
public sealed class DefaultsConfig : IConfigSection
{
    /// <summary>Incident journal directory used by environments without their own <c>incidents</c>.</summary>
    [LocalPath]
    public string? IncidentJournal { get; init; }

    /// <summary>Receipt store directory used by environments without their own <c>receipts</c>.</summary>
    [LocalPath]
    public string? ReceiptStore { get; init; }

    /// <summary>IANA time zone shown next to UTC (the runbook asks for UTC + America/Chicago).</summary>
    public string TimeZone { get; init; } = "America/Chicago";

    /// <summary>The configured <see cref="TimeZone"/> as a <see cref="TimeZoneInfo"/>.</summary>
    public TimeZoneInfo ResolveTimeZone() => TimeZoneInfo.FindSystemTimeZoneById(TimeZone);

    void IConfigSection.Validate(ValidationScope scope)
    {
        if (!TimeZoneInfo.TryFindSystemTimeZoneById(TimeZone, out _))
            throw scope.Invalid("time_zone", $"must be an IANA time zone id such as America/Chicago (got '{TimeZone}').");
    }
}
