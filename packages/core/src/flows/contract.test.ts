import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LabctlError } from '../errors.js';
import type { Provider, VmResult } from '../provider.js';
import { StateStore, type VmRecord } from '../state.js';
import { FakeProvider } from '../testing/fake-provider.js';
import { createLab } from './create.js';
import { destroyLab } from './destroy.js';
import type { Discover } from './discovery.js';
import { planLab } from './plan-lab.js';

/**
 * The provider contract as the flows hold it: whichever step fails (create, start, destroy), in
 * whichever way a provider can fail (one VM's result, the whole call throwing, a VM the provider
 * says nothing about), the VM's first failure is kept (code, message, hint) in the summary and the
 * state, later steps never run for it or overwrite it, the other VMs are done, and a re-run converges.
 */
async function lab(count = 3) {
  const dir = await mkdtemp(join(tmpdir(), 'labctl-contract-'));
  const { plan } = planLab(
    { path: undefined, spec: { provider: 'fake' }, lab: 'contract', resolvePath: (p) => p },
    { count, golden: '/g/golden.vhd', concurrency: 1 },
  );
  return { dir, plan, store: new StateStore(dir) };
}

const reachable: Discover = async (_provider, vms) =>
  vms.map((vm, i) => ({
    name: vm.name,
    status: 'reachable' as const,
    addresses: [`10.0.0.${i + 1}`],
    hostKeys: [`ssh-ed25519 KEY${vm.name}`],
    detail: 'SSH answered',
  }));

async function saved(dir: string): Promise<{ vms: VmRecord[] }> {
  return JSON.parse(await readFile(join(dir, '.labctl', 'state.json'), 'utf8'));
}

/** A provider that forgets to report one VM of a call: the flow must not count it as done. */
class SilentAbout extends FakeProvider {
  constructor(
    private readonly silent: string,
    private readonly step: 'create' | 'start' | 'destroy',
  ) {
    super();
  }
  override async create(...args: Parameters<FakeProvider['create']>) {
    return this.drop('create', await super.create(...args));
  }
  override async start(...args: Parameters<FakeProvider['start']>) {
    return this.drop('start', await super.start(...args));
  }
  override async destroy(...args: Parameters<FakeProvider['destroy']>) {
    return this.drop('destroy', await super.destroy(...args));
  }
  private drop<T>(step: string, results: Array<VmResult<T>>) {
    return step === this.step ? results.filter((result) => result.name !== this.silent) : results;
  }
}

const hostDown = () =>
  new LabctlError('HOST_UNREACHABLE', 'cannot connect to hv01: connection refused', { hint: 'Is the host up?' });

describe("create: every VM's own error reaches the user", () => {
  const ways: Array<[string, (p: FakeProvider) => void, string]> = [
    [
      'one VM fails',
      (p) =>
        p.create_Err.set(
          'vm-02',
          new LabctlError('HYPERV_CREATE_FAILED', 'New-VM: the operation failed', { hint: 'Check the host.' }),
        ),
      'HYPERV_CREATE_FAILED',
    ],
    ['the whole call fails (host unreachable)', (p) => (p.create_CallErr = hostDown()), 'HOST_UNREACHABLE'],
  ];
  for (const [way, arrange, code] of ways) {
    it(`${way}: the cause is kept, the VM is never started, the others are done; a re-run converges`, async () => {
      const { plan, store, dir } = await lab();
      const provider = new FakeProvider();
      provider.batchSize = 3;
      arrange(provider);
      const summary = await createLab({ plan, provider, store, timeoutMs: 1000, discover: reachable });
      const failedNames = summary.vms.filter((vm) => vm.failure).map((vm) => vm.name);
      expect(failedNames.length).toBeGreaterThan(0);
      expect(summary.counts.failed).toBe(failedNames.length);
      for (const vm of summary.vms.filter((v) => v.failure)) {
        expect(vm).toMatchObject({ action: 'failed', state: 'failed', failure: { code } });
        expect(vm.error).toBe(vm.failure?.message);
      }
      expect(provider.start_Args.flat().filter((name) => failedNames.includes(name))).toEqual([]);
      const state = await saved(dir);
      for (const name of failedNames)
        expect(state.vms.find((vm) => vm.name === name)).toMatchObject({ state: 'failed', errorCode: code });
      for (const vm of summary.vms.filter((v) => !v.failure)) expect(vm.state).toBe('running');

      provider.create_Err.clear();
      provider.create_CallErr = undefined;
      const again = await createLab({ plan, provider, store, timeoutMs: 1000, discover: reachable });
      expect(again.counts).toMatchObject({ planned: 3, failed: 0, created: failedNames.length });
      expect((await saved(dir)).vms.map((vm) => [vm.state, vm.error, vm.errorCode])).toEqual(
        plan.vms.map(() => ['running', undefined, undefined]),
      );
    });
  }

  it('a VM the provider says nothing about is failed (PROVIDER_NO_RESULT), never counted as created', async () => {
    const { plan, store } = await lab();
    const provider = new SilentAbout('vm-03', 'create');
    provider.batchSize = 3;
    const summary = await createLab({ plan, provider, store, timeoutMs: 1000, discover: reachable });
    expect(summary.vms.find((vm) => vm.name === 'vm-03')).toMatchObject({
      action: 'failed',
      failure: { code: 'PROVIDER_NO_RESULT' },
    });
    expect(summary.counts).toMatchObject({ created: 2, failed: 1 });
  });

  it('with start off (--no-start), a failed create still counts as failed', async () => {
    const { plan, store } = await lab();
    const provider = new FakeProvider();
    provider.create_Err.set('vm-01', new Error('disk full'));
    const summary = await createLab({ plan, provider, store, timeoutMs: 1000, start: false });
    expect(summary.counts.failed).toBe(1);
    expect(summary.vms[0]).toMatchObject({ state: 'failed', failure: { code: 'VM_FAILED', message: 'disk full' } });
    expect(provider.start_Called).toBe(0);
  });
});

