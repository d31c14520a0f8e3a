import type { ScriptParts } from './common.js';

/** The VMs labctl made for one lab (marker in Notes); every other VM on the host is ignored. */
export const listVms: ScriptParts = {
  name: 'list_vms',
  synopsis: "Lists the VMs of one labctl lab (by the marker in the VM's Notes).",
  body: String.raw`
function Invoke-LabctlOperation {
  param($In)
  $results = @(foreach ($vm in @(Hyper-V\Get-VM)) {
    $marker = Get-LabctlMarker -Vm $vm
    if (-not $marker -or [string]$marker.lab -ne [string]$In.lab) { continue }
    $adapter = @(Hyper-V\Get-VMNetworkAdapter -VM $vm)
    [ordered]@{
      name       = $vm.Name
      id         = $vm.Id.ToString()
      state      = $vm.State.ToString()
      group      = [string]$marker.group
      vhdPath    = [string]$marker.disk
      generation = [int]$vm.Generation
      mac        = if ($adapter.Count -gt 0) { [string]$adapter[0].MacAddress } else { $null }
    }
  })
  return [ordered]@{ vms = $results }
}
`,
};
