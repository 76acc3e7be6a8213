<#
.SYNOPSIS
    Packages a built module: a zip for Azure Automation and a .nupkg for the PowerShell Gallery.
.DESCRIPTION
    Azure Automation wants a zip named like the module, holding a folder of that name with the
    manifest inside, at most 100 MB, every path shorter than 140 characters. The .nupkg is made
    by Compress-PSResource (PSResourceGet, bundled with pwsh 7.4+).
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $DestinationPath
)
$ErrorActionPreference = 'Stop'
$ModulePath = (Resolve-Path $ModulePath).Path
$name = Split-Path $ModulePath -Leaf
New-Item -ItemType Directory -Force $DestinationPath | Out-Null

$tooLong = Get-ChildItem $ModulePath -Recurse -File |
    ForEach-Object { "$name/" + [IO.Path]::GetRelativePath($ModulePath, $_.FullName).Replace('\', '/') } |
    Where-Object Length -GE 140
if ($tooLong) { throw "Paths of 140 characters or more break Azure Automation: $($tooLong -join ', ')" }

$zip = Join-Path $DestinationPath "$name.zip"
if (Test-Path $zip) { Remove-Item $zip }
Compress-Archive -Path $ModulePath -DestinationPath $zip
$sizeMb = (Get-Item $zip).Length / 1MB
if ($sizeMb -gt 100) { throw ('{0}.zip is {1:N1} MB; Azure Automation accepts at most 100 MB.' -f $name, $sizeMb) }

Get-ChildItem $DestinationPath -Filter "$name.*.nupkg" | Remove-Item
Compress-PSResource -Path $ModulePath -DestinationPath $DestinationPath
[pscustomobject]@{
    Zip    = $zip
    ZipMB  = [Math]::Round($sizeMb, 1)
    Nupkg  = (Get-ChildItem $DestinationPath -Filter "$name.*.nupkg" | Select-Object -First 1).FullName
}
