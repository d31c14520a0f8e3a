import type { ScriptParts } from './common.js';

/**
 * One checkpoint operation on a batch of VMs (save, list, revert, delete), each VM's checkpoints
 * read back afterwards, oldest first. `save` without a name takes snap-N above the VM's highest
 * snap-N; revert and delete without a name act on the newest checkpoint. A save is refused when
 * the volume of the VM's disk has less than minFreeBytes free (Hyper-V pauses a VM whose AVHDX
 * cannot grow: Paused-Critical). --type sets the VM's CheckpointType first (a lasting VM setting).
 */
export const snapshotVms: ScriptParts = {
  name: 'snapshot_vms',
  synopsis: 'Saves, lists, applies or removes checkpoints; one result per VM.',
  body: String.raw`
function Get-LabctlCheckpoints {
  param($Vm)
  return @(Hyper-V\Get-VMSnapshot -VM $Vm | Sort-Object -Property CreationTime | ForEach-Object {
    [ordered]@{ name = [string]$_.Name; id = $_.Id.ToString(); created = $_.CreationTime.ToUniversalTime().ToString('o'); parent = [string]$_.ParentSnapshotName }
  })
}

function Invoke-LabctlOperation {
  param($In)
  $all = @(Hyper-V\Get-VM)
  $volumes = @()
  if ($In.action -eq 'save' -and $null -ne $In.minFreeBytes) { try { $volumes = @(Get-CimInstance -ClassName Win32_Volume) } catch { } }
  $results = @(foreach ($spec in @($In.vms)) {
    try {
      $vm = Find-LabctlVm -All $all -Id $spec.id -Name $spec.name
      if (-not $vm) { throw "the VM does not exist on this host" }
      $before = @(Get-LabctlCheckpoints -Vm $vm)
      $target = $null
      if ($In.action -eq 'save') {
        $target = [string]$In.name
        if (-not $target) {
          $highest = 0
          foreach ($one in $before) { if ($one.name -match '^snap-(\d{1,9})$') { $highest = [math]::Max($highest, [int]$Matches[1]) } }
          $target = 'snap-' + ($highest + 1)
        }
        if (@($before | Where-Object { $_.name -eq $target }).Count -gt 0) { throw "the VM already has a checkpoint named $target" }
        if ($null -ne $In.minFreeBytes) {
          $dir = [string]$vm.Path
          $disk = @(Hyper-V\Get-VMHardDiskDrive -VM $vm | Where-Object { $_.Path }) | Select-Object -First 1
          if ($disk) { $dir = Split-Path -Parent ([string]$disk.Path) }
          $space = Get-LabctlVolumeSpace -Dir $dir -Volumes $volumes
          if ($null -ne $space.freeBytes -and [long]$space.freeBytes -lt [long]$In.minFreeBytes) {
            throw "only $([long]$space.freeBytes) bytes free on $($space.root), under the $([long]$In.minFreeBytes) a checkpoint needs; a VM whose disk cannot grow is paused (Paused-Critical)"
          }
        }
        if ($In.type) { Hyper-V\Set-VM -VM $vm -CheckpointType ([string]$In.type) }
        Hyper-V\Checkpoint-VM -VM $vm -SnapshotName $target
      } elseif ($In.action -ne 'list') {
        $entry = if ($In.name) { @($before | Where-Object { $_.name -eq [string]$In.name }) | Select-Object -First 1 } else { $before | Select-Object -Last 1 }
        if (-not $entry) { throw $(if ($In.name) { "the VM has no checkpoint named $([string]$In.name)" } else { 'the VM has no checkpoints' }) }
        $target = $entry.name
        $checkpoint = Hyper-V\Get-VMSnapshot -VM $vm | Where-Object { $_.Id.ToString() -eq $entry.id }
        if ($In.action -eq 'revert') { Hyper-V\Restore-VMSnapshot -VMSnapshot $checkpoint -Confirm:$false }
        else { Hyper-V\Remove-VMSnapshot -VMSnapshot $checkpoint -Confirm:$false }
      }
      $now = Hyper-V\Get-VM -Id $vm.Id
      [ordered]@{ name = [string]$spec.name; ok = $true; snapshot = $target; snapshots = @(Get-LabctlCheckpoints -Vm $now); state = $now.State.ToString() }
    } catch {
      [ordered]@{ name = [string]$spec.name; ok = $false; error = (ConvertTo-LabctlError -Record $_) }
    }
  })
  return [ordered]@{ vms = $results }
}
`,
};
