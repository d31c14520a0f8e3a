import type { Check } from '../checks.js';
import type { EventSink } from '../events.js';
import {
  type AdapterReport,
  type DestroyFacts,
  type DestroyOptions,
  type Plan,
  type PreflightOptions,
  nextSnapshotName,
  type PreflightResult,
  placeInBatches,
  type Provider,
  type SnapshotFacts,
  type SnapshotInfo,
  type SnapshotRequest,
  type StartFacts,
  type StopFacts,
  type StopOptions,
  type VmPlan,
  type VmResult,
  vmFailure,
} from '../provider.js';
import type { VmRecord } from '../state.js';

/**
 * A hand-written recording fake of the Provider contract, for orchestration tests of the flows and of
 * discovery (style point 5): every method records its calls (`X_Called`, `X_Args`) and answers from
 * `X_Return` / fails with `X_Err`. It keeps a small in-memory hypervisor so create/list/destroy agree.
 */
export class FakeProvider implements Provider {
  readonly name = 'fake';
  batchSize = 1;
  /** Takes seeds (as libvirt and Hyper-V do); the seeds it was handed, by VM name. */
  seeds = false;
  readonly seedsSeen = new Map<string, VmPlan['seed']>();
  /** Domains "on the hypervisor", by name. */
  readonly domains = new Map<string, VmRecord>();

  preflight_Called = 0;
  preflight_Return: Check[] = [];
  create_Called = 0;
  create_Args: string[][] = [];
  /** Per VM name: fail creating it with this error (the others of the call are made). */
  create_Err = new Map<string, Error>();
  /** The whole create call fails (host unreachable): no VM of the call is made. */
  create_CallErr: Error | undefined;
  start_Called = 0;
  start_Args: string[][] = [];
  /** Per VM name: this VM fails to start; the others of the call start. */
  start_Err = new Map<string, Error>();
  /** The whole start call fails (a connection drop): no VM of the call is started. */
  start_CallErr: Error | undefined;
  /** Called after each start call, with the names it started (e.g. to abort a signal mid-way). */
  onStart: ((names: string[]) => void) | undefined;
  adapters_Called = 0;
  adapters_Args: string[][] = [];
  /** Answers per poll (the last one repeats); a function gets the poll number. */
  adapters_Return: AdapterReport[][] | ((poll: number, vms: VmRecord[]) => AdapterReport[]) = [[]];
  adapters_Err: Error | undefined;
  list_Called = 0;
  destroy_Called = 0;
  destroy_Args: Array<{ names: string[]; options: DestroyOptions }> = [];
  /** Per VM name: fail removing it. */
  destroy_Err = new Map<string, Error>();
  /** The whole destroy call fails. */
  destroy_CallErr: Error | undefined;
  /** Called inside create for each VM, after it "exists" (e.g. to abort a signal mid-way). */
  onCreate: ((name: string) => void) | undefined;

  preflight_Options: PreflightOptions[] = [];
  stop_Args: Array<{ names: string[]; options: StopOptions }> = [];
  /** Per VM name: this VM fails to stop. */
  stop_Err = new Map<string, Error>();
  snapshot_Args: Array<{ names: string[]; request: SnapshotRequest }> = [];
  /** Snapshot stacks "on the hypervisor", oldest first. */
  readonly snapshots = new Map<string, SnapshotInfo[]>();

  async preflight(plan: Plan, options: PreflightOptions = {}): Promise<PreflightResult> {
    this.preflight_Called++;
    this.preflight_Options.push(options);
    return { checks: this.preflight_Return, placed: placeInBatches(plan, this.batchSize) };
  }

  async create(vms: VmPlan[], events: EventSink): Promise<Array<VmResult<VmRecord>>> {
    this.create_Called++;
    this.create_Args.push(vms.map((vm) => vm.name));
    for (const vm of vms) if (vm.seed) this.seedsSeen.set(vm.name, vm.seed);
    if (this.create_CallErr) throw this.create_CallErr;
    const results: Array<VmResult<VmRecord>> = [];
    for (const vm of vms) {
      const err = this.create_Err.get(vm.name);
      if (err) {
        events({ subject: vm.name, phase: 'define', status: 'failed', message: err.message });
        results.push({ name: vm.name, ok: false, error: vmFailure(err) });
        continue;
      }
      const record: VmRecord = {
        name: vm.name,
        group: vm.group,
        provider: this.name,
        host: vm.host,
        mac: vm.mac,
        addresses: [],
        ssh: { user: vm.ssh.user, port: vm.ssh.port, hostKeys: [] },
        state: 'created',
        resources: { disk: `/fake/${vm.name}.qcow2` },
      };
      this.domains.set(vm.name, { ...record, state: 'stopped' });
      events({ subject: vm.name, phase: 'define', status: 'done' });
      results.push({ name: vm.name, ok: true, facts: record });
      this.onCreate?.(vm.name);
    }
    return results;
  }