describe("start: the failure is the start's, discovery skips the VM", () => {
  for (const [way, arrange, code] of [
    [
      'one VM fails to start',
      (p: FakeProvider) =>
        p.start_Err.set('vm-02', new LabctlError('LIBVIRT_START_FAILED', 'virsh start: not enough memory')),
      'LIBVIRT_START_FAILED',
    ],
    ['the whole start call fails', (p: FakeProvider) => (p.start_CallErr = hostDown()), 'HOST_UNREACHABLE'],
  ] as const) {
    it(`${way}: kept with its code; not handed to discovery; a re-run starts it`, async () => {
      const { plan, store } = await lab();
      const provider = new FakeProvider();
      provider.batchSize = 3;
      arrange(provider);
      const asked: string[] = [];
      const discover: Discover = async (p, vms, o) => {
        asked.push(...vms.map((vm) => vm.name));
        return reachable(p, vms, o);
      };
      const summary = await createLab({ plan, provider, store, timeoutMs: 1000, discover });
      const failedNames = summary.vms.filter((vm) => vm.failure).map((vm) => vm.name);
      expect(failedNames.length).toBeGreaterThan(0);
      for (const name of failedNames) {
        expect(summary.vms.find((vm) => vm.name === name)).toMatchObject({ state: 'failed', failure: { code } });
        expect(asked).not.toContain(name);
      }
      provider.start_Err.clear();
      provider.start_CallErr = undefined;
      const again = await createLab({ plan, provider, store, timeoutMs: 1000, discover: reachable });
      expect(again.counts).toMatchObject({ failed: 0, reachable: 3 });
    });
  }

  it('a VM the provider says nothing about when starting is failed, not "running"', async () => {
    const { plan, store } = await lab();
    const provider = new SilentAbout('vm-01', 'start');
    provider.batchSize = 3;
    const summary = await createLab({ plan, provider, store, timeoutMs: 1000, discover: reachable });
    expect(summary.vms[0]).toMatchObject({ state: 'failed', failure: { code: 'PROVIDER_NO_RESULT' } });
  });
});

describe('destroy: failures per VM, the rest removed, a re-run finishes', () => {
  for (const [way, arrange, code] of [
    [
      'one VM fails',
      (p: FakeProvider) =>
        p.destroy_Err.set('vm-02', new LabctlError('LIBVIRT_DESTROY_FAILED', 'virsh undefine: busy')),
      'LIBVIRT_DESTROY_FAILED',
    ],
    ['the whole call fails', (p: FakeProvider) => (p.destroy_CallErr = hostDown()), 'HOST_UNREACHABLE'],
    ['the provider says nothing about a VM', undefined, 'PROVIDER_NO_RESULT'],
  ] as const) {
    it(`${way}: the record stays with the cause (${code}), nothing else is lost`, async () => {
      const { plan, store, dir } = await lab();
      const provider: FakeProvider = arrange ? new FakeProvider() : new SilentAbout('vm-02', 'destroy');
      await createLab({ plan, provider, store, timeoutMs: 1000, discover: reachable });
      arrange?.(provider);
      const summary = await destroyLab({ lab: 'contract', provider: () => provider as Provider, store, all: true });
      const failedNames = summary.vms.filter((vm) => vm.result === 'failed').map((vm) => vm.name);
      expect(failedNames.length).toBeGreaterThan(0);
      for (const vm of summary.vms.filter((v) => v.result === 'failed')) expect(vm.failure?.code).toBe(code);
      expect((await saved(dir)).vms.map((vm) => [vm.name, vm.state, vm.errorCode])).toEqual(
        failedNames.map((name) => [name, 'failed', code]),
      );
      const fresh = new FakeProvider();
      const again = await destroyLab({ lab: 'contract', provider: () => fresh, store, all: true });
      expect(again.vms.every((vm) => vm.result === 'destroyed')).toBe(true);
      expect((await saved(dir)).vms).toEqual([]);
    });
  }
});
