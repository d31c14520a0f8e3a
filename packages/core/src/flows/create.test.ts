import { readFileSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collectingSink } from '../events.js';
import type { Plan } from '../provider.js';
import { StateStore } from '../state.js';
import { FakeProvider } from '../testing/fake-provider.js';
import { createLab, PreflightError } from './create.js';
import { destroyLab } from './destroy.js';
import type { Discover } from './discovery.js';
import { planLab } from './plan-lab.js';

async function lab(count: number, name = 'flows') {
  const dir = await mkdtemp(join(tmpdir(), 'labctl-flows-'));
  const { plan } = planLab(
    { path: undefined, spec: { provider: 'fake' }, lab: name, resolvePath: (p) => p },
    { count, golden: '/g/golden.vhd', concurrency: 3 },
  );
  return { dir, plan, store: new StateStore(dir) };
}

function planFor(plan: Plan, count: number): Plan {
  return {
    ...plan,
    vms: planLab(
      { path: undefined, spec: { provider: 'fake' }, lab: plan.lab, resolvePath: (p) => p },
      { count, golden: '/g/golden.vhd' },
    ).plan.vms,
  };
}

/** Every running VM gets 10.0.0.N and a host key; records the VMs it was asked about. */
function fakeDiscover(unreachable: string[] = []): Discover & { asked: string[][] } {
  const asked: string[][] = [];
  const run: Discover = async (_provider, vms) => {
    asked.push(vms.map((vm) => vm.name));
    return vms.map((vm, i) =>
      unreachable.includes(vm.name)
        ? {
            name: vm.name,
            status: 'timeout' as const,
            addresses: [],
            hostKeys: [],
            detail: 'adapter has no address yet (lease)',
            hint: 'No DHCP lease: ...',
          }
        : {
            name: vm.name,
            status: 'reachable' as const,
            addresses: [`10.0.0.${i + 1}`],
            hostKeys: [`ssh-ed25519 KEY${vm.name}`],
            detail: 'SSH answered',
          },
    );
  };
  return Object.assign(run, { asked });
}

async function savedState(dir: string) {
  return JSON.parse(await readFile(join(dir, '.labctl', 'state.json'), 'utf8'));
}

