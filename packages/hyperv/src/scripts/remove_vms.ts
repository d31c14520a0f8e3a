import type { ScriptParts } from './common.js';

/**
 * Removes VMs of one lab and each VM's own disk. A disk is deleted only when it is the disk the VM's
 * own labctl marker (Notes) names (the state's path must agree), or, with the VM gone, a differencing
 * disk whose parent is one of the lab's golden disks; never a protected golden disk or one attached
 * to another VM.
 * Parents are never touched. A VM that is not there is a state ("not_created"), not an error; its
 * recorded disk is still cleaned up when it is left over from an interrupted run.
 */
export const removeVms: ScriptParts = {
  name: 'remove_vms',
  synopsis: "Removes a lab's VMs and their own differencing disks; never a golden or parent disk.",
  body: String.raw`
function Test-LabctlProtected {
  param([string]$Path, $Protected)
  foreach ($keep in @($Protected)) { if (Test-LabctlSamePath $Path $keep) { return $true } }
  return $false
}

function Get-LabctlChainTo {
  <#
  .SYNOPSIS
  The differencing chain from a VM's current disk down to a given disk, both included, or nothing
  when the chain does not lead there (at most 64 links).
  #>
  param([string]$Top, [string]$Bottom)
  if (-not $Bottom) { return @() }
  $chain = @()
  $current = $Top
  for ($i = 0; $i -lt 64 -and $current; $i++) {
    $chain += $current
    if (Test-LabctlSamePath $current $Bottom) { return $chain }
    $vhd = $null
    try { $vhd = Hyper-V\Get-VHD -Path $current } catch { return @() }
    if ([string]$vhd.VhdType -ne 'Differencing') { return @() }
    $current = [string]$vhd.ParentPath
  }
  return @()
}

function Invoke-LabctlOperation {
  param($In)
  $all = @(Hyper-V\Get-VM)
  $results = @(foreach ($spec in @($In.vms)) {
    try {
      $removedDisks = @()
      $keptDisks = @()
      $chainOf = @{}
      $vmFolder = $null
      $ownSeed = $null
      $ownBase = $null
      $vm = Find-LabctlVm -All $all -Id $spec.id -Name $spec.name
      $ownDisk = [string]$spec.vhdPath
      $removed = $false
      if ($vm) {
        $marker = Get-LabctlMarker -Vm $vm
        if (-not $marker -or [string]$marker.lab -ne [string]$In.lab) {
          throw (New-Object System.InvalidOperationException ('The VM "' + $spec.name + '" was not made by this lab; labctl leaves it alone.'))
        }
        # The state file is hand-editable: the VM's own Notes marker names its disk, and only that.
        $markerDisk = [string]$marker.disk
        if ($markerDisk) {
          if ($ownDisk -and -not (Test-LabctlSamePath $ownDisk $markerDisk)) {
            $keptDisks += [ordered]@{ path = $ownDisk; reason = 'the state names it, but the VM''s labctl marker names another disk' }
          }
          $ownDisk = $markerDisk
        }
        # Its seed disk: the one create_vms wrote beside the VM's disk under labctl's name for it.
        $markerSeed = [string]$marker.seed
        if ($markerSeed -and $ownDisk) {
          $expectedSeed = Join-LabctlPath $ownDisk.Substring(0, [Math]::Max(0, $ownDisk.Replace([char]47, [char]92).LastIndexOf([char]92))) ([string]$spec.name + '.seed.vhdx')
          if (Test-LabctlSamePath $markerSeed $expectedSeed) { $ownSeed = $markerSeed }
        }
        # A clone's frozen base (labctl clone): NAME.base.vhdx beside its disk, and the parent of that disk.
        if ($ownDisk -and (Test-Path -LiteralPath $ownDisk -PathType Leaf)) {
          $expectedBase = Join-LabctlPath $ownDisk.Substring(0, [Math]::Max(0, $ownDisk.Replace([char]47, [char]92).LastIndexOf([char]92))) ([string]$spec.name + '.base.vhdx')
          $ownVhd = $null
          try { $ownVhd = Hyper-V\Get-VHD -Path $ownDisk } catch { $ownVhd = $null }
          if ($ownVhd -and [string]$ownVhd.ParentPath -and (Test-LabctlSamePath ([string]$ownVhd.ParentPath) $expectedBase)) { $ownBase = $expectedBase }
        }
        $attached = @(Hyper-V\Get-VMHardDiskDrive -VM $vm | ForEach-Object { [string]$_.Path })
        # With checkpoints the VM writes to an .avhdx whose chain leads down to labctl's disk, and
        # Remove-VM deletes no disk: the checkpoint disks of that chain are the VM's own too.
        $disks = @()
        foreach ($current in $attached) {
          $chain = @(Get-LabctlChainTo -Top $current -Bottom $ownDisk)
          if ($chain.Count -gt 0) {
            $disks += $chain
            foreach ($link in $chain) { if (-not (Test-LabctlSamePath $link $ownDisk)) { $chainOf[$link.ToLowerInvariant()] = $true } }
          } else { $disks += $current }
        }
        $vmFolder = [string]$vm.Path
        if ($vm.State.ToString() -ne 'Off') { Hyper-V\Stop-VM -VM $vm -TurnOff -Force }
        Hyper-V\Remove-VM -VM $vm -Force
        $removed = $true
        # Read again: VMs earlier in this batch are gone, and asking for their drives would fail.
        $others = @(Hyper-V\Get-VM)
      } else {
        # No VM to vouch for the disk: remove it only when it is provably labctl's, a differencing
        # disk whose parent is one of this lab's golden disks; anything else the state names stays.
        $disks = @()
        if ($ownDisk -and (Test-Path -LiteralPath $ownDisk -PathType Leaf)) {
          $vhd = $null
          try { $vhd = Hyper-V\Get-VHD -Path $ownDisk } catch { $vhd = $null }
          if ($vhd -and [string]$vhd.VhdType -eq 'Differencing' -and (Test-LabctlProtected -Path ([string]$vhd.ParentPath) -Protected $In.protect)) {
            $disks = @($ownDisk)
          } else {
            $keptDisks += [ordered]@{ path = $ownDisk; reason = 'not a differencing disk of this lab''s golden disk; labctl cannot prove it made it' }
          }
        }
        $others = @(Hyper-V\Get-VM)
      }
      $inUse = @($others | ForEach-Object { Hyper-V\Get-VMHardDiskDrive -VM $_ } | ForEach-Object { [string]$_.Path })
      foreach ($disk in $disks) {
        $reason = $null
        if ($In.keepDisks) { $reason = 'kept as asked' }
        elseif ($chainOf.ContainsKey($disk.ToLowerInvariant())) { $reason = $null }
        elseif ($ownSeed -and (Test-LabctlSamePath $disk $ownSeed)) {
          if (@($inUse | Where-Object { Test-LabctlSamePath $_ $disk }).Count -gt 0) { $reason = 'attached to another VM' }
        }
        elseif (-not (Test-LabctlSamePath $disk $ownDisk)) { $reason = 'not the disk labctl made for this VM' }
        elseif (Test-LabctlProtected -Path $disk -Protected $In.protect) { $reason = 'golden disk' }
        elseif (@($inUse | Where-Object { Test-LabctlSamePath $_ $disk }).Count -gt 0) { $reason = 'attached to another VM' }
        if ($reason) {
          $keptDisks += [ordered]@{ path = $disk; reason = $reason }
        } else {
          Remove-Item -LiteralPath $disk -Force
          $removedDisks += $disk
        }
      }
      if ($ownBase -and -not $In.keepDisks -and @($removedDisks | Where-Object { Test-LabctlSamePath $_ $ownDisk }).Count -gt 0 -and (Test-Path -LiteralPath $ownBase -PathType Leaf)) {
        if (@($inUse | Where-Object { Test-LabctlSamePath $_ $ownBase }).Count -eq 0) {
          Remove-Item -LiteralPath $ownBase -Force
          $removedDisks += $ownBase
        } else { $keptDisks += [ordered]@{ path = $ownBase; reason = 'attached to another VM' } }
      }
      # The VM's own folder (New-VM -Path <lab disk folder> makes <lab disk folder>\<VM name>, with
      # its configuration and checkpoint folders): removed only when it is exactly that folder.
      if ($removed -and $vmFolder -and $ownDisk -and -not $In.keepDisks) {
        $expected = Join-LabctlPath $ownDisk.Substring(0, [Math]::Max(0, $ownDisk.Replace([char]47, [char]92).LastIndexOf([char]92))) ([string]$spec.name)
        if ((Test-LabctlSamePath $vmFolder $expected) -and (Test-Path -LiteralPath $vmFolder -PathType Container)) {
          Remove-Item -LiteralPath $vmFolder -Recurse -Force
        }
      }
      [ordered]@{
        name         = [string]$spec.name
        ok           = $true
        state        = if ($removed) { 'removed' } else { 'not_created' }
        removedDisks = $removedDisks
        keptDisks    = $keptDisks
      }
    } catch {
      [ordered]@{ name = [string]$spec.name; ok = $false; error = (ConvertTo-LabctlError -Record $_) }
    }
  })
  return [ordered]@{ vms = $results }
}
`,
};
