namespace KfmRollback.Engine.Incidents;

/// <summary>Time conversions the runbook asks for. IANA ids resolve on Windows too (.NET 6+ with ICU).</summary>
public static class IncidentTime
{
    public const string ChicagoZoneId = "America/Chicago";

    private static readonly Lazy<TimeZoneInfo> s_chicago = new(() => TimeZoneInfo.FindSystemTimeZoneById(ChicagoZoneId));

    public static DateTimeOffset ToChicago(DateTimeOffset instant) => TimeZoneInfo.ConvertTime(instant, s_chicago.Value);

    public static string FormatChicago(DateTimeOffset instant)
    {
        DateTimeOffset local = ToChicago(instant);
        return $"{local:yyyy-MM-dd HH:mm:ss} {ChicagoAbbreviation(instant)} (UTC{local:zzz})";
    }

    /// <summary>CDT or CST: daylight time runs from March to November in Chicago.</summary>
    public static string ChicagoAbbreviation(DateTimeOffset instant) =>
        s_chicago.Value.IsDaylightSavingTime(ToChicago(instant)) ? "CDT" : "CST";
}
