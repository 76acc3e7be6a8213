using System.Collections;
using System.Reflection;

namespace KfmRollback.Engine.Tests.Security;

/// <summary>
/// Every string reachable from an object through its public properties, as Get-Error and
/// $Error[0] | Format-List * -Force show them: the exception, its inner exceptions, their requests
/// and responses, headers, bodies and data.
/// </summary>
internal static class ExceptionGraph
{
    public static IReadOnlyList<string> Strings(object root, int maxDepth = 8)
    {
        var found = new List<string>();
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        void Walk(object? value, int depth)
        {
            if (value is null || depth > maxDepth) return;
            if (value is string s) { found.Add(s); return; }
            Type type = value.GetType();
            if (type.IsPrimitive || type.IsEnum || value is decimal or DateTime or DateTimeOffset or TimeSpan or Guid or Type or MemberInfo or Delegate) { found.Add(value.ToString() ?? ""); return; }
            if (!seen.Add(value)) return;
            if (value is Exception ex) found.Add(ex.ToString());
            if (value is IDictionary dictionary)
            {
                foreach (DictionaryEntry entry in dictionary) { Walk(entry.Key, depth + 1); Walk(entry.Value, depth + 1); }
            }
            else if (value is IEnumerable items && value is not System.IO.Stream)
            {
                int n = 0;
                foreach (object? item in items) { if (n++ > 200) break; Walk(item, depth + 1); }
            }
            foreach (PropertyInfo property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                if (property.GetIndexParameters().Length > 0 || property.Name is "TargetSite" or "StackTrace") continue;
                object? child;
                try { child = property.GetValue(value); }
                catch (Exception) { continue; }
                Walk(child, depth + 1);
            }
            if (value is System.Net.Http.Headers.HttpHeaders headers)
            {
                foreach (var header in headers) { found.Add(header.Key + ": " + string.Join(", ", header.Value)); }
            }
            if (value is System.Net.Http.HttpContent content)
            {
                try { found.Add(content.ReadAsStringAsync().GetAwaiter().GetResult()); } catch (Exception) { }
            }
        }
        Walk(root, 0);
        return found;
    }
}