  async start(vms: VmRecord[], events: EventSink): Promise<Array<VmResult<StartFacts>>> {
    this.start_Called++;
    this.start_Args.push(vms.map((vm) => vm.name));
    if (this.start_CallErr) throw this.start_CallErr;
    const results: Array<VmResult<StartFacts>> = [];
    for (const vm of vms) {
      const err = this.start_Err.get(vm.name);
      const domain = this.domains.get(vm.name);
      if (err || !domain) {
        results.push({
          name: vm.name,
          ok: false,
          error: err ? vmFailure(err) : { code: 'FAKE_NO_DOMAIN', message: `no domain ${vm.name}` },
        });
        events({ subject: vm.name, phase: 'start', status: 'failed' });
        continue;
      }
      const started = domain.state !== 'running';
      domain.state = 'running';
      events({ subject: vm.name, phase: 'start', status: 'done' });
      results.push({ name: vm.name, ok: true, facts: { state: 'running', started } });
    }
    this.onStart?.(vms.map((vm) => vm.name));
    return results;
  }

  async adapters(vms: VmRecord[]): Promise<AdapterReport[]> {
    const poll = this.adapters_Called++;
    this.adapters_Args.push(vms.map((vm) => vm.name));
    if (this.adapters_Err) throw this.adapters_Err;
    const all =
      typeof this.adapters_Return === 'function'
        ? this.adapters_Return(poll, vms)
        : (this.adapters_Return[Math.min(poll, this.adapters_Return.length - 1)] ?? []);
    const names = new Set(vms.map((vm) => vm.name));
    return all.filter((report) => names.has(report.vm));
  }

  async list(_lab: string): Promise<VmRecord[]> {
    this.list_Called++;
    return [...this.domains.values()].map((vm) => ({ ...vm }));
  }

  async destroy(vms: VmRecord[], options: DestroyOptions, events: EventSink): Promise<Array<VmResult<DestroyFacts>>> {
    this.destroy_Called++;
    this.destroy_Args.push({ names: vms.map((vm) => vm.name), options });
    if (this.destroy_CallErr) throw this.destroy_CallErr;
    const results: Array<VmResult<DestroyFacts>> = [];
    for (const vm of vms) {
      const err = this.destroy_Err.get(vm.name);
      if (err) {
        results.push({ name: vm.name, ok: false, error: vmFailure(err) });
        continue;
      }
      const absent = !this.domains.delete(vm.name);
      events({ subject: vm.name, phase: 'destroy', status: 'done' });
      results.push({ name: vm.name, ok: true, facts: { absent, leftAlone: [] } });
    }
    return results;
  }

  async stop(vms: VmRecord[], options: StopOptions, events: EventSink): Promise<Array<VmResult<StopFacts>>> {
    this.stop_Args.push({ names: vms.map((vm) => vm.name), options });
    return vms.map((vm): VmResult<StopFacts> => {
      const err = this.stop_Err.get(vm.name);
      const domain = this.domains.get(vm.name);
      if (err || !domain)
        return {
          name: vm.name,
          ok: false,
          error: err ? vmFailure(err) : { code: 'FAKE_NO_DOMAIN', message: `no domain ${vm.name}` },
        };
      const stopped = domain.state === 'running';
      domain.state = 'stopped';
      events({ subject: vm.name, phase: 'stop', status: stopped ? 'done' : 'skipped' });
      return { name: vm.name, ok: true, facts: { state: 'stopped', stopped, forced: Boolean(options.force) } };
    });
  }

  async snapshot(vms: VmRecord[], request: SnapshotRequest): Promise<Array<VmResult<SnapshotFacts>>> {
    this.snapshot_Args.push({ names: vms.map((vm) => vm.name), request });
    return vms.map((vm): VmResult<SnapshotFacts> => {
      const stack = this.snapshots.get(vm.name) ?? [];
      this.snapshots.set(vm.name, stack);
      const missing = (name: string): VmResult<SnapshotFacts> => ({
        name: vm.name,
        ok: false,
        error: { code: 'SNAPSHOT_MISSING', message: `${vm.name} has no snapshot ${name}` },
      });
      switch (request.action) {
        case 'list':
          return { name: vm.name, ok: true, facts: { snapshots: [...stack] } };
        case 'save': {
          const name = request.name ?? nextSnapshotName(stack);
          stack.push({ name, ...(stack.length ? { parent: stack.at(-1)!.name } : {}) });
          return { name: vm.name, ok: true, facts: { snapshot: name, snapshots: [...stack] } };
        }
        default: {
          const target = request.name ?? stack.at(-1)?.name;
          const index = stack.findIndex((item) => item.name === target);
          if (target === undefined || index < 0) return missing(target ?? '(none)');
          if (request.action === 'delete') stack.splice(index, 1);
          return { name: vm.name, ok: true, facts: { snapshot: target, snapshots: [...stack] } };
        }
      }
    });
  }
}
