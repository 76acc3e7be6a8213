<#
.SYNOPSIS
    Turns docs/cmdlets/<Cmdlet>.md into the module's MAML help (en-US/KfmRollback.dll-Help.xml).
.DESCRIPTION
    The markdown pages are the single source of cmdlet help (platyPS is not available here).
    Parameter types, positions and pipeline input come from the built cmdlets themselves, so the
    help cannot disagree with the code. The build fails when a cmdlet has no page, no example,
    or an undocumented parameter, so help cannot rot.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $DocsPath,
    [Parameter(Mandatory)] [string] $OutFile
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$module = Import-Module (Resolve-Path (Join-Path $ModulePath 'KfmRollback.psd1')).Path -PassThru -Force
$common = [System.Management.Automation.Cmdlet]::CommonParameters

# Splits a page into its '## SECTION' bodies.
function Read-DocPage {
    param([string] $Path)
    $sections = [ordered]@{}
    $current = $null
    $inFence = $false
    foreach ($line in Get-Content -Path $Path) {
        if ($line -match '^```') { $inFence = -not $inFence }
        if (-not $inFence -and $line -match '^## (.+)$') {
            $current = $Matches[1].Trim().ToUpperInvariant()
            $sections[$current] = [Collections.Generic.List[string]]::new()
            continue
        }
        if ($null -ne $current) { $sections[$current].Add($line) }
    }
    $sections
}

# Splits a section into its '### heading' parts.
function Split-Subsections {
    param([string[]] $Lines)
    $parts = [Collections.Generic.List[object]]::new()
    $current = $null
    $inFence = $false
    foreach ($line in $Lines) {
        if ($line -match '^```') { $inFence = -not $inFence }
        if (-not $inFence -and $line -match '^### (.+)$') {
            $current = [pscustomobject]@{ Title = $Matches[1].Trim(); Lines = [Collections.Generic.List[string]]::new() }
            $parts.Add($current)
            continue
        }
        if ($null -ne $current) { $current.Lines.Add($line) }
    }
    $parts
}

function Get-Paragraphs {
    param([string[]] $Lines)
    $text = ($Lines -join "`n").Trim()
    if (-not $text) { return @() }
    @($text -split "\n\s*\n" | ForEach-Object { ($_ -replace '\s*\n\s*', ' ').Trim() } | Where-Object { $_ })
}

$xml = [Xml.XmlDocument]::new()
$ns = @{
    msh     = 'http://msh'
    maml    = 'http://schemas.microsoft.com/maml/2004/10'
    command = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
    dev     = 'http://schemas.microsoft.com/maml/dev/2004/10'
}
function Add-Element {
    param($Parent, [string] $Prefix, [string] $Name, [string] $Text, [hashtable] $Attributes = @{})
    $element = $xml.CreateElement($Prefix, $Name, $ns[$Prefix])
    foreach ($key in $Attributes.Keys) { $element.SetAttribute($key, $Attributes[$key]) }
    if ($PSBoundParameters.ContainsKey('Text')) { $element.InnerText = $Text }
    [void] $Parent.AppendChild($element)
    $element
}
function Add-Paragraphs {
    param($Parent, [string[]] $Paragraphs)
    $description = Add-Element $Parent 'maml' 'description'
    foreach ($p in $Paragraphs) { [void] (Add-Element $description 'maml' 'para' $p) }
}

$root = $xml.CreateElement('helpItems', $ns.msh)
$root.SetAttribute('schema', 'maml')
foreach ($prefix in 'maml', 'command', 'dev') { $root.SetAttribute("xmlns:$prefix", $ns[$prefix]) }
[void] $xml.AppendChild($root)

# Parameters that many cmdlets share (-Environment, -ConfigPath, ...) are described once.
$sharedParamDocs = @{}
$sharedPage = Join-Path $DocsPath '_shared-parameters.md'
if (Test-Path $sharedPage) {
    foreach ($part in Split-Subsections (Get-Content $sharedPage)) { $sharedParamDocs[$part.Title.TrimStart('-')] = Get-Paragraphs $part.Lines }
}

