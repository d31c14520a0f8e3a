import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LabctlError } from '../errors.js';
import { StateStore } from '../state.js';
import { FakeProvider } from '../testing/fake-provider.js';
import { createLab } from './create.js';
import { planLab } from './plan-lab.js';
import { labStatus } from './status.js';

describe('labStatus: the state next to the hypervisor', () => {
  it('shows a VM powered off by hand, one gone, one the state does not know, and never calls an unreachable host "gone"', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'labctl-status-'));
    const store = new StateStore(dir);
    const { plan } = planLab(
      { path: undefined, spec: { provider: 'fake' }, lab: 'status', resolvePath: (p) => p },
      { count: 3, golden: '/g.vhd' },
    );
    const provider = new FakeProvider();
    await createLab({ plan, provider, store, timeoutMs: 1000, wait: false });
    provider.domains.get('vm-01')!.state = 'stopped';
    provider.domains.delete('vm-02');
    provider.domains.set('vm-09', { ...provider.domains.get('vm-03')!, name: 'vm-09' });
    const summary = await labStatus({ lab: 'status', store, provider: () => provider });
    const view = summary.vms.map((vm) => [vm.name, vm.recorded, vm.live, vm.drift]);
    expect(view).toEqual([
      ['vm-01', 'running', 'stopped', 'state'],
      ['vm-02', 'running', 'gone', 'gone'],
      ['vm-03', 'running', 'running', undefined],
      ['vm-09', 'absent', 'running', 'unrecorded'],
    ]);

    provider.list = async () => {
      throw new LabctlError('LIBVIRT_CONNECT', 'cannot connect to libvirt at qemu:///system: no socket');
    };
    const down = await labStatus({ lab: 'status', store, provider: () => provider });
    expect(down.unreachable).toEqual([
      { provider: 'fake', host: 'local', error: 'cannot connect to libvirt at qemu:///system: no socket' },
    ]);
    expect(down.vms.map((vm) => [vm.name, vm.live, vm.drift, vm.problem])).toEqual(
      ['vm-01', 'vm-02', 'vm-03'].map((name) => [
        name,
        'unknown',
        undefined,
        'cannot connect to libvirt at qemu:///system: no socket',
      ]),
    );
  });
});
