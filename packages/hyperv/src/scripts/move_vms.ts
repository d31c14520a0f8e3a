import type { ScriptParts } from './common.js';

/**
 * Live migration of a batch of VMs from this host (`labctl migrate` / `evacuate` on Hyper-V), in
 * two modes:
 * - `facts` (read-only, run on the source and on the destination before anything moves): the
 *   host's live-migration settings, its switches and free memory, the free space where storage
 *   would go, and for each VM asked about its state, memory, switches, disks and their size. The provider turns
 *   these into the preflight's findings, each with the command that fixes it.
 * - `move`: `Move-VM -DestinationHost` for each VM in turn (with `-IncludeStorage
 *   -DestinationStoragePath <path>\<vm>` when storage is not shared), one result per VM with the
 *   time it took. A VM that is not here any more is reported as such (a re-run after a move).
 *
 * Input: `{ mode, vms: [{name, id}], destination?, includeStorage?, storagePath? }`.
 */
export const moveVms: ScriptParts = {
  name: 'move_vms',
  synopsis: 'Reads what live migration needs on this host, or moves VMs to another host with Move-VM.',
  body: String.raw`
function Get-LabctlMigrationHost {
  <#
  .SYNOPSIS
  This host's live-migration settings, with its switches, free memory and default disk path.
  #>
  $facts = Get-LabctlMigrationSettings
  $os = Get-CimInstance -ClassName Win32_OperatingSystem
  $facts.freeMemoryBytes = [long]$os.FreePhysicalMemory * 1024
  $facts.switches = @(Hyper-V\Get-VMSwitch | ForEach-Object { [string]$_.Name })
  $facts.virtualHardDiskPath = [string](Hyper-V\Get-VMHost).VirtualHardDiskPath
  return $facts
}

function Invoke-LabctlOperation {
  param($In)
  $all = @(Hyper-V\Get-VM)
  $out = [ordered]@{ host = (Get-LabctlMigrationHost); vms = @() }
  if ([string]$In.mode -eq 'facts') {
    # Where storage would go here: the lab's path for this host, else the host's default.
    $target = if ($In.storagePath) { [string]$In.storagePath } else { [string]$out.host.virtualHardDiskPath }
    $volumes = @()
    try { $volumes = @(Get-CimInstance -ClassName Win32_Volume) } catch { }
    $out.storage = Get-LabctlVolumeSpace -Dir $target -Volumes $volumes
    $out.vms = @(foreach ($spec in @($In.vms)) {
      $vm = Find-LabctlVm -All $all -Id $spec.id -Name $spec.name
      if (-not $vm) { [ordered]@{ name = [string]$spec.name; exists = $false }; continue }
      $memory = [long]$vm.MemoryStartup
      if ([long]$vm.MemoryAssigned -gt $memory) { $memory = [long]$vm.MemoryAssigned }
      [ordered]@{
        name        = [string]$spec.name
        exists      = $true
        state       = $vm.State.ToString()
        memoryBytes = $memory
        switches    = @(Hyper-V\Get-VMNetworkAdapter -VM $vm | Where-Object { $_.SwitchName } | ForEach-Object { [string]$_.SwitchName })
        disks       = @(Hyper-V\Get-VMHardDiskDrive -VM $vm | Where-Object { $_.Path } | ForEach-Object { [string]$_.Path })
        diskBytes   = [long](@(Hyper-V\Get-VMHardDiskDrive -VM $vm | Where-Object { $_.Path } | ForEach-Object { [long](Hyper-V\Get-VHD -Path $_.Path).FileSize }) | Measure-Object -Sum).Sum
      }
    })
    return $out
  }
  $destination = [string]$In.destination
  $out.vms = @(foreach ($spec in @($In.vms)) {
    $key = [string]$spec.name
    $started = [DateTime]::UtcNow
    try {
      $vm = Find-LabctlVm -All $all -Id $spec.id -Name $spec.name
      if (-not $vm) { [ordered]@{ name = $key; ok = $true; moved = $false; state = 'not_here' }; continue }
      $state = $vm.State.ToString()
      $move = @{ VM = $vm; DestinationHost = $destination }
      if ($In.includeStorage) {
        $move.IncludeStorage = $true
        $move.DestinationStoragePath = ([string]$In.storagePath).TrimEnd([char]92) + [char]92 + $vm.Name
      }
      Hyper-V\Move-VM @move
      [ordered]@{ name = $key; ok = $true; moved = $true; state = $state; live = ($state -eq 'Running'); durationMs = [long]([DateTime]::UtcNow - $started).TotalMilliseconds }
    } catch {
      [ordered]@{ name = $key; ok = $false; error = (ConvertTo-LabctlError -Record $_) }
    }
  })
  return $out
}
`,
};