$problems = [Collections.Generic.List[string]]::new()
foreach ($cmd in Get-Command -Module $module.Name -CommandType Cmdlet | Sort-Object Name) {
    $page = Join-Path $DocsPath "$($cmd.Name).md"
    if (-not (Test-Path $page)) { $problems.Add("$($cmd.Name): no page $page"); continue }
    $doc = Read-DocPage $page
    foreach ($required in 'SYNOPSIS', 'DESCRIPTION', 'EXAMPLES', 'PARAMETERS') {
        if (-not $doc.Contains($required)) { $problems.Add("$($cmd.Name): page lacks '## $required'") }
    }
    if ($problems.Count) { continue }

    $command = Add-Element $root 'command' 'command'
    $details = Add-Element $command 'command' 'details'
    [void] (Add-Element $details 'command' 'name' $cmd.Name)
    Add-Paragraphs $details (Get-Paragraphs $doc['SYNOPSIS'])
    [void] (Add-Element $details 'command' 'verb' $cmd.Verb)
    [void] (Add-Element $details 'command' 'noun' $cmd.Noun)
    Add-Paragraphs $command (Get-Paragraphs $doc['DESCRIPTION'])

    $paramDocs = @{}
    foreach ($name in $sharedParamDocs.Keys) { if ($cmd.Parameters.ContainsKey($name)) { $paramDocs[$name] = $sharedParamDocs[$name] } }
    foreach ($part in Split-Subsections $doc['PARAMETERS']) {
        $paramDocs[$part.Title.TrimStart('-')] = Get-Paragraphs $part.Lines
    }

    function Get-PipelineText($attributes) {
        $attributes = @($attributes | Where-Object { $null -ne $_ })
        $byValue = [bool]($attributes | Where-Object ValueFromPipeline)
        $byName = [bool]($attributes | Where-Object ValueFromPipelineByPropertyName)
        if ($byValue -and $byName) { 'True (ByValue, ByPropertyName)' }
        elseif ($byValue) { 'True (ByValue)' }
        elseif ($byName) { 'True (ByPropertyName)' }
        else { 'False' }
    }
    function New-ParameterElement($parent, $param, $attributes, [switch] $Full) {
        $attributes = @($attributes | Where-Object { $null -ne $_ })
        $mandatory = [bool]($attributes | Where-Object Mandatory)
        $positioned = @($attributes | Where-Object { $_.Position -ge 0 })
        $position = if ($positioned.Count) { $positioned[0].Position } else { $null }
        $type = $param.ParameterType
        $underlying = [Nullable]::GetUnderlyingType($type)
        if ($underlying) { $type = $underlying }
        $typeName = $type.Name
        $element = Add-Element $parent 'command' 'parameter' -Attributes @{
            required      = $mandatory.ToString().ToLowerInvariant()
            variableLength = 'true'
            globbing      = 'false'
            pipelineInput = (Get-PipelineText $attributes)
            position      = if ($null -ne $position) { "$position" } else { 'named' }
            aliases       = if ($param.Aliases.Count) { $param.Aliases -join ', ' } else { 'none' }
        }
        [void] (Add-Element $element 'maml' 'name' $param.Name)
        if ($Full) { Add-Paragraphs $element $paramDocs[$param.Name] }
        if ($typeName -ne 'SwitchParameter') {
            [void] (Add-Element $element 'command' 'parameterValue' $typeName -Attributes @{ required = $mandatory.ToString().ToLowerInvariant(); variableLength = 'false' })
        }
        if ($Full) {
            $typeElement = Add-Element $element 'dev' 'type'
            [void] (Add-Element $typeElement 'maml' 'name' $type.FullName)
        }
    }

    $syntax = Add-Element $command 'command' 'syntax'
    foreach ($set in $cmd.ParameterSets) {
        $item = Add-Element $syntax 'command' 'syntaxItem'
        [void] (Add-Element $item 'maml' 'name' $cmd.Name)
        foreach ($p in $set.Parameters | Where-Object Name -NotIn $common) {
            $meta = $cmd.Parameters[$p.Name]
            $attrs = $meta.Attributes | Where-Object { $_ -is [Management.Automation.ParameterAttribute] -and ($_.ParameterSetName -eq $set.Name -or $_.ParameterSetName -eq '__AllParameterSets') }
            New-ParameterElement $item $meta $attrs
        }
    }

    $parameters = Add-Element $command 'command' 'parameters'
    foreach ($meta in $cmd.Parameters.Values | Where-Object Name -NotIn $common | Sort-Object Name) {
        if (-not $paramDocs.ContainsKey($meta.Name) -or -not $paramDocs[$meta.Name]) {
            $problems.Add("$($cmd.Name): parameter -$($meta.Name) is not documented under '## PARAMETERS'")
            continue
        }
        $attrs = $meta.Attributes | Where-Object { $_ -is [Management.Automation.ParameterAttribute] }
        New-ParameterElement $parameters $meta $attrs -Full
    }
    foreach ($documented in $paramDocs.Keys) {
        if (-not $cmd.Parameters.ContainsKey($documented)) { $problems.Add("$($cmd.Name): page documents -$documented, which the cmdlet does not have") }
    }

    $inputs = Add-Element $command 'command' 'inputTypes'
    foreach ($part in Split-Subsections ($doc['INPUTS'] ?? @())) {
        $inputType = Add-Element $inputs 'command' 'inputType'
        $type = Add-Element $inputType 'dev' 'type'
        [void] (Add-Element $type 'maml' 'name' $part.Title)
        Add-Paragraphs $inputType (Get-Paragraphs $part.Lines)
    }
    $outputs = Add-Element $command 'command' 'returnValues'
    foreach ($part in Split-Subsections ($doc['OUTPUTS'] ?? @())) {
        $returnValue = Add-Element $outputs 'command' 'returnValue'
        $type = Add-Element $returnValue 'dev' 'type'
        [void] (Add-Element $type 'maml' 'name' $part.Title)
        Add-Paragraphs $returnValue (Get-Paragraphs $part.Lines)
    }
    if ($doc.Contains('NOTES')) {
        $alert = Add-Element (Add-Element $command 'maml' 'alertSet') 'maml' 'alert'
        foreach ($p in Get-Paragraphs $doc['NOTES']) { [void] (Add-Element $alert 'maml' 'para' $p) }
    }

    $examples = Add-Element $command 'command' 'examples'
    $exampleParts = @(Split-Subsections $doc['EXAMPLES'])
    if ($exampleParts.Count -eq 0) { $problems.Add("$($cmd.Name): no '### Example' under '## EXAMPLES'") }
    foreach ($part in $exampleParts) {
        $text = $part.Lines -join "`n"
        if ($text -notmatch '(?s)```(?:powershell)?\s*\n(.*?)\n```(.*)$') { $problems.Add("$($cmd.Name): example '$($part.Title)' has no code block"); continue }
        $example = Add-Element $examples 'command' 'example'
        [void] (Add-Element $example 'maml' 'title' "--- $($part.Title) ---")
        [void] (Add-Element $example 'dev' 'code' $Matches[1].Trim())
        $remarks = Add-Element $example 'dev' 'remarks'
        foreach ($p in Get-Paragraphs ($Matches[2] -split "`n")) { [void] (Add-Element $remarks 'maml' 'para' $p) }
    }

    $links = Add-Element $command 'command' 'relatedLinks'
    foreach ($line in ($doc['RELATED LINKS'] ?? @()) | Where-Object { $_ -match '^\s*-\s*(.+)$' }) {
        $link = Add-Element $links 'maml' 'navigationLink'
        [void] (Add-Element $link 'maml' 'linkText' (($line -replace '^\s*-\s*', '') -replace '\[([^\]]+)\]\([^)]*\)', '$1').Trim())
    }
}

if ($problems.Count) {
    throw "Cmdlet help is incomplete:`n  " + ($problems -join "`n  ")
}
New-Item -ItemType Directory -Force (Split-Path $OutFile) | Out-Null
$settings = [Xml.XmlWriterSettings]@{ Indent = $true; Encoding = [Text.UTF8Encoding]::new($false) }
$writer = [Xml.XmlWriter]::Create($OutFile, $settings)
try { $xml.Save($writer) } finally { $writer.Dispose() }
