import { readFileSync } from 'node:fs';
import { summarizeClixmlErrors } from '@labctl/remote/clixml';
import { describe, expect, it } from 'vitest';
import { adapterReports } from './discovery.js';
import { colonMac, labctlState, objectArray, stringArray, vmStateName } from './parse.js';
import { batches, placeVms } from './placement.js';
import { numbered, vmPlan } from './testing/plans.js';

const recording = (name: string) => readFileSync(new URL(`./testing/recordings/${name}`, import.meta.url), 'utf8');

describe('cmdlet output shapes from 5.1 and 7 (recordings)', () => {
  it('Get-VM on 5.1: one VM is a bare object, State is a number', () => {
    const vms = objectArray<{ Name: string; State: unknown }>(JSON.parse(recording('get-vm.51.json')));
    expect(vms.map((vm) => [vm.Name, vmStateName(vm.State), labctlState(vm.State)])).toEqual([
      ['lab-web01', 'Running', 'running'],
    ]);
  });

  it('Get-VMNetworkAdapter on 5.1: {value,Count} arrays, [null], 000000000000 MACs', () => {
    const adapters = objectArray<{ VMName: string; MacAddress: string; IPAddresses: unknown }>(
      JSON.parse(recording('get-vmnetworkadapter.51.json')),
    );
    expect(
      adapters.map((adapter) => [
        adapter.VMName,
        colonMac(adapter.MacAddress) ?? null,
        stringArray(adapter.IPAddresses),
      ]),
    ).toEqual([
      ['lab-web01', '00:15:5D:00:06:BC', ['192.168.50.23', 'fe80::215:5dff:fe00:6bc']],
      ['lab-web02', null, []],
    ]);
  });

  it('Get-VMNetworkAdapter on 7 with one adapter: a bare object with string enums', () => {
    const adapters = objectArray<{ IPAddresses: unknown; Status: unknown }>(
      JSON.parse(recording('get-vmnetworkadapter.7.json')),
    );
    expect(adapters).toHaveLength(1);
    expect(stringArray(adapters[0]?.Status)).toEqual(['Ok']);
  });

  it('every "no IP" shape is empty: [], null, [null], [""]', () => {
    for (const empty of [[], null, [null], [''], undefined, { value: [], Count: 0 }])
      expect(stringArray(empty)).toEqual([]);
  });

  it('Critical states are failures; unknown numbers are kept, not guessed', () => {
    expect(labctlState('PausedCritical')).toBe('paused-critical');
    expect(labctlState('OffCritical')).toBe('failed');
    expect(vmStateName(32789)).toBe('State32789');
    expect(labctlState(3)).toBe('stopped');
  });

  it('the recorded CLIXML error reads as one line', () => {
    expect(summarizeClixmlErrors(recording('get-vm-not-found.51.clixml'))).toEqual([
      {
        message: `Hyper-V was unable to find a virtual machine with name "web'01".Ä`,
        fullyQualifiedErrorId: 'InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM',
        category: 'InvalidArgument: (web01:String) [Get-VM], VirtualizationException',
      },
    ]);
  });

  it('link-local and APIPA only: the report says there is no DHCP lease', () => {
    const [report] = adapterReports(
      [
        {
          name: 'web-01',
          state: 'Running',
          uptimeSeconds: 900,
          kvpEnabled: true,
          kvpStatus: 'Ok',
          adapters: [
            {
              name: 'Network Adapter',
              macAddress: '00155D000101',
              ipAddresses: ['169.254.3.4', 'fe80::1'],
              switchName: 'LabSwitch',
              status: ['Ok'],
            },
          ],
        },
      ],
      'hv01',
    );
    expect(report?.addresses).toEqual(['169.254.3.4', 'fe80::1']);
    expect(report?.problem).toContain('no DHCP lease on switch "LabSwitch"');
  });
});

describe('placement', () => {
  const GiB = 1024 ** 3;
  it('keeps existing VMs where they are and pinned VMs on their host', () => {
    const result = placeVms(
      [vmPlan('a', { host: 'hv02' }), vmPlan('b'), vmPlan('c')],
      [
        { name: 'hv01', freeMemoryBytes: 10 * GiB },
        { name: 'hv02', freeMemoryBytes: 10 * GiB },
      ],
      {
        existing: new Map([['c', 'hv02']]),
      },
    );
    expect(Object.fromEntries(result.hostOf)).toEqual({ a: 'hv02', b: 'hv01', c: 'hv02' });
    expect(result.overcommitted).toEqual([]);
  });

  it('reports hosts whose new VMs do not fit', () => {
    const result = placeVms(numbered('x', 3, { memoryMiB: 4096 }), [{ name: 'hv01', freeMemoryBytes: 8 * GiB }]);
    expect(result.overcommitted).toEqual([{ host: 'hv01', neededBytes: 14 * GiB, freeBytes: 8 * GiB }]);
  });

  it('batches: at most N, near-equal, none empty', () => {
    expect(batches([1, 2, 3, 4, 5], 2)).toEqual([
      [1, 3, 5],
      [2, 4],
    ]);
    expect(batches([1], 4)).toEqual([[1]]);
  });
});
