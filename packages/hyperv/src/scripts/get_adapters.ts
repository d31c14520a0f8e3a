import type { ScriptParts } from './common.js';

/**
 * Network adapters of a batch of VMs with the guest's addresses from KVP, plus what explains an
 * empty list: the VM state, its uptime and the Key-Value Pair Exchange integration service
 * (matched by its GUID, not its localized name).
 */
export const getAdapters: ScriptParts = {
  name: 'get_adapters',
  synopsis: 'Reports network adapters, guest IP addresses (KVP) and KVP status for VMs.',
  body: String.raw`
function Invoke-LabctlOperation {
  param($In)
  $kvpId = '2A34B1C2-FD73-4043-8A5B-DD2159BC743F'
  $all = @(Hyper-V\Get-VM)
  $results = @(foreach ($spec in @($In.vms)) {
    $vm = Find-LabctlVm -All $all -Id $spec.id -Name $spec.name
    if (-not $vm) {
      [ordered]@{ name = [string]$spec.name; state = 'not_created'; adapters = @() }
      continue
    }
    $kvp = @(Hyper-V\Get-VMIntegrationService -VM $vm | Where-Object { ([string]$_.Id) -like ('*' + $kvpId + '*') })
    $adapters = @(Hyper-V\Get-VMNetworkAdapter -VM $vm | ForEach-Object {
      [ordered]@{
        name        = [string]$_.Name
        macAddress  = [string]$_.MacAddress
        ipAddresses = @($_.IPAddresses | Where-Object { $_ } | ForEach-Object { [string]$_ })
        switchName  = [string]$_.SwitchName
        status      = @($_.Status | Where-Object { $null -ne $_ } | ForEach-Object { $_.ToString() })
      }
    })
    [ordered]@{
      name          = [string]$spec.name
      state         = $vm.State.ToString()
      uptimeSeconds = [long]$vm.Uptime.TotalSeconds
      kvpEnabled    = if ($kvp.Count -gt 0) { [bool]$kvp[0].Enabled } else { $null }
      kvpStatus     = if ($kvp.Count -gt 0) { [string]$kvp[0].PrimaryOperationalStatus } else { $null }
      adapters      = $adapters
    }
  })
  return [ordered]@{ vms = $results }
}
`,
};