describe('createLab', () => {
  it('creates, starts and discovers every VM; the state has addresses and host keys', async () => {
    const { plan, store, dir } = await lab(5);
    const provider = new FakeProvider();
    const summary = await createLab({ plan, provider, store, timeoutMs: 1000, discover: fakeDiscover() });
    expect(summary.counts).toMatchObject({ planned: 5, created: 5, failed: 0, reachable: 5 });
    expect(provider.create_Args.flat().sort()).toEqual(['vm-01', 'vm-02', 'vm-03', 'vm-04', 'vm-05']);
    const state = await savedState(dir);
    expect(state.vms).toHaveLength(5);
    expect(state.vms[0]).toMatchObject({
      state: 'running',
      addresses: ['10.0.0.1'],
      ssh: { hostKeys: ['ssh-ed25519 KEYvm-01'] },
    });
    expect(state.vms[0].startedAt).toEqual(expect.any(String));
    expect(state.vms[0].resources.startedAt).toBeUndefined();
  });

  it('re-running creates nothing; --count 12 after 10 adds exactly two', async () => {
    const { plan, store } = await lab(10);
    const provider = new FakeProvider();
    await createLab({ plan, provider, store, timeoutMs: 1000, discover: fakeDiscover() });
    const again = await createLab({ plan, provider, store, timeoutMs: 1000, discover: fakeDiscover() });
    expect(again.counts).toMatchObject({ created: 0, kept: 10 });
    expect(provider.create_Called).toBe(10);
    const more = await createLab({
      plan: planFor(plan, 12),
      provider,
      store,
      timeoutMs: 1000,
      discover: fakeDiscover(),
    });
    expect(more.counts).toMatchObject({ planned: 12, created: 2, kept: 10 });
    expect(provider.create_Args.slice(10).flat()).toEqual(['vm-11', 'vm-12']);
  });

  it('a failure on one VM keeps the others; the summary says why; a re-run finishes the job', async () => {
    const { plan, store, dir } = await lab(4);
    const provider = new FakeProvider();
    provider.create_Err.set('vm-03', new Error('qemu-img: disk full'));
    const first = await createLab({ plan, provider, store, timeoutMs: 1000, discover: fakeDiscover() });
    expect(first.counts).toMatchObject({ created: 3, failed: 1, reachable: 3 });
    expect(first.vms.find((vm) => vm.name === 'vm-03')).toMatchObject({
      action: 'failed',
      state: 'failed',
      error: 'qemu-img: disk full',
    });
    expect((await savedState(dir)).vms.find((vm: { name: string }) => vm.name === 'vm-03').state).toBe('failed');
    provider.create_Err.clear();
    const second = await createLab({ plan, provider, store, timeoutMs: 1000, discover: fakeDiscover() });
    expect(second.counts).toMatchObject({ created: 1, kept: 3, failed: 0, reachable: 4 });
  });

  it('a VM that is never reachable fails with the explanation (exit 1 in the CLI)', async () => {
    const { plan, store } = await lab(2);
    const summary = await createLab({
      plan,
      provider: new FakeProvider(),
      store,
      timeoutMs: 1000,
      discover: fakeDiscover(['vm-02']),
    });
    expect(summary.counts).toMatchObject({ failed: 1, reachable: 1 });
    expect(summary.vms[1]).toMatchObject({
      error: 'not reachable in time: adapter has no address yet (lease)',
      hint: 'No DHCP lease: ...',
    });
  });

  it('a preflight error refuses before anything is written or created', async () => {
    const { plan, store, dir } = await lab(2);
    const provider = new FakeProvider();
    provider.preflight_Return = [
      {
        id: 'golden.readable',
        level: 'error',
        message: 'golden image /g/golden.vhd does not exist',
        hint: 'Pass --golden',
      },
    ];
    const error = await createLab({ plan, provider, store, timeoutMs: 1000 }).catch((err) => err);
    expect(error).toBeInstanceOf(PreflightError);
    expect(error.exitCode).toBe(2);
    expect(provider.create_Called).toBe(0);
    await expect(readFile(join(dir, '.labctl', 'state.json'))).rejects.toThrow(/ENOENT/);
  });

  it('interrupted mid-way: stops scheduling, keeps what exists; a re-run converges without duplicates', async () => {
    const { plan, store, dir } = await lab(6);
    const provider = new FakeProvider();
    const controller = new AbortController();
    provider.onCreate = (name) => name === 'vm-02' && controller.abort();
    const plan1 = { ...plan, concurrency: 1 };
    const first = await createLab({
      plan: plan1,
      provider,
      store,
      timeoutMs: 1000,
      signal: controller.signal,
      discover: fakeDiscover(),
    });
    expect(first.interrupted).toBe(true);
    expect([...provider.domains.keys()]).toEqual(['vm-01', 'vm-02']);
    const states = Object.fromEntries(
      (await savedState(dir)).vms.map((vm: { name: string; state: string }) => [vm.name, vm.state]),
    );
    expect(states).toMatchObject({ 'vm-01': 'created', 'vm-02': 'created', 'vm-03': 'creating', 'vm-06': 'creating' });
    provider.onCreate = undefined;
    const second = await createLab({ plan: plan1, provider, store, timeoutMs: 1000, discover: fakeDiscover() });
    expect(second.counts).toMatchObject({ created: 4, kept: 2, reachable: 6 });
    expect(provider.create_Args.flat()).toEqual(['vm-01', 'vm-02', 'vm-03', 'vm-04', 'vm-05', 'vm-06']);
  });

  it('adopts a domain of this lab that the state lost (killed before the state was written)', async () => {
    const { plan, store } = await lab(3);
    const provider = new FakeProvider();
    provider.domains.set('vm-02', {
      name: 'vm-02',
      group: 'vm',
      provider: 'fake',
      host: 'local',
      addresses: [],
      ssh: { hostKeys: [] },
      state: 'stopped',
    });
    const events = collectingSink();
    const summary = await createLab({ plan, provider, store, timeoutMs: 1000, discover: fakeDiscover(), events });
    expect(summary.vms.map((vm) => [vm.name, vm.action])).toEqual([
      ['vm-01', 'created'],
      ['vm-02', 'adopted'],
      ['vm-03', 'created'],
    ]);
    expect(provider.create_Args.flat()).toEqual(['vm-01', 'vm-03']);
    expect(provider.start_Args.flat().sort()).toEqual(['vm-01', 'vm-02', 'vm-03']);
  });

  it('--no-start defines only; --no-wait starts without discovery', async () => {
    const { plan, store } = await lab(2);
    const provider = new FakeProvider();
    const discover = fakeDiscover();
    await createLab({ plan, provider, store, timeoutMs: 1000, discover, start: false });
    expect(provider.start_Called).toBe(0);
    await createLab({ plan, provider, store, timeoutMs: 1000, discover, wait: false });
    expect(provider.start_Called).toBe(2);
    expect(discover.asked).toEqual([]);
  });

  it("starts in the provider's batches: the number of start calls is the same whatever the concurrency", async () => {
    for (const concurrency of [1, 3, 10]) {
      const { plan, store } = await lab(10);
      const provider = new FakeProvider();
      provider.batchSize = 4;
      await createLab({ plan: { ...plan, concurrency }, provider, store, timeoutMs: 1000, discover: fakeDiscover() });
      expect(provider.create_Args.map((names) => names.length)).toEqual([4, 4, 2]);
      expect(provider.start_Args.map((names) => names.length)).toEqual([4, 4, 2]);
      expect(provider.start_Args.flat().sort()).toEqual(plan.vms.map((vm) => vm.name));
    }
  });

  it('a VM that fails to start inside a batch fails alone; a failed call fails only its own batch', async () => {
    const { plan, store, dir } = await lab(6);
    const provider = new FakeProvider();
    provider.batchSize = 3;
    provider.start_Err.set('vm-02', new Error('The virtual machine could not be started: not enough memory'));
    const events = collectingSink();
    const first = await createLab({ plan, provider, store, timeoutMs: 1000, discover: fakeDiscover(), events });
    // The provider reported the failed start; the flow does not report it a second time.
    expect(events.events.filter((e) => e.subject === 'vm-02' && e.status === 'failed').map((e) => e.phase)).toEqual([
      'start',
    ]);
    expect(first.vms.map((vm) => [vm.name, vm.state])).toEqual([
      ['vm-01', 'running'],
      ['vm-02', 'failed'],
      ['vm-03', 'running'],
      ['vm-04', 'running'],
      ['vm-05', 'running'],
      ['vm-06', 'running'],
    ]);
    expect(first.vms[1]).toMatchObject({
      action: 'failed',
      error: 'The virtual machine could not be started: not enough memory',
    });
    expect(first.counts).toMatchObject({ created: 5, failed: 1, reachable: 5 });

    const other = await lab(6, 'flows-drop');
    const dropping = new FakeProvider();
    dropping.batchSize = 3;
    let calls = 0;
    dropping.onStart = () => {
      calls++;
      dropping.start_CallErr = calls === 1 ? new Error('the connection ended without an exit status') : undefined;
    };
    const second = await createLab({
      plan: { ...other.plan, concurrency: 1 },
      provider: dropping,
      store: other.store,
      timeoutMs: 1000,
      discover: fakeDiscover(),
    });
    expect(second.vms.map((vm) => vm.state)).toEqual(['running', 'running', 'running', 'failed', 'failed', 'failed']);
    expect(second.vms[3]?.error).toBe('the connection ended without an exit status');
    expect((await savedState(dir)).vms.find((vm: { name: string }) => vm.name === 'vm-02')).toMatchObject({
      state: 'failed',
    });
  });

  it('interrupted during start: the batches started so far are saved as running, the rest stay created', async () => {
    const { plan, store, dir } = await lab(6);
    const provider = new FakeProvider();
    provider.batchSize = 2;
    const controller = new AbortController();
    provider.onStart = () => controller.abort();
    const first = await createLab({
      plan: { ...plan, concurrency: 1 },
      provider,
      store,
      timeoutMs: 1000,
      signal: controller.signal,
      discover: fakeDiscover(),
    });
    expect(first.interrupted).toBe(true);
    expect(provider.start_Args).toEqual([['vm-01', 'vm-02']]);
    const states = Object.fromEntries(
      (await savedState(dir)).vms.map((vm: { name: string; state: string }) => [vm.name, vm.state]),
    );
    expect(states).toEqual({
      'vm-01': 'running',
      'vm-02': 'running',
      'vm-03': 'created',
      'vm-04': 'created',
      'vm-05': 'created',
      'vm-06': 'created',
    });
    provider.onStart = undefined;
    const second = await createLab({ plan, provider, store, timeoutMs: 1000, discover: fakeDiscover() });
    expect(second.counts).toMatchObject({ created: 0, kept: 6, reachable: 6 });
  });
});

