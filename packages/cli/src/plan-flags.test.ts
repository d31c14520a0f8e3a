import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadLabFile } from '@labctl/core/spec';
import { StateStore } from '@labctl/core/state';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planFromFlags } from './plan-flags.js';

/** A lab over two hosts: where the state last placed a VM is where a re-run plans it, unless --replace. */
describe('planning on several hosts', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labctl-plan-hosts-'));
    await writeFile(
      join(dir, 'labctl.yaml'),
      [
        'lab: two',
        'provider: libvirt',
        'hosts:',
        '  - { name: h1, uri: "qemu+ssh://root@h1/system" }',
        '  - { name: h2, uri: "qemu+ssh://root@h2/system" }',
        'defaults: { golden: /g.qcow2 }',
        'groups: { m: { count: 3 } }',
      ].join('\n'),
    );
    await mkdir(join(dir, '.labctl'));
    const vm = (name: string, host: string, state: string) => ({ name, group: 'm', provider: 'libvirt', host, state });
    await writeFile(
      join(dir, '.labctl', 'state.json'),
      JSON.stringify({ version: 1, lab: 'two', vms: [vm('m-01', 'h2', 'running'), vm('m-02', 'h2', 'failed')] }),
    );
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const hosts = async (extra: { replace?: boolean; uri?: string } = {}) => {
    const { plan } = await planFromFlags(await loadLabFile(dir), new StateStore(dir), {}, extra);
    return Object.fromEntries(plan.vms.map((vm) => [vm.name, vm.host]));
  };

  it('plans recorded VMs on their host (a failed one is made there again), new ones for placement', async () => {
    expect(await hosts()).toEqual({ 'm-01': 'h2', 'm-02': 'h2', 'm-03': 'local' });
  });

  it('--replace places the failed one anew; a VM that runs stays where it is', async () => {
    expect(await hosts({ replace: true })).toEqual({ 'm-01': 'h2', 'm-02': 'local', 'm-03': 'local' });
  });

  it('--host pins the run’s new VMs, and $LIBVIRT_DEFAULT_URI never overrides the lab’s hosts', async () => {
    // The VMs the lab has on h2 stay there: only the new one goes to h1.
    expect(await hosts({ uri: 'h1' })).toEqual({ 'm-01': 'h2', 'm-02': 'h2', 'm-03': 'h1' });
    process.env.LIBVIRT_DEFAULT_URI = 'qemu:///elsewhere';
    try {
      expect(await hosts()).toEqual({ 'm-01': 'h2', 'm-02': 'h2', 'm-03': 'local' });
    } finally {
      delete process.env.LIBVIRT_DEFAULT_URI;
    }
  });
});
