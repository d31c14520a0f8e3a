import { isUsableAddress } from '@labctl/core/address';
import type { AdapterReport } from '@labctl/core/provider';
import { colonMac, objectArray, stringArray } from './parse.js';
import type { AdapterFacts, VmAdapterFacts } from './types.js';

/**
 * Addresses from Get-VMNetworkAdapter (the guest's KVP reports), and when there are none, why:
 * the reason a user needs instead of "waiting for IP… timeout".
 */
export const KVP_TEMPLATE_STEP = 'hyperv-daemons';

/** The Key-Value Pair Exchange integration service's id (the same in every language). */
export const KVP_SERVICE_ID = '2A34B1C2-FD73-4043-8A5B-DD2159BC743F';

/** Seconds after boot before an empty KVP answer is taken as "the daemon is not there". */
export const KVP_GRACE_SECONDS = 120;

export function explainNoAddress(vm: VmAdapterFacts, adapter: AdapterFacts | undefined, host: string): string {
  if (vm.state === 'not_created') return `the VM does not exist on ${host}`;
  if (vm.state !== 'Running') return `the VM is ${vm.state}; Hyper-V reports guest addresses only while it runs`;
  if (!adapter) return 'the VM has no network adapter';
  if (!adapter.switchName) return 'the network adapter is not connected to a virtual switch';
  if (vm.kvpEnabled === false) {
    // By the service's id: its name is localized ("Austausch von Schlüssel-Wert-Paaren" on a German host).
    return `the Key-Value Pair Exchange integration service is off for this VM; turn it on: Get-VMIntegrationService -VMName '${vm.name.replace(/['\u2018\u2019\u201a\u201b]/g, (quote) => quote + quote)}' | Where-Object { $_.Id -like '*\\${KVP_SERVICE_ID}' } | Enable-VMIntegrationService`;
  }
  const daemonHint = `the guest needs hyperv-daemons with hv_kvp_daemon (hypervkvpd) running; the template step \`${KVP_TEMPLATE_STEP}\` installs and enables it (labctl template prep)`;
  if (vm.kvpStatus === 'NoContact' || vm.kvpStatus === 'LostCommunication') {
    return `KVP has no contact with the guest (${vm.kvpStatus}): ${daemonHint}`;
  }
  if ((vm.uptimeSeconds ?? 0) < KVP_GRACE_SECONDS) {
    return `no address reported yet (up ${vm.uptimeSeconds ?? 0} s); KVP reports once the guest's network and hv_kvp_daemon are up`;
  }
  return `the guest reports no address over KVP after ${vm.uptimeSeconds} s: ${daemonHint}; or it got no DHCP lease on switch "${adapter.switchName}"`;
}

export function adapterReports(vms: readonly VmAdapterFacts[], host: string): AdapterReport[] {
  const reports: AdapterReport[] = [];
  for (const vm of vms) {
    const adapters = objectArray<AdapterFacts>(vm.adapters);
    if (adapters.length === 0) {
      reports.push({ vm: vm.name, addresses: [], source: 'kvp', problem: explainNoAddress(vm, undefined, host) });
      continue;
    }
    for (const adapter of adapters) {
      const addresses = stringArray(adapter.ipAddresses);
      const report: AdapterReport = { vm: vm.name, adapter: adapter.name, addresses, source: 'kvp' };
      const mac = colonMac(adapter.macAddress);
      if (mac) report.mac = mac;
      if (addresses.length === 0) report.problem = explainNoAddress(vm, adapter, host);
      else if (!addresses.some(isUsableAddress)) {
        report.problem = `only link-local or APIPA addresses (${addresses.join(', ')}): the guest got no DHCP lease on switch "${adapter.switchName}"`;
      }
      reports.push(report);
    }
  }
  return reports;
}