describe('destroyLab', () => {
  it('removes VMs and their records one by one, finds orphans with --all, and is safe to repeat', async () => {
    const { plan, store, dir } = await lab(3);
    const provider = new FakeProvider();
    await createLab({ plan, provider, store, timeoutMs: 1000, discover: fakeDiscover() });
    provider.domains.set('vm-09', {
      name: 'vm-09',
      group: 'vm',
      provider: 'fake',
      host: 'local',
      addresses: [],
      ssh: { hostKeys: [] },
      state: 'running',
    });
    const one = await destroyLab({
      lab: plan.lab,
      provider: () => provider,
      scan: [provider],
      store,
      names: ['vm-02', 'nope'],
      keepDisks: true,
    });
    expect(one.vms).toEqual([
      { name: 'nope', result: 'absent' },
      { name: 'vm-02', result: 'destroyed' },
    ]);
    expect(provider.destroy_Args[0]).toEqual({ names: ['vm-02'], options: { keepDisks: true } });
    const all = await destroyLab({ lab: plan.lab, provider: () => provider, scan: [provider], store, all: true });
    expect(all.vms.map((vm) => vm.name).sort()).toEqual(['vm-01', 'vm-03', 'vm-09']);
    expect(provider.domains.size).toBe(0);
    expect((await savedState(dir)).vms).toEqual([]);
    expect(
      (await destroyLab({ lab: plan.lab, provider: () => provider, scan: [provider], store, all: true })).vms,
    ).toEqual([]);
  });
});

