import type { ScriptParts } from './common.js';

/**
 * Registers VMs in place from their configuration files (.vmcx, or .xml before 2016): Compare-VM
 * -Register, then repairs what it can (a network adapter whose switch is missing is connected to the
 * given switch or disconnected; a disk found under the given VHD directory is re-pointed there),
 * compares again and imports with the repaired report. Never copies, moves or deletes a disk
 * (Import-VM's default Register mode keeps every file where it is and keeps the VM's Id).
 */
export const registerVms: ScriptParts = {
  name: 'register_vms',
  synopsis: 'Registers VMs in place from configuration files (Compare-VM, Import-VM -Register); never copies disks.',
  body: String.raw`
function ConvertTo-LabctlIncompatibility {
  param($Incompatibility)
  $source = $Incompatibility.Source
  [ordered]@{
    message    = [string]$Incompatibility.Message
    messageId  = [long]$Incompatibility.MessageId
    sourceType = if ($source) { $source.GetType().Name } else { $null }
    sourceName = if ($source) { [string]$source.Name } else { $null }
  }
}

function Invoke-LabctlOperation {
  param($In)
  $all = @(Hyper-V\Get-VM)
  $results = @(foreach ($path in @($In.paths)) {
    try {
      $id = [regex]::Replace((Get-LabctlLeaf ([string]$path)), '\.[^.]*$', '')
      $existing = @($all | Where-Object { $_.Id.ToString() -eq $id })
      if ($existing.Count -gt 0) {
        [ordered]@{ path = [string]$path; ok = $true; registered = $false; already = $true; name = $existing[0].Name; id = $id; fixes = @(); remaining = @() }
        continue
      }
      $report = Hyper-V\Compare-VM -Path $path -Register
      # With dryRun nothing is changed, not even the planned VM of the report: each fix is only
      # decided (and the problems it would not fix are reported as remaining).
      $dryRun = [bool]$In.dryRun
      $fixes = @()
      $unfixed = @()
      foreach ($problem in @($report.Incompatibilities)) {
        $source = $problem.Source
        $kind = if ($source) { $source.GetType().Name } else { '' }
        if ($kind -eq 'VMNetworkAdapter') {
          if ($In.switch) {
            if ($dryRun) {
              if (-not @(Hyper-V\Get-VMSwitch | Where-Object { $_.Name -eq [string]$In.switch }).Count) { $unfixed += $problem; continue }
            } else {
              Hyper-V\Connect-VMNetworkAdapter -VMNetworkAdapter $source -SwitchName ([string]$In.switch)
            }
            $fixes += [ordered]@{ problem = [string]$problem.Message; fix = 'connected to switch ' + $In.switch }
          } else {
            if (-not $dryRun) { Hyper-V\Disconnect-VMNetworkAdapter -VMNetworkAdapter $source }
            $fixes += [ordered]@{ problem = [string]$problem.Message; fix = 'network adapter disconnected' }
          }
        } elseif (($kind -eq 'HardDiskDrive' -or $kind -eq 'VMHardDiskDrive') -and $In.vhdDir) {
          $candidate = Join-LabctlPath ([string]$In.vhdDir) (Get-LabctlLeaf ([string]$source.Path))
          if (Test-Path -LiteralPath $candidate -PathType Leaf) {
            if (-not $dryRun) { Hyper-V\Set-VMHardDiskDrive -VMHardDiskDrive $source -Path $candidate }
            $fixes += [ordered]@{ problem = [string]$problem.Message; fix = 'disk path set to ' + $candidate }
          } else { $unfixed += $problem }
        } else { $unfixed += $problem }
      }
      if ($dryRun) {
        $remaining = @($unfixed | ForEach-Object { ConvertTo-LabctlIncompatibility -Incompatibility $_ })
        [ordered]@{ path = [string]$path; ok = ($remaining.Count -eq 0); registered = $false; already = $false; name = [string]$report.VM.Name; id = $id; fixes = $fixes; remaining = $remaining }
        continue
      }
      if ($fixes.Count -gt 0) { $report = Hyper-V\Compare-VM -CompatibilityReport $report }
      $remaining = @($report.Incompatibilities | Where-Object { $_ } | ForEach-Object { ConvertTo-LabctlIncompatibility -Incompatibility $_ })
      if ($remaining.Count -gt 0) {
        [ordered]@{ path = [string]$path; ok = $false; registered = $false; already = $false; name = [string]$report.VM.Name; id = $id; fixes = $fixes; remaining = $remaining }
        continue
      }
      $vm = Hyper-V\Import-VM -CompatibilityReport $report
      [ordered]@{ path = [string]$path; ok = $true; registered = $true; already = $false; name = $vm.Name; id = $vm.Id.ToString(); fixes = $fixes; remaining = @() }
    } catch {
      [ordered]@{ path = [string]$path; ok = $false; registered = $false; error = (ConvertTo-LabctlError -Record $_) }
    }
  })
  return [ordered]@{ vms = $results }
}
`,
};
