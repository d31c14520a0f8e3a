import type { ScriptParts } from './common.js';

/**
 * Creates a batch of VMs in one round trip. Per VM: a differencing disk on the golden disk (or a
 * full copy), New-VM, memory, processors, switch, static MAC, VLAN, firmware (Secure Boot template
 * for Linux, or off), no automatic checkpoints, and the labctl marker in Notes. A VM of this lab
 * that already exists is reported as existing (re-runs converge); a VM of the same name that labctl
 * did not make is refused. A VM that fails is rolled back: only what this script made for it is
 * removed, and the batch goes on.
 */
export const createVms: ScriptParts = {
  name: 'create_vms',
  synopsis: 'Creates VMs from a golden disk (differencing disk or copy); one result per VM.',
  body: String.raw`
function Invoke-LabctlOperation {
  param($In)
  $all = @(Hyper-V\Get-VM)
  $canSetTemplate = (Get-Command Hyper-V\Set-VMFirmware).Parameters.ContainsKey('SecureBootTemplate')
  $canDisableAutoCheckpoints = (Get-Command Hyper-V\Set-VM).Parameters.ContainsKey('AutomaticCheckpointsEnabled')
  # Without a configured directory, disks go under the host's default VHD path, one folder per lab.
  $diskDir = if ($In.diskDir) { [string]$In.diskDir } else { Join-LabctlPath ([string](Hyper-V\Get-VMHost).VirtualHardDiskPath) ([string]$In.lab) }
  $results = @(foreach ($spec in @($In.vms)) {
    $vm = $null
    $vhdPath = $null
    $diskCreated = $false
    $partial = $null
    $seedPath = $null
    try {
      $vhdPath = Join-LabctlPath $diskDir ([string]$spec.diskFile)
      $existing = Find-LabctlVm -All $all -Name $spec.name
      if ($existing) {
        $marker = Get-LabctlMarker -Vm $existing
        if ($marker -and [string]$marker.lab -eq [string]$In.lab) {
          [ordered]@{ name = [string]$spec.name; ok = $true; created = $false; id = $existing.Id.ToString(); state = $existing.State.ToString(); vhdPath = [string]$marker.disk }
          continue
        }
        throw (New-Object System.InvalidOperationException ('A VM named "' + $spec.name + '" already exists and was not made by this lab; labctl leaves it alone.'))
      }
      if (Test-Path -LiteralPath $vhdPath) {
        throw (New-Object System.IO.IOException ('The disk ' + $vhdPath + ' already exists; labctl never overwrites a disk it did not just create.'))
      }
      New-Item -ItemType Directory -Path $diskDir -Force | Out-Null
      if ($spec.clone -eq 'full') {
        # Copy under a temporary name, then rename: a copy that fails (volume full, connection cut)
        # never leaves a half disk under the real name, which would block every re-run. The
        # temporary name is labctl's own, so a leftover from a killed run is overwritten.
        $partial = $vhdPath + '.labctl-partial'
        Copy-Item -LiteralPath $spec.golden -Destination $partial -Force
        Rename-Item -LiteralPath $partial -NewName (Get-LabctlLeaf $vhdPath)
        $partial = $null
      } else {
        Hyper-V\New-VHD -Path $vhdPath -ParentPath $spec.golden -Differencing | Out-Null
      }
      $diskCreated = $true

      $newVm = @{ Name = [string]$spec.name; Generation = [int16]$spec.generation; MemoryStartupBytes = [long]$spec.memoryBytes; VHDPath = $vhdPath; Path = $diskDir }
      if ($spec.switch) { $newVm.SwitchName = [string]$spec.switch }
      $vm = Hyper-V\New-VM @newVm

      if ($spec.seed) {
        # The VM's cloud-init seed (a VHDX holding the cidata filesystem, with the VM's private host
        # keys): written beside its disk under labctl's own name for it, and attached as a second disk.
        $seedPath = Join-LabctlPath $diskDir ([string]$spec.seedFile)
        Write-LabctlGzipBase64File -Encoded ([string]$spec.seed) -Path $seedPath
        if ([int]$spec.generation -eq 2) {
          Hyper-V\Add-VMHardDiskDrive -VM $vm -ControllerType SCSI -Path $seedPath
        } else {
          Hyper-V\Add-VMHardDiskDrive -VM $vm -ControllerType IDE -ControllerNumber 0 -ControllerLocation 1 -Path $seedPath
        }
      }
      $markerFields = [ordered]@{ lab = [string]$In.lab; group = [string]$spec.group; disk = $vhdPath }
      if ($seedPath) { $markerFields.seed = $seedPath }
      $marker = 'labctl:' + (ConvertTo-Json -InputObject $markerFields -Compress)
      $settings = @{ VM = $vm; ProcessorCount = [long]$spec.processors; Notes = $marker; AutomaticStopAction = 'ShutDown' }
      if ($canDisableAutoCheckpoints) { $settings.AutomaticCheckpointsEnabled = $false }
      if ($spec.dynamicMemory) {
        $settings.DynamicMemory = $true
        $settings.MemoryMinimumBytes = [long]$spec.dynamicMemory.minimumBytes
        $settings.MemoryMaximumBytes = [long]$spec.dynamicMemory.maximumBytes
      } else {
        $settings.StaticMemory = $true
      }
      Hyper-V\Set-VM @settings

      $adapter = @(Hyper-V\Get-VMNetworkAdapter -VM $vm)[0]
      if ($spec.mac) { Hyper-V\Set-VMNetworkAdapter -VMNetworkAdapter $adapter -StaticMacAddress ([string]$spec.mac) }
      if ($spec.vlan) { Hyper-V\Set-VMNetworkAdapterVlan -VMNetworkAdapter $adapter -Access -VlanId ([int]$spec.vlan) }

      if ([int]$spec.generation -eq 2) {
        $firmware = @{ VM = $vm; FirstBootDevice = @(Hyper-V\Get-VMHardDiskDrive -VM $vm)[0] }
        if ($spec.secureBoot -eq 'off') {
          $firmware.EnableSecureBoot = 'Off'
        } else {
          $firmware.EnableSecureBoot = 'On'
          $template = if ($spec.secureBoot -eq 'windows') { 'MicrosoftWindows' } else { 'MicrosoftUEFICertificateAuthority' }
          if ($canSetTemplate) { $firmware.SecureBootTemplate = $template }
        }
        Hyper-V\Set-VMFirmware @firmware
      }
      $vm = Hyper-V\Get-VM -Id $vm.Id
      [ordered]@{
        name    = [string]$spec.name
        ok      = $true
        created = $true
        id      = $vm.Id.ToString()
        state   = $vm.State.ToString()
        vhdPath = $vhdPath
        seedPath = $seedPath
        mac     = [string]@(Hyper-V\Get-VMNetworkAdapter -VM $vm)[0].MacAddress
      }
    } catch {
      $failure = ConvertTo-LabctlError -Record $_
      if ($vm) {
        # Remove-VM leaves the folder New-VM made (<disk folder>\<name>): it is this run's, so it goes too.
        $vmFolder = [string]$vm.Path
        try { Hyper-V\Remove-VM -VM $vm -Force } catch { }
        if ($vmFolder -and (Test-LabctlSamePath $vmFolder (Join-LabctlPath $diskDir ([string]$spec.name)))) {
          try { Remove-Item -LiteralPath $vmFolder -Recurse -Force -ErrorAction SilentlyContinue } catch { }
        }
      }
      if ($diskCreated) { try { Remove-Item -LiteralPath $vhdPath -Force } catch { } }
      if ($partial) { try { Remove-Item -LiteralPath $partial -Force -ErrorAction SilentlyContinue } catch { } }
      if ($seedPath) { try { Remove-Item -LiteralPath $seedPath -Force -ErrorAction SilentlyContinue } catch { } }
      [ordered]@{ name = [string]$spec.name; ok = $false; created = $false; error = $failure }
    }
  })
  return [ordered]@{ vms = $results }
}
`,
};
