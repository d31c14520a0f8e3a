import type { ScriptParts } from './common.js';

/**
 * A VM copied out in Hyper-V's own export layout (`Export-VM`: <dir>\<name>\Virtual Machines\<ID>.vmcx
 * and Virtual Hard Disks\ with the whole chain), plus labctl's vm.json and SHA256SUMS written last,
 * and imported back as a copy (`Import-VM -Copy -GenerateNewId`) into the lab's disk folder. Both
 * run on the host; the bundle never crosses the wire. SHA256SUMS uses `/` between folders, as
 * sha256sum does.
 */
const BUNDLE_HELPERS = String.raw`
function Get-LabctlBundleProblem {
  <#
  .SYNOPSIS
  Why a folder is not a complete labctl export (a file missing or changed), or $null.
  #>
  param([string]$Root)
  $sums = Join-LabctlPath $Root 'SHA256SUMS'
  if (-not (Test-Path -LiteralPath $sums -PathType Leaf)) { return 'no SHA256SUMS: not a labctl export, or an unfinished one' }
  $lines = @(Get-Content -LiteralPath $sums | Where-Object { $_ })
  if ($lines.Count -eq 0) { return 'SHA256SUMS lists no files' }
  foreach ($line in $lines) {
    if ($line -notmatch '^([0-9a-f]{64})  ((?:[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}/){0,3}[A-Za-z0-9][A-Za-z0-9 ._-]{0,127})$') { return 'SHA256SUMS has a line that is not "SHA256  FILE"' }
    $hash = $Matches[1]; $file = $Matches[2]
    $full = Join-LabctlPath $Root ($file.Replace('/', [string][char]92))
    if (-not (Test-Path -LiteralPath $full -PathType Leaf)) { return "$file is missing" }
    if ((Get-FileHash -LiteralPath $full -Algorithm SHA256).Hash.ToLowerInvariant() -ne $hash) { return "$file does not match its SHA-256 in SHA256SUMS" }
  }
  return $null
}
`;

export const exportVm: ScriptParts = {
  name: 'export_vm',
  synopsis: "Exports a stopped VM (Export-VM) with labctl's description and SHA256SUMS.",
  body:
    String.raw`${BUNDLE_HELPERS}
function Invoke-LabctlOperation {
  param($In)
  $vm = Find-LabctlVm -All @(Hyper-V\Get-VM) -Id $In.vm.id -Name $In.vm.name
  if (-not $vm) { throw 'the VM does not exist on this host' }
  $root = Join-LabctlPath ([string]$In.dir) ([string]$vm.Name)
  $unfinished = $root + '.labctl-partial'
  if (Test-Path -LiteralPath $root) {
    if (-not (Get-LabctlBundleProblem -Root $root)) { return [ordered]@{ path = $root; written = $false } }
    if (-not (Test-Path -LiteralPath $unfinished)) { throw "$root exists and is not an unfinished labctl export; labctl leaves it alone" }
    Remove-Item -LiteralPath $root -Recurse -Force
  }
  if ($vm.State.ToString() -ne 'Off') { throw "the VM is $($vm.State.ToString()); a copy of its disks would not be consistent: stop it first" }
  if (-not (Test-Path -LiteralPath ([string]$In.dir))) { New-Item -ItemType Directory -Path ([string]$In.dir) -Force | Out-Null }
  New-Item -ItemType File -Path $unfinished -Force | Out-Null
  Hyper-V\Export-VM -VM $vm -Path ([string]$In.dir)
  $definition = @(Get-ChildItem -LiteralPath (Join-LabctlPath $root 'Virtual Machines') -Filter '*.vmcx' -File) | Select-Object -First 1
  $adapter = @(Hyper-V\Get-VMNetworkAdapter -VM $vm) | Select-Object -First 1
  $marker = Get-LabctlMarker -Vm $vm
  $top = [string](@(Hyper-V\Get-VMHardDiskDrive -VM $vm | Where-Object { $_.Path -and -not ($marker -and $marker.seed -and (Test-LabctlSamePath ([string]$_.Path) ([string]$marker.seed))) }) | Select-Object -First 1).Path
  $description = $In.description
  $description.cpus = [int]$vm.ProcessorCount
  $description.memoryMiB = [int]($vm.MemoryStartup / 1048576)
  $description.mac = ([string]$adapter.MacAddress -replace '(..)(?!$)', '$1:')
  $description.network = [string]$adapter.SwitchName
  $description.options = [ordered]@{ generation = [int]$vm.Generation }
  $description.files = [ordered]@{ disk = 'Virtual Hard Disks/' + (Get-LabctlLeaf $top); definition = 'Virtual Machines/' + $definition.Name }
  $description.exportedAt = [DateTime]::UtcNow.ToString('o')
  # Cmdlets, not [IO.File]: they resolve the host's paths as PowerShell does (drives, shares). ASCII
  # JSON reads the same in Windows PowerShell 5.1 and PowerShell 7.
  Set-Content -LiteralPath (Join-LabctlPath $root 'vm.json') -Value (ConvertTo-LabctlAsciiJson -Value $description) -Encoding ASCII -NoNewline
  # Relative to the folder as the file system names it (FullName is the provider's path, not $root).
  $prefix = (Get-Item -LiteralPath $root).FullName.TrimEnd([char]92, [char]47).Length + 1
  $files = @(Get-ChildItem -LiteralPath $root -Recurse -File | Where-Object { $_.Name -ne 'SHA256SUMS' } | Sort-Object -Property FullName | ForEach-Object {
    [ordered]@{ name = $_.FullName.Substring($prefix).Replace([string][char]92, '/'); bytes = $_.Length; sha256 = (Get-FileHash -LiteralPath $_.FullName -Algorithm SHA256).Hash.ToLowerInvariant() }
  })
  Set-Content -LiteralPath (Join-LabctlPath $root 'SHA256SUMS') -Value ((($files | ForEach-Object { $_.sha256 + '  ' + $_.name }) -join "` +
    '`n' +
    String.raw`") + "` +
    '`n' +
    String.raw`") -Encoding ASCII -NoNewline
  Remove-Item -LiteralPath $unfinished -Force
  return [ordered]@{ path = $root; written = $true; files = $files }
}
`,
};

