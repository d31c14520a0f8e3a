# Shared by the simulator's modules (Hyper-V, LabctlWindowsSim): the state directory, the scenario,
# the host's volumes as PSDrives, Windows paths to files in the state directory, file headers.
Set-StrictMode -Version 3
$script:SimDir = $env:LABCTL_HYPERV_SIM
if (-not $script:SimDir) { throw 'Hyper-V simulator: set LABCTL_HYPERV_SIM to the simulated host''s state directory' }
$script:Dll = if ($env:LABCTL_HYPERV_SIM_DLL) { $env:LABCTL_HYPERV_SIM_DLL } else { Join-Path $script:SimDir 'hyperv-sim.dll' }
if (-not ('Microsoft.HyperV.PowerShell.VirtualMachine' -as [type])) {
  if (-not (Test-Path -LiteralPath $script:Dll)) {
    # Compile to a temporary name and rename, so concurrent first runs never load half a file.
    $tmp = "$($script:Dll).$PID.tmp"
    Add-Type -Path (Join-Path $PSScriptRoot 'HyperVTypes.cs') -OutputAssembly $tmp -OutputType Library
    Move-Item -LiteralPath $tmp -Destination $script:Dll -Force
  }
  Add-Type -Path $script:Dll
}

$script:VhdTag = 'LABCTL-SIM-VHD '
$script:VmcxTag = 'LABCTL-SIM-VMCX '
$script:KvpId = '2A34B1C2-FD73-4043-8A5B-DD2159BC743F'

# The host's volumes as PSDrives (C: to F: always, and any other letter the state has).
$script:Letters = [Collections.Generic.HashSet[string]]::new([string[]]@('C', 'D', 'E', 'F'))
$script:DriveRoot = Join-Path $script:SimDir 'drives'
if (Test-Path -LiteralPath $script:DriveRoot) { foreach ($d in Get-ChildItem -LiteralPath $script:DriveRoot -Directory) { if ($d.Name -match '^[A-Z]$') { [void]$script:Letters.Add($d.Name) } } }
foreach ($letter in $script:Letters) {
  $root = Join-Path $script:DriveRoot $letter
  [void][IO.Directory]::CreateDirectory($root)
  if (-not (Get-PSDrive -Name $letter -ErrorAction SilentlyContinue)) { New-PSDrive -Name $letter -PSProvider FileSystem -Root $root -Scope Global | Out-Null }
}

function Get-SimScenario {
  # Knobs: failCreate [names] (New-VM fails), fail {cmdlet: AccessDenied|DiskFull|OperationFailed},
  # kvp {vm: none|nocontact|disabled|late}, freeMemoryBytes, freeBytes, secureBootTemplates,
  # uptimeOffset, failSetVMHost, logicalProcessors, throwOn (script name: Get-VM fails), locale (de).
  $file = Join-Path $script:SimDir 'scenario.json'
  if (-not (Test-Path -LiteralPath $file)) { return @{} }
  $text = [IO.File]::ReadAllText($file)
  if (-not $text.Trim()) { return @{} }
  return (ConvertFrom-Json -InputObject $text -AsHashtable)
}
$script:Scenario = Get-SimScenario

function Test-SimKey($Dictionary, $Key) {
  # Works for Hashtable, [ordered] and ConvertFrom-Json -AsHashtable's OrderedHashtable alike.
  return ($null -ne $Dictionary) -and (@($Dictionary.Keys) -contains $Key)
}

function Get-SimKnob([string]$Name, $Default) {
  if ((Test-SimKey $script:Scenario $Name) -and $null -ne $script:Scenario[$Name]) { return $script:Scenario[$Name] }
  return $Default
}

function ConvertTo-SimLocalPath([string]$Path, [string]$StateDir = $script:SimDir) {
  # D:\a\b -> <state>/drives/D/a/b (of this host, or of another simulated host's state directory).
  # Anything else (UNC, relative) has no volume here.
  if ($Path -match '^([A-Za-z]):[\\/](.*)$') {
    return (Join-Path (Join-Path (Join-Path $StateDir 'drives') $Matches[1].ToUpperInvariant()) ($Matches[2] -replace '\\', '/'))
  }
  return $null
}

function Read-SimHeader([string]$LocalPath, [string]$Tag) {
  $stream = [IO.File]::OpenRead($LocalPath)
  try {
    $reader = [IO.StreamReader]::new($stream)
    $line = $reader.ReadLine()
  } finally { $stream.Dispose() }
  if (-not $line -or -not $line.StartsWith($Tag)) { return $null }
  return (ConvertFrom-Json -InputObject $line.Substring($Tag.Length) -AsHashtable)
}

