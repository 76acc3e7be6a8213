namespace KfmRollback.Engine.Configuration.Binding;

/// <summary>Suggests the known key nearest to a misspelt one ("namspace" → "namespace").</summary>
internal static class KeySuggester
{
    public static string? Nearest(string unknown, IEnumerable<string> known)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var candidate in known)
        {
            var d = Distance(unknown.ToLowerInvariant(), candidate);
            if (d < bestDistance)
            {
                bestDistance = d;
                best = candidate;
            }
        }
        // Beyond about a third of the word a "suggestion" is noise that misleads more than it helps.
        var limit = Math.Max(2, unknown.Length / 3);
        return bestDistance <= limit ? best : null;
    }

    /// <summary>Optimal string alignment distance: Levenshtein plus adjacent transpositions,
    /// because swapped letters are the most common typo.</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        for (var j = 1; j <= b.Length; j++)
        {
            var cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
        }
        return d[a.Length, b.Length];
    }
}
