import type { ScriptParts } from './common.js';

/**
 * Stops a batch of VMs: a guest shutdown through the Shutdown integration service with a deadline,
 * or a power-off (`-TurnOff`) when asked or, with forceAfterTimeout, when the deadline passes. Every
 * guest is asked at once (`Stop-VM -AsJob`) and the deadline covers them all. A VM that is not
 * running is left as it is. A Paused-Critical VM (its volume is full) is reported as such with the
 * volume's free space: stopping it would not free anything.
 */
export const stopVms: ScriptParts = {
  name: 'stop_vms',
  synopsis: 'Shuts VMs down (or turns them off); one result per VM.',
  body: String.raw`
function Invoke-LabctlOperation {
  param($In)
  $all = @(Hyper-V\Get-VM)
  $volumes = @()
  try { $volumes = @(Get-CimInstance -ClassName Win32_Volume) } catch { }
  $timeout = [int]$In.timeoutS
  $shutdownId = '9F8233AC-BE49-4C79-8EE3-E7E1985B2077'
  $results = [ordered]@{}
  $waiting = @()
  foreach ($spec in @($In.vms)) {
    $key = [string]$spec.name
    try {
      $vm = Find-LabctlVm -All $all -Id $spec.id -Name $spec.name
      if (-not $vm) { $results[$key] = [ordered]@{ name = $key; ok = $true; state = 'not_created'; stopped = $false; forced = $false }; continue }
      $state = $vm.State.ToString()
      if ($state -like '*Critical') {
        $dir = [string]$vm.Path
        $disk = @(Hyper-V\Get-VMHardDiskDrive -VM $vm | Where-Object { $_.Path }) | Select-Object -First 1
        if ($disk) { $dir = Split-Path -Parent ([string]$disk.Path) }
        $results[$key] = [ordered]@{ name = $key; ok = $false; state = $state; volume = (Get-LabctlVolumeSpace -Dir $dir -Volumes $volumes)
          error = [ordered]@{ message = "the VM is $state"; type = 'PausedCritical'; category = 'InvalidOperation' } }
        continue
      }
      if ($state -ne 'Running') { $results[$key] = [ordered]@{ name = $key; ok = $true; state = $state; stopped = $false; forced = $false }; continue }
      if ($In.force) {
        Hyper-V\Stop-VM -VM $vm -TurnOff -Force
        $results[$key] = [ordered]@{ name = $key; ok = $true; state = (Hyper-V\Get-VM -Id $vm.Id).State.ToString(); stopped = $true; forced = $true }
        continue
      }
      $shutdown = @(Hyper-V\Get-VMIntegrationService -VM $vm | Where-Object { ([string]$_.Id) -like ('*' + $shutdownId + '*') -and $_.Enabled })
      if ($shutdown.Count -eq 0 -and -not $In.forceAfterTimeout) {
        throw "the VM's Shutdown integration service is off, so the host cannot ask the guest to shut down; enable it, or power the VM off (labctl stop --force)"
      }
      $job = $null
      if ($shutdown.Count -gt 0) { $job = Hyper-V\Stop-VM -VM $vm -Force -AsJob }
      $waiting += [pscustomobject]@{ key = $key; vm = $vm; job = $job }
    } catch {
      $results[$key] = [ordered]@{ name = $key; ok = $false; error = (ConvertTo-LabctlError -Record $_) }
    }
  }
  $deadline = [DateTime]::UtcNow.AddSeconds($timeout)
  while ($waiting.Count -gt 0) {
    $left = @()
    foreach ($entry in $waiting) {
      try {
        $state = (Hyper-V\Get-VM -Id $entry.vm.Id).State.ToString()
        if ($state -eq 'Off') { $results[$entry.key] = [ordered]@{ name = $entry.key; ok = $true; state = $state; stopped = $true; forced = $false } }
        elseif ([DateTime]::UtcNow -lt $deadline) { $left += $entry }
        elseif ($In.forceAfterTimeout) {
          Hyper-V\Stop-VM -VM $entry.vm -TurnOff -Force
          $results[$entry.key] = [ordered]@{ name = $entry.key; ok = $true; state = (Hyper-V\Get-VM -Id $entry.vm.Id).State.ToString(); stopped = $true; forced = $true }
        } else { throw "the guest did not shut down within $timeout s" }
      } catch {
        $results[$entry.key] = [ordered]@{ name = $entry.key; ok = $false; error = (ConvertTo-LabctlError -Record $_) }
      }
      if ($entry.job -and -not ($left -contains $entry)) { Remove-Job -Job $entry.job -Force -ErrorAction SilentlyContinue }
    }
    $waiting = $left
    if ($waiting.Count -gt 0) { Start-Sleep -Seconds 1 }
  }
  return [ordered]@{ vms = @($results.Values) }
}
`,
};
