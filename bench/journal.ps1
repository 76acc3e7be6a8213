<#
.SYNOPSIS
    The incident journal at scale: Get-KfmIncident plus one Add-KfmTimelineEntry on a journal of
    200,000 lines (20,000 incidents of 10 lines, written in the single-file layout every earlier
    version used) against the same on a journal of 10 lines (one incident), median of the runs.
    Prints the load average first, then 'bench: journal-200k-vs-10 ratio=<big / small> target<=2'.
.DESCRIPTION
    Both journals are imported into per-incident streams by their first read (reported, not
    counted: it happens once per journal); each timed run then reads one incident and appends one
    timeline entry, as a cmdlet in a rollback does, in the same process and session for both.
#>
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/KfmRollback'),
    [int] $Incidents = 20000,
    [int] $LinesPerIncident = 10,
    [int] $Runs = 5,
    # Each run repeats the read-and-append this many times, so a run is long enough to time.
    [int] $Repeat = 20
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchHelpers.ps1')
Import-Module (Join-Path (Resolve-Path $ModulePath) 'KfmRollback.psd1')

if (Test-Path /proc/loadavg) { Write-Host "load average: $((Get-Content /proc/loadavg) -replace '^(\S+ \S+ \S+).*', '$1')" }

$work = Join-Path ([IO.Path]::GetTempPath()) ('kfm-bench-journal-' + [Guid]::NewGuid().ToString('N').Substring(0, 8))
New-Item -ItemType Directory $work | Out-Null
try {
    # One incident's lines as the module writes them: opened, then timeline entries.
    function Get-IncidentLines([string] $Id, [int] $Count, [DateTime] $At) {
        $opened = [ordered]@{ v = 1; type = 'incident.opened'; incident_id = $Id; at = $At.ToString('yyyy-MM-ddTHH:mm:ss.fffZ'); actor = 'bench@host'
            commander = 'alice'; reason = '5xx spike after deploy'; environment = 'prod'; started_at = $At.ToString('yyyy-MM-ddTHH:mm:ss.fffZ'); impacted_endpoints = @() }
        ($opened | ConvertTo-Json -Compress -Depth 3)
        for ($i = 1; $i -lt $Count; $i++) {
            ([ordered]@{ v = 1; type = 'timeline'; incident_id = $Id; at = $At.AddMinutes($i).ToString('yyyy-MM-ddTHH:mm:ss.fffZ'); actor = 'bench@host'; role = 'OPS'; event = "step $i of the runbook" } |
                ConvertTo-Json -Compress)
        }
    }
    $start = [DateTime]::new(2024, 1, 1, 0, 0, 0, [DateTimeKind]::Utc)
    $small = Join-Path $work 'small/incidents.ndjson'
    $big = Join-Path $work 'big/incidents.ndjson'
    New-Item -ItemType Directory (Split-Path $small), (Split-Path $big) | Out-Null
    [IO.File]::WriteAllLines($small, [string[]] (Get-IncidentLines 'INC-1' $LinesPerIncident $start))

    # The big journal: the same lines for 20,000 incidents, interleaved in pairs as concurrent incidents are.
    $template = Get-IncidentLines 'INC-XXXXX' $LinesPerIncident $start
    $writer = [IO.StreamWriter]::new($big)
    try {
        for ($n = 1; $n -le $Incidents; $n += 2) {
            $a = 'INC-{0:D5}' -f $n; $b = 'INC-{0:D5}' -f ($n + 1)
            foreach ($line in $template) { $writer.WriteLine($line.Replace('INC-XXXXX', $a)); $writer.WriteLine($line.Replace('INC-XXXXX', $b)) }
        }
    }
    finally { $writer.Dispose() }
    $bigLines = [IO.File]::ReadLines($big) | Measure-Object | ForEach-Object Count
    $target = 'INC-{0:D5}' -f ($Incidents / 2)

    $import = [Diagnostics.Stopwatch]::StartNew()
    $null = Get-KfmIncident -JournalPath $big -Id $target
    $import.Stop()
    $null = Get-KfmIncident -JournalPath $small -Id 'INC-1'
    Write-Host ('journals: {0:N0} lines ({1:N0} incidents) and {2} lines; the one-time import of the big one took {3:N1} s' -f $bigLines, $Incidents, $LinesPerIncident, $import.Elapsed.TotalSeconds)

    function Measure-Journal([string] $Journal, [string] $Id, [int] $Run) {
        $watch = [Diagnostics.Stopwatch]::StartNew()
        for ($i = 0; $i -lt $Repeat; $i++) {
            $incident = Get-KfmIncident -JournalPath $Journal -Id $Id
            $null = Add-KfmTimelineEntry -JournalPath $Journal -IncidentId $incident.IncidentId -Event "bench run $Run.$i" -Confirm:$false
        }
        $watch.Stop()
        $watch.Elapsed.TotalMilliseconds / $Repeat
    }
    # Warm-up of both paths (JIT, page cache), then alternate so drift hits both alike.
    $null = Measure-Journal $small 'INC-1' 0
    $null = Measure-Journal $big $target 0
    $smallTimes = [Collections.Generic.List[double]]::new()
    $bigTimes = [Collections.Generic.List[double]]::new()
    for ($r = 1; $r -le $Runs; $r++) {
        $smallTimes.Add((Measure-Journal $small 'INC-1' $r))
        $bigTimes.Add((Measure-Journal $big $target $r))
    }
    $smallMedian = Get-Median $smallTimes
    $bigMedian = Get-Median $bigTimes
    Write-Host ('Get-KfmIncident + Add-KfmTimelineEntry: {0:N2} ms at {1:N0} lines, {2:N2} ms at {3} lines (median of {4} runs of {5})' -f $bigMedian, $bigLines, $smallMedian, $LinesPerIncident, $Runs, $Repeat)
    Write-BenchLine -Name 'journal-200k-vs-10' -Ratio ($bigMedian / $smallMedian) -Target '<=2'
}
finally {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}
