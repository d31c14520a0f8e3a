/**
 * What every labctl Hyper-V script shares: the header (param block, strict error handling, quiet
 * progress), the helper functions, and the result envelope printed between markers. A script is
 * self-contained (it is sent whole to the host), so the helpers are included in each one.
 *
 * Contract (docs/hyperv.md): input is one JSON document, `-InputJson TEXT` or `-InputPath FILE`,
 * decoded with ConvertFrom-Json; user values never become code. Output is exactly one JSON object
 * `{"ok":true,"data":…}` or `{"ok":false,"error":{…}}` between `<<<LABCTL-JSON` and `LABCTL-JSON>>>`;
 * exit status 1 on failure. Enums, GUIDs and dates are converted to strings inside the script
 * because Windows PowerShell 5.1 and PowerShell 7 serialize them differently.
 */
import { RESULT_END, RESULT_START } from '@labctl/remote/powershell';

export const HELPERS = String.raw`
function ConvertTo-LabctlError {
  <#
  .SYNOPSIS
  An ErrorRecord as a small object: message, exception type, FullyQualifiedErrorId, category.
  Callers decide on type and id, never on the (localized) message.
  #>
  param($Record)
  [ordered]@{
    message  = [string]$Record.Exception.Message
    type     = [string]$Record.Exception.GetType().FullName
    fqid     = [string]$Record.FullyQualifiedErrorId
    category = [string]$Record.CategoryInfo.Category
  }
}

function Get-LabctlMarker {
  <#
  .SYNOPSIS
  The labctl marker in a VM's Notes ("labctl:" followed by one line of JSON), or $null.
  #>
  param($Vm)
  $notes = [string]$Vm.Notes
  $at = $notes.IndexOf('labctl:')
  if ($at -lt 0) { return $null }
  $line = $notes.Substring($at + 7).Split([char]10)[0]
  try { return (ConvertFrom-Json -InputObject $line) } catch { return $null }
}

function Test-LabctlSamePath {
  <#
  .SYNOPSIS
  Whether two Windows paths name the same file (full path, case-insensitive).
  #>
  param([string]$A, [string]$B)
  if (-not $A -or -not $B) { return $false }
  return [string]::Equals((Get-LabctlFullPath $A), (Get-LabctlFullPath $B), [StringComparison]::OrdinalIgnoreCase)
}

function Get-LabctlFullPath {
  <#
  .SYNOPSIS
  A Windows path made absolute (.. resolved) on Windows; elsewhere only separators normalized.
  #>
  param([string]$Path)
  $normal = $Path.Replace([char]47, [char]92)
  if ([IO.Path]::DirectorySeparatorChar -eq [char]92) { $normal = [IO.Path]::GetFullPath($normal) }
  return $normal.TrimEnd([char]92)
}

function Join-LabctlPath {
  <#
  .SYNOPSIS
  A directory and a name joined with a backslash: the host's paths are Windows paths wherever
  PowerShell runs ([IO.Path]::Combine would use the local separator).
  #>
  param([string]$Dir, [string]$Leaf)
  return $Dir.TrimEnd([char]92, [char]47) + [char]92 + $Leaf
}

function Write-LabctlGzipBase64File {
  <#
  .SYNOPSIS
  Writes base64-encoded gzip data, decompressed, to a new file (replacing labctl's own leftover of
  that name). .NET gets the provider path: a PowerShell path may be on a PSDrive it does not know.
  #>
  param([string]$Encoded, [string]$Path)
  $target = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($Path)
  $source = [System.IO.MemoryStream]::new([Convert]::FromBase64String($Encoded))
  $gzip = [System.IO.Compression.GZipStream]::new($source, [System.IO.Compression.CompressionMode]::Decompress)
  $out = [System.IO.File]::Create($target)
  try { $gzip.CopyTo($out) } finally { $out.Dispose(); $gzip.Dispose(); $source.Dispose() }
}

function Get-LabctlLeaf {
  param([string]$Path)
  return @($Path.Split([char[]]@([char]92, [char]47)))[-1]
}

function ConvertTo-LabctlAsciiJson {
  <#
  .SYNOPSIS
  JSON with every non-ASCII character as \uXXXX: Windows PowerShell 5.1 writes stdout in the
  console's code page, which mangles switch names and paths outside it; ASCII survives any page.
  #>
  param($Value)
  $json = ConvertTo-Json -InputObject $Value -Depth 10 -Compress
  return [regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
}

function Get-LabctlMigrationSettings {
  <#
  .SYNOPSIS
  The live-migration settings of this host, enums as names.
  #>
  $vmHost = Hyper-V\Get-VMHost
  $networks = $null
  try { $networks = @(Hyper-V\Get-VMMigrationNetwork | ForEach-Object { [string]$_.Subnet }) } catch { }
  [ordered]@{
    computerName       = [string]$env:COMPUTERNAME
    fqdn               = [string]$vmHost.FullyQualifiedDomainName
    migrationEnabled   = [bool]$vmHost.VirtualMachineMigrationEnabled
    authenticationType = $vmHost.VirtualMachineMigrationAuthenticationType.ToString()
    useAnyNetwork      = [bool]$vmHost.UseAnyNetworkForMigration
    migrationNetworks  = $networks
    maximumMigrations  = [int]$vmHost.MaximumVirtualMachineMigrations
  }
}

function Get-LabctlVolumeSpace {
  <#
  .SYNOPSIS
  Free space of the volume that holds a directory: the Win32_Volume whose mount point (a drive root,
  or a folder such as C:\ClusterStorage\Volume1\) is the longest prefix of the path. DriveInfo is
  wrong here: it throws on UNC paths and reports C: for Cluster Shared Volumes and mount points.
  A share's free space is not looked up: unknown, with the reason.
  #>
  param([string]$Dir, $Volumes)
  $entry = [ordered]@{ dir = $Dir; root = $null; freeBytes = $null; totalBytes = $null; unknown = $null }
  if ($Dir.StartsWith('\\')) { $entry.unknown = 'a network share: labctl does not look up its free space'; return $entry }
  $full = (Get-LabctlFullPath $Dir) + [char]92
  $best = $null
  foreach ($volume in $Volumes) {
    $name = [string]$volume.Name
    if (-not $name -or $name.StartsWith('\\')) { continue }
    if ($full.StartsWith($name, [StringComparison]::OrdinalIgnoreCase) -and (-not $best -or $name.Length -gt ([string]$best.Name).Length)) { $best = $volume }
  }
  if (-not $best) { $entry.unknown = 'no volume found for this path (Win32_Volume)'; return $entry }
  $entry.root = [string]$best.Name
  $entry.freeBytes = [long]$best.FreeSpace
  $entry.totalBytes = [long]$best.Capacity
  return $entry
}

function Find-LabctlVm {
  <#
  .SYNOPSIS
  A VM from the list by its Id when known (names can repeat), else by exact name (no wildcards).
  #>
  param($All, [string]$Id, [string]$Name)
  if ($Id) {
    $byId = @($All | Where-Object { $_.Id.ToString() -eq $Id })
    if ($byId.Count -gt 0) { return $byId[0] }
  }
  $byName = @($All | Where-Object { $_.Name -eq $Name })
  if ($byName.Count -gt 0) { return $byName[0] }
  return $null
}
`;

