namespace KfmRollback.Engine.Configuration.Binding;

/// <summary>Suggests the known key nearest to a misspelt one ("namspace" → "namespace").</summary>
internal static class KeySuggester
{
    public static string? Nearest(string unknown, IEnumerable<string> known)
    {
        // A truncated name ("stage" for "staging", "deploy" for "deployment") is a common slip
        // that edit distance alone scores too far away.
        var lower = unknown.ToLowerInvariant();
        var knownList = known.ToList();
        var prefixed = knownList.Where(k => lower.Length >= 4 && CommonPrefix(lower, k) >= lower.Length - 1).ToList();
        if (prefixed.Count == 1)
            return prefixed[0];

        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var candidate in knownList)
        {
            var d = Distance(lower, candidate);
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

    private static int CommonPrefix(string a, string b)
    {
        var n = 0;
        while (n < a.Length && n < b.Length && a[n] == b[n]) n++;
        return n;
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
