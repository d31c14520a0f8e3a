import type { ScriptParts } from './common.js';

/** Starts a batch of VMs; a VM already running is left as it is. One result per VM. */
export const startVms: ScriptParts = {
  name: 'start_vms',
  synopsis: 'Starts VMs that are not running; one result per VM.',
  body: String.raw`
function Invoke-LabctlOperation {
  param($In)
  $all = @(Hyper-V\Get-VM)
  $results = @(foreach ($spec in @($In.vms)) {
    try {
      $vm = Find-LabctlVm -All $all -Id $spec.id -Name $spec.name
      if (-not $vm) {
        [ordered]@{ name = [string]$spec.name; ok = $true; state = 'not_created'; started = $false }
        continue
      }
      $started = $false
      if ($vm.State.ToString() -ne 'Running') {
        Hyper-V\Start-VM -VM $vm
        $started = $true
      }
      $vm = Hyper-V\Get-VM -Id $vm.Id
      [ordered]@{ name = [string]$spec.name; ok = $true; state = $vm.State.ToString(); started = $started }
    } catch {
      [ordered]@{ name = [string]$spec.name; ok = $false; error = (ConvertTo-LabctlError -Record $_) }
    }
  })
  return [ordered]@{ vms = $results }
}
`,
};
