using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Incidents;

/// <summary>
/// Parses <c>public:/api/v1/stac/items</c> or <c>restricted:/api/v1/datasets/{id}</c>. The exposure
/// must be stated: guessing "public" for a restricted endpoint would make later comms unsafe.
/// </summary>
public static class ImpactedEndpointParser
{
    public static ImpactedEndpoint Parse(string text)
    {
        string trimmed = (text ?? string.Empty).Trim();
        int colon = trimmed.IndexOf(':');
        if (colon > 0)
        {
            string exposure = trimmed[..colon].Trim();
            string path = trimmed[(colon + 1)..].Trim();
            if (Enum.TryParse(exposure, ignoreCase: true, out EndpointExposure parsed) && path.StartsWith('/'))
            {
                return new ImpactedEndpoint(path, parsed);
            }
        }
        throw new KfmException("ImpactedEndpointUnmarked", KfmErrorKind.InvalidArgument,
            $"Impacted endpoint '{trimmed}' must say whether the impact is public or restricted, as 'public:/api/v1/stac/items' or 'restricted:/api/v1/datasets/{{id}}'.",
            trimmed);
    }
}
