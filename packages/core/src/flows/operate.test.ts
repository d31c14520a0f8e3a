import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nextSnapshotName } from '../provider.js';
import { StateStore } from '../state.js';
import { FakeProvider } from '../testing/fake-provider.js';
import { createLab } from './create.js';
import { operateOnVms, operationExitCode } from './operate.js';
import { planLab } from './plan-lab.js';

async function lab(count: number) {
  const dir = await mkdtemp(join(tmpdir(), 'labctl-operate-'));
  const store = new StateStore(dir);
  const { plan } = planLab(
    {
      path: undefined,
      spec: { provider: 'fake', groups: { web: { count }, db: { count: 1 } } },
      lab: 'ops',
      resolvePath: (p) => p,
    },
    { golden: '/g.vhd' },
  );
  const provider = new FakeProvider();
  provider.batchSize = 10;
  await createLab({ plan, provider, store, timeoutMs: 1000, wait: false });
  return { dir, store, provider };
}

const stop =
  (provider: FakeProvider) =>
  (p: unknown, vms: Parameters<FakeProvider['stop']>[0], events: Parameters<FakeProvider['stop']>[2]) =>
    provider.stop(vms, { timeoutS: 5 }, events);

describe('operateOnVms: the day-2 flow (start, stop, snapshots)', () => {
  it("picks VMs by name, group or all; one provider call per batch; writes each VM's new state and its error", async () => {
    const { dir, store, provider } = await lab(3);
    provider.stop_Err.set('web-02', new Error('the guest did not shut down within 5 s'));
    const summary = await operateOnVms({
      lab: 'ops',
      store,
      provider: () => provider,
      groups: ['web'],
      operation: 'stop',
      call: stop(provider),
      update: (_vm, facts) => ({ state: facts.state }),
    });
    expect(provider.stop_Args.map((call) => call.names)).toEqual([['web-01', 'web-02', 'web-03']]);
    expect(summary.vms.map((vm) => [vm.name, vm.ok])).toEqual([
      ['web-01', true],
      ['web-02', false],
      ['web-03', true],
    ]);
    expect(operationExitCode(summary)).toBe(1);
    const state = JSON.parse(await readFile(join(dir, '.labctl', 'state.json'), 'utf8'));
    const byName = Object.fromEntries(state.vms.map((vm: { name: string }) => [vm.name, vm]));
    expect(byName['web-01']).toMatchObject({ state: 'stopped' });
    expect(byName['web-02']).toMatchObject({
      state: 'running',
      error: 'stop failed: the guest did not shut down within 5 s',
    });
    expect(byName['db-01']).toMatchObject({ state: 'running' });

    // A later success clears the VM's error.
    provider.stop_Err.clear();
    await operateOnVms({
      lab: 'ops',
      store,
      provider: () => provider,
      names: ['web-02'],
      operation: 'stop',
      call: stop(provider),
      update: (_vm, f) => ({ state: f.state }),
    });
    const after = JSON.parse(await readFile(join(dir, '.labctl', 'state.json'), 'utf8'));
    expect(after.vms.find((vm: { name: string }) => vm.name === 'web-02').error).toBeUndefined();
  });

  it('refuses an unknown name or group, a bad name, or nothing selected, before any provider call (exit 2)', async () => {
    const { store, provider } = await lab(1);
    const run = (selection: { names?: string[]; groups?: string[]; all?: boolean }) =>
      operateOnVms({
        lab: 'ops',
        store,
        provider: () => provider,
        operation: 'stop',
        call: stop(provider),
        ...selection,
      });
    await expect(run({ names: ['web-09'] })).rejects.toMatchObject({ code: 'VM_UNKNOWN', exitCode: 2 });
    await expect(run({ groups: ['wbe'] })).rejects.toMatchObject({ code: 'GROUP_UNKNOWN', exitCode: 2 });
    await expect(run({ names: ['../x'] })).rejects.toMatchObject({ code: 'NAME_INVALID', exitCode: 2 });
    await expect(run({})).rejects.toMatchObject({ code: 'NOTHING_SELECTED', exitCode: 2 });
    expect(provider.stop_Args).toEqual([]);
  });

  it('snapshot names: snap-N above the highest snap-N, whatever else the stack holds', () => {
    expect(nextSnapshotName([])).toBe('snap-1');
    expect(
      nextSnapshotName([{ name: 'snap-1' }, { name: 'before-upgrade' }, { name: 'snap-7' }, { name: 'snap-x' }]),
    ).toBe('snap-8');
  });
});