export interface ScriptParts {
  name: string;
  synopsis: string;
  /** Defines `function Invoke-LabctlOperation { param($In) … }` returning one hashtable. */
  body: string;
}

export function composeScript(parts: ScriptParts): string {
  return [
    `# labctl-script: ${parts.name}`,
    `# ${parts.synopsis}`,
    '# Input: one JSON document (-InputJson TEXT or -InputPath FILE). Output: one JSON object between markers.',
    'param([string]$InputJson, [string]$InputPath)',
    "$ErrorActionPreference = 'Stop'",
    "$ProgressPreference = 'SilentlyContinue'",
    "$WarningPreference = 'SilentlyContinue'",
    'try { [Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false } catch { }',
    // PowerShell 7 on Windows Server 2016 would load the Hyper-V module through implicit remoting
    // (Windows PowerShell compatibility) and hand back deserialized objects that Hyper-V cmdlets
    // refuse (PowerShell/PowerShell#14738): load it in-process instead.
    "if ($PSVersionTable.PSEdition -eq 'Core' -and (Get-Module -ListAvailable -Name Hyper-V)) { Import-Module -Name Hyper-V -SkipEditionCheck -ErrorAction SilentlyContinue }",
    HELPERS.trim(),
    parts.body.trim(),
    'try {',
    '  if ($InputPath) { $InputJson = [IO.File]::ReadAllText($InputPath) }',
    '  $labctlIn = ConvertFrom-Json -InputObject $InputJson',
    '  $labctlData = Invoke-LabctlOperation -In $labctlIn',
    '  $labctlOut = [ordered]@{ ok = $true; data = $labctlData }',
    '} catch {',
    '  $labctlOut = [ordered]@{ ok = $false; error = (ConvertTo-LabctlError -Record $_) }',
    '}',
    `Write-Output '${RESULT_START}'`,
    'ConvertTo-LabctlAsciiJson -Value $labctlOut',
    `Write-Output '${RESULT_END}'`,
    'if (-not $labctlOut.ok) { exit 1 }',
    'exit 0',
    '',
  ].join('\n');
}