export const importVm: ScriptParts = {
  name: 'import_vm',
  synopsis: 'Checks a labctl export and, unless checkOnly, imports it as a copy into the lab.',
  body: String.raw`${BUNDLE_HELPERS}
function Invoke-LabctlOperation {
  param($In)
  $root = [string]$In.dir
  $problem = Get-LabctlBundleProblem -Root $root
  if ($problem) { return [ordered]@{ problem = $problem } }
  $text = Get-Content -LiteralPath (Join-LabctlPath $root 'vm.json') -Raw
  if ($In.checkOnly) { return [ordered]@{ description = $text } }
  $description = ConvertFrom-Json -InputObject $text
  if (@(Hyper-V\Get-VM | Where-Object { $_.Name -eq [string]$description.name }).Count -gt 0) { throw "a VM named $([string]$description.name) already exists on this host" }
  $definition = Join-LabctlPath $root ([string]$description.files.definition).Replace('/', [string][char]92)
  $diskDir = [string]$In.diskDir
  if (-not $diskDir) { $diskDir = Join-LabctlPath ([string](Hyper-V\Get-VMHost).VirtualHardDiskPath) ([string]$In.lab) }
  $vm = Hyper-V\Import-VM -Path $definition -Copy -GenerateNewId -VhdDestinationPath $diskDir -VirtualMachinePath $diskDir
  # The copied chain is this VM's own, down to its bottom disk; its seed keeps labctl's name for it.
  $seedName = [string]$description.name + '.seed.vhdx'
  $drives = @(Hyper-V\Get-VMHardDiskDrive -VM $vm | ForEach-Object { [string]$_.Path })
  $seed = @($drives | Where-Object { (Get-LabctlLeaf $_) -eq $seedName }) | Select-Object -First 1
  $top = @($drives | Where-Object { $_ -ne $seed }) | Select-Object -First 1
  $bottom = $top
  for ($i = 0; $i -lt 64; $i++) {
    $parent = [string](Hyper-V\Get-VHD -Path $bottom).ParentPath
    if (-not $parent) { break }
    $bottom = $parent
  }
  $fields = [ordered]@{ lab = [string]$In.lab; group = [string]$description.group; disk = $bottom }
  if ($seed) { $fields.seed = $seed }
  Hyper-V\Set-VM -VM $vm -Notes ('labctl:' + (ConvertTo-Json -InputObject $fields -Compress))
  $adapter = @(Hyper-V\Get-VMNetworkAdapter -VM $vm) | Select-Object -First 1
  return [ordered]@{ id = $vm.Id.ToString(); vhdPath = $bottom; top = $top; seed = $seed; generation = [int]$vm.Generation; mac = [string]$adapter.MacAddress; state = $vm.State.ToString() }
}
`,
};
