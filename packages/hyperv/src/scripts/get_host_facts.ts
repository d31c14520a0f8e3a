import type { ScriptParts } from './common.js';

/**
 * Preflight facts: everything the refusals and warnings in preflight.ts decide on, gathered in one
 * round trip and changing nothing. Missing things are facts (exists = false), not errors.
 */
export const getHostFacts: ScriptParts = {
  name: 'get_host_facts',
  synopsis:
    'Reports the Hyper-V module, free memory and disk space, golden disks, switches and VM names; changes nothing.',
  body: String.raw`
function Get-LabctlWritableBy {
  <#
  .SYNOPSIS
  Broad groups (Everyone, Users, Authenticated Users) that may write to a file.
  #>
  param([string]$Path)
  $broad = @('S-1-1-0', 'S-1-5-32-545', 'S-1-5-11')
  # Only the bits that change data: Modify and FullControl include Read, which is harmless.
  $writeRights = [Security.AccessControl.FileSystemRights]'WriteData, AppendData'
  $found = @()
  foreach ($rule in (Get-Acl -LiteralPath $Path).Access) {
    if ($rule.AccessControlType -ne 'Allow') { continue }
    if (($rule.FileSystemRights -band $writeRights) -eq 0) { continue }
    try { $sid = $rule.IdentityReference.Translate([Security.Principal.SecurityIdentifier]).Value } catch { continue }
    if ($broad -contains $sid) { $found += [string]$rule.IdentityReference }
  }
  return $found
}

function Invoke-LabctlOperation {
  param($In)
  $facts = [ordered]@{
    computerName = [string]$env:COMPUTERNAME
    psVersion    = $PSVersionTable.PSVersion.ToString()
    hyperVModule = $false
  }
  if (-not (Get-Module -ListAvailable -Name Hyper-V)) { return $facts }
  $facts.hyperVModule = $true
  $vmHost = Hyper-V\Get-VMHost
  $os = Get-CimInstance -ClassName Win32_OperatingSystem
  $facts.memoryCapacityBytes = [long]$vmHost.MemoryCapacity
  $facts.freeMemoryBytes = [long]$os.FreePhysicalMemory * 1024
  $facts.logicalProcessors = [int]$vmHost.LogicalProcessorCount
  $facts.virtualHardDiskPath = [string]$vmHost.VirtualHardDiskPath
  $facts.virtualMachinePath = [string]$vmHost.VirtualMachinePath
  $facts.secureBootTemplates = @()
  try { $facts.secureBootTemplates = @($vmHost.SecureBootTemplates | Where-Object { $_ } | ForEach-Object { [string]$_.Name }) } catch { }
  $facts.secureBootTemplateParameter = (Get-Command Hyper-V\Set-VMFirmware).Parameters.ContainsKey('SecureBootTemplate')

  $all = @(Hyper-V\Get-VM)
  $drives = @()
  foreach ($vm in $all) {
    foreach ($drive in @(Hyper-V\Get-VMHardDiskDrive -VM $vm)) {
      $drives += [pscustomobject]@{ vm = $vm.Name; state = $vm.State.ToString(); path = [string]$drive.Path }
    }
  }

  # One try per golden disk: an unreadable one is a fact about that disk, not a failed run.
  $facts.goldens = @(foreach ($path in @($In.goldens)) {
    $golden = [ordered]@{ path = [string]$path; exists = $false }
    try {
      $golden.exists = (Test-Path -LiteralPath $path -PathType Leaf)
      if (-not $golden.exists -and ([string]$path).StartsWith('\\')) {
        # A share this session cannot see: with key-based SSH logon, Windows OpenSSH has no network
        # credentials, so the share may well exist; say so instead of "does not exist".
        $share = ([string]$path).Split([char]92)
        $golden.readable = $false
        $golden.reason = if ($share.Count -ge 4 -and (Test-Path -LiteralPath ('\\' + $share[2] + '\' + $share[3]))) { 'missing' } else { 'share not readable from this session' }
      }
      if ($golden.exists) {
        $vhd = Hyper-V\Get-VHD -Path $path
        $golden.vhdType = $vhd.VhdType.ToString()
        $golden.vhdFormat = $vhd.VhdFormat.ToString()
        $golden.parentPath = [string]$vhd.ParentPath
        $golden.sizeBytes = [long]$vhd.Size
        $golden.fileSizeBytes = [long]$vhd.FileSize
        $golden.attachedTo = @($drives | Where-Object { Test-LabctlSamePath $_.path $path } | ForEach-Object { [ordered]@{ vm = $_.vm; state = $_.state } })
        $golden.writableBy = @(Get-LabctlWritableBy -Path $path)
      }
    } catch {
      $golden.error = ConvertTo-LabctlError -Record $_
    }
    $golden
  })

  # Static MACs of every VM on the host, to find duplicates with the lab's (dynamic ones come from
  # the host's pool and are unique per host).
  $facts.macs = @(foreach ($vm in $all) {
    foreach ($adapter in @(Hyper-V\Get-VMNetworkAdapter -VM $vm)) {
      if (-not $adapter.DynamicMacAddressEnabled) { [ordered]@{ vm = [string]$vm.Name; mac = [string]$adapter.MacAddress; lab = $(if ($m = Get-LabctlMarker -Vm $vm) { [string]$m.lab } else { $null }) } }
    }
  })

  $switches = @(Hyper-V\Get-VMSwitch)
  $facts.switches = @(foreach ($name in @($In.switches)) {
    $match = @($switches | Where-Object { $_.Name -eq $name })
    $entry = [ordered]@{ name = [string]$name; exists = ($match.Count -gt 0) }
    if ($entry.exists) { $entry.switchType = $match[0].SwitchType.ToString() }
    $entry
  })

  $facts.names = @(foreach ($name in @($In.names)) {
    $vm = Find-LabctlVm -All $all -Name $name
    $entry = [ordered]@{ name = [string]$name; exists = ($null -ne $vm) }
    if ($vm) {
      $marker = Get-LabctlMarker -Vm $vm
      $entry.state = $vm.State.ToString()
      $entry.lab = if ($marker) { [string]$marker.lab } else { $null }
    }
    $entry
  })

  $dirs = @($In.diskDirs | Where-Object { $_ })
  if ($dirs.Count -eq 0) { $dirs = @([string]$vmHost.VirtualHardDiskPath) }
  $allVolumes = @()
  try { $allVolumes = @(Get-CimInstance -ClassName Win32_Volume) } catch { }
  $facts.volumes = @(foreach ($dir in $dirs) { Get-LabctlVolumeSpace -Dir ([string]$dir) -Volumes $allVolumes })
  return $facts
}
`,
};