describe('createLab: identity before first boot', () => {
  it("pins each new VM's seed keys and given address in the state before the provider makes it; kept VMs get no new seed", async () => {
    const { dir, plan, store } = await lab(3, 'seeded');
    const seeded = {
      ...plan,
      vms: plan.vms.map((vm, i) => ({
        ...vm,
        cloudInit: { hostKeyTypes: ['ed25519' as const] },
        address: { address: `10.0.0.${20 + i}`, prefix: 24, assign: 'static' as const },
      })),
    };
    const provider = new FakeProvider();
    provider.seeds = true;
    const made: string[] = [];
    let pinnedAtCreate: unknown;
    provider.onCreate = () => {
      pinnedAtCreate ??= JSON.parse(readFileSync(join(dir, '.labctl', 'state.json'), 'utf8')).vms.map(
        (vm: { name: string; ssh: { hostKeys: string[] } }) => [vm.name, vm.ssh.hostKeys],
      );
    };
    const makeSeed = async (vm: { name: string }) => {
      made.push(vm.name);
      return {
        instanceId: `${vm.name}-1`,
        hostKeys: [`ssh-ed25519 PIN${vm.name}`],
        files: [{ name: 'meta-data', data: 'x' }],
      };
    };
    await createLab({ plan: seeded, provider, store, start: false, timeoutMs: 1000, makeSeed });
    expect(made).toEqual(['vm-01', 'vm-02', 'vm-03']);
    expect(pinnedAtCreate).toEqual(seeded.vms.map((vm) => [vm.name, [`ssh-ed25519 PIN${vm.name}`]]));
    expect([...provider.seedsSeen.keys()]).toEqual(seeded.vms.map((vm) => vm.name));
    const saved = await savedState(dir);
    expect(saved.vms[1]).toMatchObject({
      assignedAddress: '10.0.0.21',
      assign: 'static',
      instanceId: 'vm-02-1',
      ssh: { hostKeys: ['ssh-ed25519 PINvm-02'] },
    });
    expect(JSON.stringify(saved)).not.toContain('meta-data');

    made.length = 0;
    await createLab({ plan: seeded, provider, store, start: false, timeoutMs: 1000, makeSeed });
    expect(made).toEqual([]);
  });

  it('refuses (exit 2, nothing made) an address another VM of the lab has, and a seed that cannot be made', async () => {
    const { plan, store } = await lab(2, 'clash');
    const provider = new FakeProvider();
    provider.seeds = true;
    await createLab({ plan, provider, store, start: false, timeoutMs: 1000, discover: fakeDiscover(), wait: true });
    await createLab({ plan, provider, store, timeoutMs: 1000, discover: fakeDiscover() });
    const more = planFor(plan, 3);
    more.vms[2] = { ...more.vms[2]!, address: { address: '10.0.0.1', prefix: 24, assign: 'static' } };
    const calls = provider.create_Called;
    await expect(createLab({ plan: more, provider, store, timeoutMs: 1000 })).rejects.toMatchObject({
      code: 'ADDRESS_CLASH',
      exitCode: 2,
      message: expect.stringMatching(/vm-03 would get 10\.0\.0\.1, which vm-01 has/),
    });
    const seeded = {
      ...planFor(plan, 3),
      vms: planFor(plan, 3).vms.map((vm) => ({ ...vm, cloudInit: { hostKeyTypes: ['ed25519' as const] } })),
    };
    await expect(
      createLab({
        plan: seeded,
        provider,
        store,
        timeoutMs: 1000,
        makeSeed: async () => {
          throw new Error('cannot read /k.pub');
        },
      }),
    ).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/vm-03: cannot read \/k\.pub/) });
    expect(provider.create_Called).toBe(calls);
  });
});
