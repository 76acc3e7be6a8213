using System.Management.Automation;
using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Cmdlets.Common;

/// <summary>
/// Lets time parameters take what kubectl users type (<c>90s</c>, <c>5m</c>, <c>1h30m</c>), a
/// number of seconds, or a TimeSpan; a bare number is never read as ticks.
/// </summary>
public sealed class DurationTransformationAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        object value = inputData is PSObject wrapped ? wrapped.BaseObject : inputData;
        switch (value)
        {
            case TimeSpan span:
                return span;
            // PowerShell reads an unquoted 2d as the [decimal] literal 2 (the d suffix); typed
            // decimals otherwise only come from an explicit cast, so a decimal means days.
            case decimal days:
                return TimeSpan.FromDays((double)days);
            // PowerShell reads 60s as a [short] literal, so every other numeric type means seconds.
            case byte or sbyte or short or ushort or int or uint or long or ulong or float or double:
                return TimeSpan.FromSeconds(Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture));
            case string text when DurationParser.TryParse(text, out TimeSpan parsed):
                return parsed;
            case string text when TimeSpan.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out TimeSpan parsed):
                return parsed;
            default:
                throw new ArgumentTransformationMetadataException($"'{value}' is not a duration: use 90s, 5m, 1h30m, a number of seconds, or a TimeSpan.");
        }
    }
}
