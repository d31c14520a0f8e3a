import { win32 } from 'node:path';
import type { Check } from '@labctl/core/checks';
import { mapLimit, sleep } from '@labctl/core/concurrency';
import { describeError, UsageError } from '@labctl/core/errors';
import type { EventSink } from '@labctl/core/events';
import { recordIdentity } from '@labctl/core/flows/bundle';
import { checkName } from '@labctl/core/names';
import {
  type AdapterReport,
  type DestroyFacts,
  type DestroyOptions,
  type DiskExportFacts,
  type DiskExportRequest,
  type HostReport,
  type MigrateFacts,
  type MigrateRequest,
  type PlacedPlan,
  type Plan,
  type PreflightOptions,
  type PreflightResult,
  type Provider,
  plannedSsh,
  type SnapshotFacts,
  type SnapshotInfo,
  type SnapshotRequest,
  type StartFacts,
  type StopFacts,
  type StopOptions,
  type VmBundleDescription,
  type VmExportFacts,
  type VmFailure,
  type VmPlan,
  type VmResult,
  vmFailure,
} from '@labctl/core/provider';
import type { VmRecord } from '@labctl/core/state';
import {
  type CommandRunner,
  type PowerShellFlavor,
  PowerShellSession,
  type ScriptRunLog,
} from '@labctl/remote/powershell';
import { adapterReports } from './discovery.js';
import { type DriverTimeouts, type HyperVDriver, PowerShellHyperVDriver } from './driver.js';
import { HyperVNoHostsError, HyperVPlacementError } from './errors.js';
import { createSpec, diskDirFor, forHyperV } from './inputs.js';
import { hostFindings, type MigrationFinding, migrationFindings, moveFacts, onSharedStorage } from './move.js';
import { colonMac, labctlState, objectArray } from './parse.js';
import { batches, placeVms } from './placement.js';
import { evaluatePreflight, type HostFactsOutcome } from './preflight.js';
import { seedPayload } from './seed-disk.js';
import type { CheckpointFacts, CreateVmsInput, HostFacts, StartVmResult, VmRef, VolumeSpace } from './types.js';

/** How long a start call waits for others to join its run (see `start`). */

/** One create_vms run: the VMs of one batch on one host and the exact input the script gets. */
export interface CreateBatch {
  host: string;
  vms: VmPlan[];
  input: CreateVmsInput;
}

/**
 * The Hyper-V provider. One connection per host, reused for the whole run; every operation is one
 * PowerShell invocation per host (per batch when a host allows parallel batches), whatever the
 * number of VMs. Placement by free memory happens in preflight and is kept for create.
 */
export interface HyperVHostConfig {
  name: string;
  /** Where VM disks and configurations go; default: the host's VirtualHardDiskPath. */
  path?: string;
  /** Script runs in parallel on this host (each one a batch of VMs). Default 1. */
  concurrency?: number;
}

export interface ClosableRunner extends CommandRunner {
  close?(): Promise<void> | void;
}

export interface HyperVProviderOptions {
  lab: string;
  hosts: HyperVHostConfig[];
  /** Opens the one connection to a host (SSH with a pinned host key, or local PowerShell). */
  connect(host: HyperVHostConfig): Promise<ClosableRunner>;
  flavor?: PowerShellFlavor;
  log?: (entry: ScriptRunLog) => void;
  debug?: boolean;
  timeouts?: DriverTimeouts;
  /**
   * The lab's other hosts (a provider narrowed to one host by --host or a VM record): where
   * `migrate` may send VMs; their facts are read over their own connection.
   */
  peers?: HyperVHostConfig[];
  /**
   * What the directory says about the delegation a migration needs from `source` to `destination`
   * (one LDAP search, when the lab file has delegation: settings): findings, each with its fix.
   */
  delegationFindings?: (source: string, destination: string) => Promise<MigrationFinding[]>;
  /**
   * Close a host's connection after this long without a script running (default 2000 ms), so a
   * finished command can exit; the next call reconnects. 0 keeps connections until close().
   */
  idleCloseMs?: number;
}

interface Connection {
  runner: ClosableRunner;
  driver: HyperVDriver;
}

/** Microsoft's OUI, which Hyper-V uses for its own MACs. */
export const HYPERV_MAC_PREFIX = '00:15:5D';

export class HyperVProvider implements Provider {
  readonly name = 'hyperv';
  /** A seed disk per VM, attached by create_vms (second SCSI disk on Gen2, IDE 0:1 on Gen1). */
  readonly seeds = true;
  /** Planned static MACs are in Microsoft's Hyper-V range 00:15:5D (still derived from lab + VM name). */
  static readonly macPrefix = HYPERV_MAC_PREFIX;
  private readonly connections = new Map<string, Promise<Connection>>();
  private readonly facts = new Map<string, HostFacts>();

  constructor(private readonly options: HyperVProviderOptions) {
    if (options.hosts.length === 0) throw new HyperVNoHostsError();
  }

  /** The driver of a host, connecting on first use (one connection per host for the whole run). */
  driver(host: string): Promise<HyperVDriver> {
    return this.connection(host).then((connection) => connection.driver);
  }

  /** The configured hosts, in lab-file order. */
  hostNames(): string[] {
    return this.options.hosts.map((host) => host.name);
  }

  /** PowerShell invocations per host so far. */
  async invocations(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [host, connection] of this.connections) out[host] = (await connection).driver.invocations;
    return out;
  }

  private connection(host: string): Promise<Connection> {
    let connection = this.connections.get(host);
    if (!connection) {
      const config = this.hostConfig(host);
      connection = this.options.connect(config).then((runner) => {
        const session = new PowerShellSession(this.closingWhenIdle(host, runner), {
          host: config.name,
          ...(this.options.flavor ? { flavor: this.options.flavor } : {}),
          ...(this.options.log ? { log: this.options.log } : {}),
          ...(this.options.debug ? { debug: true } : {}),
        });
        return { runner, driver: new PowerShellHyperVDriver(session, this.options.timeouts) };
      });
      // A failed connection is not cached: a later call may try again.
      connection.catch(() => this.connections.delete(host));
      this.connections.set(host, connection);
    }
    return connection;
  }

  /** Counts scripts in flight; when none has run for idleCloseMs, drops and closes the connection. */
  private closingWhenIdle(host: string, runner: ClosableRunner): CommandRunner {
    const idleMs = this.options.idleCloseMs ?? 2000;
    let inFlight = 0;
    let timer: NodeJS.Timeout | undefined;
    return {
      exec: async (command, options) => {
        inFlight++;
        clearTimeout(timer);
        try {
          return await runner.exec(command, options);
        } finally {
          inFlight--;
          if (inFlight === 0 && idleMs > 0) {
            timer = setTimeout(() => {
              if (inFlight > 0) return;
              this.connections.delete(host);
              Promise.resolve(runner.close?.()).catch(() => {});
            }, idleMs);
            timer.unref();
          }
        }
      },
    };
  }

  private hostConfig(host: string): HyperVHostConfig {
    const config =
      this.options.hosts.find((item) => item.name === host) ?? this.options.peers?.find((item) => item.name === host);
    if (!config) throw new HyperVPlacementError(`host ${host}`);
    return config;
  }

  /** The directory preflight reports free space for (the configured path, else the host's default). */
  private diskDir(host: string): string | undefined {
    return this.hostConfig(host).path ?? this.facts.get(host)?.virtualHardDiskPath ?? undefined;
  }

  /**
   * Host facts from every host in parallel (read-only: get_host_facts, so the same in a dry run),
   * placement by free memory, then the checks; the placed plan carries the host of every VM and the
   * create_vms runs per host.
   */
  async preflight(original: Plan, _options: PreflightOptions = {}): Promise<PreflightResult> {
    const plan = { ...original, vms: original.vms.map(forHyperV) };
    const hosts = this.options.hosts;
    const goldens = [...new Set(plan.vms.map((vm) => vm.golden))];
    const switches = [...new Set(plan.vms.map((vm) => vm.network))];
    const names = plan.vms.map((vm) => vm.name);
    const outcomes: HostFactsOutcome[] = await Promise.all(
      hosts.map(async (host): Promise<HostFactsOutcome> => {
        try {
          const driver = await this.driver(host.name);
          const facts = await driver.hostFacts({
            lab: this.options.lab,
            goldens,
            switches,
            names,
            diskDirs: host.path ? [host.path] : [],
          });
          this.facts.set(host.name, facts);
          return { host: host.name, facts };
        } catch (error) {
          return { host: host.name, error: describeError(error) };
        }
      }),
    );
    const existing = new Map<string, string>();
    for (const outcome of outcomes) {
      for (const entry of outcome.facts?.names ?? [])
        if (entry.exists && entry.lab === this.options.lab) existing.set(entry.name, outcome.host);
    }
    const reachable = outcomes.filter((outcome) => outcome.facts?.hyperVModule);
    const placement = placeVms(
      plan.vms,
      reachable.map((outcome) => ({ name: outcome.host, freeMemoryBytes: outcome.facts?.freeMemoryBytes ?? 0 })),
      { existing },
    );
    const checks = evaluatePreflight(this.options.lab, plan.vms, outcomes, placement, (host) => this.diskDir(host));
    for (const vm of plan.vms.filter((v) => v.address?.assign === 'reservation'))
      checks.push({
        id: 'address.reservation',
        level: 'error',
        subject: vm.name,
        message: `${vm.name}: DHCP reservations are made on libvirt networks; a Hyper-V switch has no DHCP server of labctl's to reserve on`,
        hint: 'Use assign: static on Hyper-V (the address goes into the VM seed), or reserve the address on your DHCP server by its MAC.',
      });
    // A VM no reachable host could take keeps its plan's host; the checks above already refuse the run.
    const placed = checks.some((check) => check.level === 'error')
      ? { ...original, batches: [original.vms.map((vm) => vm.name)] }
      : this.placedPlan(original, placement.hostOf);
    return { checks, placed };
  }

  /**
   * Placement without contacting any host (--emit-powershell): a VM keeps a configured host named in
   * its plan, the others are spread round-robin. The live run places by free memory instead.
   */
  placeOffline(plan: Plan): PlacedPlan {
    const hostOf = new Map<string, string>();
    let next = 0;
    for (const vm of plan.vms) {
      const pinned = this.options.hosts.find((host) => host.name === vm.host);
      const host = pinned ?? this.options.hosts[next++ % this.options.hosts.length];
      if (host) hostOf.set(vm.name, host.name);
    }
    return this.placedPlan(plan, hostOf);
  }

  /** Every VM on its host; per host, at most `concurrency` create_vms runs of near-equal size. */
  private placedPlan(plan: Plan, hostOf: ReadonlyMap<string, string>): PlacedPlan {
    const vms = plan.vms.map((vm) => ({ ...vm, host: hostOf.get(vm.name) ?? this.configuredHost(vm) }));
    const byHost = new Map<string, string[]>();
    for (const vm of vms) byHost.set(vm.host, [...(byHost.get(vm.host) ?? []), vm.name]);
    return {
      ...plan,
      vms,
      batches: [...byHost].flatMap(([host, hostVms]) => batches(hostVms, this.hostConfig(host).concurrency ?? 1)),
    };
  }

  /** The plan's host when it is a configured one; the only host when there is one. */
  private configuredHost(vm: VmPlan): string {
    if (this.options.hosts.some((item) => item.name === vm.host)) return vm.host;
    if (this.options.hosts.length === 1) return this.options.hosts[0]?.name ?? '';
    throw new HyperVPlacementError(vm.name);
  }

  /** The create_vms input of each batch of a placed plan, exactly as create() sends it (also for --emit). */
  createBatches(placed: PlacedPlan): CreateBatch[] {
    const byName = new Map(placed.vms.map((vm) => [vm.name, vm]));
    return placed.batches.map((names) => this.createBatch(names.map((name) => byName.get(name)!)));
  }

  private createBatch(planned: readonly VmPlan[]): CreateBatch {
    const vms = planned.map(forHyperV);
    const host = this.configuredHost(vms[0]!);
    const diskDir = diskDirFor(this.hostConfig(host).path, this.options.lab);
    return { host, vms, input: { lab: this.options.lab, diskDir, vms: vms.map((vm) => createSpec(vm)) } };
  }

  /** Each VM's seed disk into its create_vms input (made here, right before the run, never stored). */
  private async attachSeeds(plan: CreateBatch[]): Promise<void> {
    for (const batch of plan)
      for (const spec of batch.input.vms) {
        const seed = batch.vms.find((vm) => vm.name === spec.name)?.seed;
        if (seed) spec.seed = await seedPayload(seed);
      }
  }

  /** One create_vms run per host of the call: the flows hand it one batch of the placed plan. */
  async create(vms: VmPlan[], events: EventSink): Promise<Array<VmResult<VmRecord>>> {
    const byHost = new Map<string, VmPlan[]>();
    for (const vm of vms) byHost.set(this.configuredHost(vm), [...(byHost.get(this.configuredHost(vm)) ?? []), vm]);
    const plan = [...byHost.values()].map((hostVms) => this.createBatch(hostVms));
    await this.attachSeeds(plan);
    const byName = new Map(plan.flatMap((batch) => batch.vms).map((vm) => [vm.name, vm]));
    const results: Array<VmResult<VmRecord>> = [];
    await this.perHost(plan, async (batch) => {
      for (const vm of batch.vms)
        events({ subject: vm.name, phase: 'define', status: 'start', message: `on ${batch.host}` });
      let outcomes: Awaited<ReturnType<HyperVDriver['createVms']>>;
      try {
        outcomes = await (await this.driver(batch.host)).createVms(batch.input);
      } catch (error) {
        // The whole run could not happen (host unreachable, script failed): every VM of it failed.
        const failure = vmFailure(error, 'HYPERV_RUN_FAILED');
        for (const vm of batch.vms) {
          events({ subject: vm.name, phase: 'define', status: 'failed', message: failure.message });
          results.push({ name: vm.name, ok: false, error: failure });
        }
        return;
      }
      for (const outcome of outcomes) {
        const vm = byName.get(outcome.name);
        if (!vm) continue;
        const spec = batch.input.vms.find((item) => item.name === outcome.name);
        if (!outcome.ok) {
          const failure = hypervFailure(outcome.error, 'HYPERV_CREATE_FAILED');
          events({ subject: vm.name, phase: 'define', status: 'failed', message: failure.message });
          results.push({ name: vm.name, ok: false, error: failure });
          continue;
        }
        events({
          subject: vm.name,
          phase: 'define',
          status: outcome.created ? 'done' : 'skipped',
          message: outcome.created ? undefined : 'already exists',
        });
        results.push({
          name: vm.name,
          ok: true,
          facts: this.record(vm, batch.host, {
            state: labctlState(outcome.state) === 'running' ? 'running' : 'created',
            mac: colonMac(outcome.mac) ?? vm.mac,
            resources: {
              vmId: outcome.id,
              vhdPath: outcome.vhdPath,
              golden: vm.golden,
              generation: spec?.generation,
              ...(outcome.seedPath ? { seedPath: outcome.seedPath } : {}),
            },
          }),
        });
      }
    });
    return results;
  }

  private record(vm: VmPlan, host: string, extra: Partial<VmRecord>): VmRecord {
    return {
      name: vm.name,
      group: vm.group,
      provider: this.name,
      host,
      addresses: [],
      ssh: plannedSsh(vm.ssh),
      state: 'created',
      mac: vm.mac,
      ...(vm.vars ? { vars: vm.vars as VmRecord['vars'] } : {}),
      ...extra,
    };
  }

  private refs(vms: readonly VmRecord[]): Map<string, Array<VmRef & { record: VmRecord }>> {
    const byHost = new Map<string, Array<VmRef & { record: VmRecord }>>();
    for (const record of vms) {
      const id = typeof record.resources?.vmId === 'string' ? record.resources.vmId : undefined;
      const ref = { name: record.name, ...(id ? { id } : {}), record };
      byHost.set(record.host, [...(byHost.get(record.host) ?? []), ref]);
    }
    return byHost;
  }

  /** Runs work per host in parallel, and per host at most `concurrency` batches at a time. */
  private async perHost<B extends { host: string }>(
    items: readonly B[],
    fn: (item: B) => Promise<void>,
  ): Promise<void> {
    const byHost = new Map<string, B[]>();
    for (const item of items) byHost.set(item.host, [...(byHost.get(item.host) ?? []), item]);
    await Promise.all(
      [...byHost].map(async ([host, hostItems]) => {
        const settled = await mapLimit(hostItems, this.hostConfig(host).concurrency ?? 1, fn);
        const failed = settled.find((item) => !item.ok);
        if (failed && !failed.ok) throw failed.error;
      }),
    );
  }

  /**
   * Starts VMs: one start_vms run per host of the call. The flows call it once per batch of the
   * placed plan, so the number of runs follows the plan, not timing.
   */
  async start(vms: VmRecord[], events: EventSink): Promise<Array<VmResult<StartFacts>>> {
    const results: Array<VmResult<StartFacts>> = [];
    await Promise.all(
      [...this.refs(vms)].map(async ([host, refs]) => {
        for (const outcome of await this.runStart(
          host,
          refs.map(({ record: _record, ...ref }) => ref),
          events,
        )) {
          if (!outcome.ok || outcome.state === 'not_created') {
            results.push({
              name: outcome.name,
              ok: false,
              error: outcome.ok
                ? {
                    code: 'HYPERV_VM_MISSING',
                    message: `the VM does not exist on ${host}`,
                    hint: 'Run labctl create again to make it.',
                  }
                : hypervFailure(outcome.error, 'HYPERV_START_FAILED'),
            });
          } else {
            results.push({
              name: outcome.name,
              ok: true,
              facts: { state: labctlState(outcome.state), started: Boolean(outcome.started) },
            });
          }
        }
      }),
    );
    return results;
  }

  private async runStart(host: string, refs: VmRef[], emit: EventSink): Promise<StartVmResult[]> {
    for (const ref of refs) emit({ subject: ref.name, phase: 'start', status: 'start' });
    const results: StartVmResult[] = [];
    try {
      results.push(...(await (await this.driver(host)).startVms(this.options.lab, refs)));
    } catch (error) {
      const message = describeError(error);
      results.push(...refs.map((ref) => ({ name: ref.name, ok: false, error: { message } })));
    }
    for (const result of results) {
      if (!result.ok || result.state === 'not_created') {
        emit({
          subject: result.name,
          phase: 'start',
          status: 'failed',
          message: result.error?.message ?? `the VM does not exist on ${host}`,
        });
      } else {
        emit({
          subject: result.name,
          phase: 'start',
          status: result.started ? 'done' : 'skipped',
          message: result.started ? undefined : 'already running',
        });
      }
    }
    return results;
  }

  /** One stop_vms run per host of the call: every guest is asked at once, the deadline covers them all. */
  async stop(vms: VmRecord[], options: StopOptions, events: EventSink): Promise<Array<VmResult<StopFacts>>> {
    return this.scriptPerHost(vms, 'stop', 'HYPERV_STOP_FAILED', events, async (driver, refs) =>
      (
        await driver.stopVms({
          vms: refs,
          force: Boolean(options.force),
          timeoutS: options.timeoutS,
          forceAfterTimeout: Boolean(options.forceAfterTimeout),
        })
      ).map((outcome): VmResult<StopFacts> => {
        if (outcome.ok && outcome.state === 'not_created')
          return { name: outcome.name, ok: false, error: missingVm(driver.host) };
        if (!outcome.ok && outcome.error?.type === 'PausedCritical')
          return { name: outcome.name, ok: false, error: pausedCritical(outcome.volume) };
        if (!outcome.ok)
          return { name: outcome.name, ok: false, error: hypervFailure(outcome.error, 'HYPERV_STOP_FAILED') };
        events({
          subject: outcome.name,
          phase: 'stop',
          status: outcome.stopped ? 'done' : 'skipped',
          message: outcome.stopped ? (outcome.forced ? 'turned off' : 'shut down by the guest') : 'not running',
        });
        return {
          name: outcome.name,
          ok: true,
          facts: {
            state: labctlState(outcome.state),
            stopped: Boolean(outcome.stopped),
            forced: Boolean(outcome.forced),
          },
        };
      }),
    );
  }

  /**
   * Template capture on the host: copy_disk merges the stopped VM's chain into one new standalone
   * disk at `output`, a path on that host (D:\\golden\\web-v2.vhdx), with Convert-VHD.
   */
  async exportDisk(vm: VmRecord, request: DiskExportRequest, events: EventSink): Promise<VmResult<DiskExportFacts>> {
    const refuse = (code: string, message: string, hint?: string): VmResult<DiskExportFacts> => ({
      name: vm.name,
      ok: false,
      error: { code, message, ...(hint ? { hint } : {}) },
    });
    if (request.format !== 'vhdx' && request.format !== 'vhd')
      return refuse('HYPERV_CAPTURE_FORMAT', `Hyper-V writes .vhdx or .vhd, not ${request.format}`);
    if (!isHostPath(request.output))
      return refuse(
        'HYPERV_CAPTURE_PATH',
        `${JSON.stringify(request.output)} is not a path on the Hyper-V host`,
        'Give the output as the host sees it: D:\\golden\\web-v2.vhdx or \\\\server\\share\\web-v2.vhdx.',
      );
    if (request.snapshot)
      return refuse(
        'HYPERV_CAPTURE_SNAPSHOT',
        'capturing a checkpoint on Hyper-V is not built yet',
        `Stop the VM (labctl stop ${vm.name}) and capture its current disk.`,
      );
    const id = typeof vm.resources?.vmId === 'string' ? vm.resources.vmId : undefined;
    const golden = typeof vm.resources?.golden === 'string' ? [vm.resources.golden] : [];
    events({ subject: vm.name, phase: 'copy', status: 'start', message: `Convert-VHD to ${request.output}` });
    try {
      const facts = await (await this.driver(vm.host)).copyDisk({
        vm: { name: vm.name, ...(id ? { id } : {}) },
        output: request.output,
        // Always merged: a copy of only the top disk would hang on parents a checkpoint merge rewrites.
        flatten: true,
        overwrite: Boolean(request.overwrite),
        protect: golden,
      });
      events({ subject: vm.name, phase: 'copy', status: 'done', message: facts.path });
      return {
        name: vm.name,
        ok: true,
        facts: {
          path: facts.path,
          format: request.format,
          bytes: Number(facts.bytes),
          sha256: String(facts.sha256),
        },
      };
    } catch (error) {
      const failure = vmFailure(error, 'HYPERV_CAPTURE_FAILED');
      if (/already exists$/.test(failure.message)) failure.code = 'OUTPUT_EXISTS';
      events({ subject: vm.name, phase: 'copy', status: 'failed', message: failure.message });
      return { name: vm.name, ok: false, error: failure };
    }
  }

  /**
   * A clone's frozen base: `NAME.base.vhdx` beside the source's disk, in the lab's folder on its
   * host; remove_vms removes it with the clone whose disk sits on it. Linked clones only: a full
   * clone's copy would leave the base without a disk that proves it labctl's.
   */
  cloneBasePath(source: VmRecord, name: string, mode: 'linked' | 'full'): string {
    if (mode === 'full')
      throw new UsageError('CLONE_FULL_UNSUPPORTED', 'full clones are not built for Hyper-V yet', {
        hint: 'Use a linked clone (the default): its base is a merged, standalone copy of the source disk.',
      });
    const disk = typeof source.resources?.vhdPath === 'string' ? source.resources.vhdPath : undefined;
    if (!disk)
      throw new UsageError('CLONE_NO_DISK', `the state does not say where ${source.name}'s disk is`, {
        hint: `labctl list; the record of ${source.name} needs resources.vhdPath.`,
      });
    return win32.join(win32.dirname(disk), `${checkName('vm', name, 'clone')}.base.vhdx`);
  }

  /**
   * `labctl export` on the host: Hyper-V's Export-VM layout in `<dir>\\<name>` (a folder on the
   * VM's host) with labctl's vm.json and SHA256SUMS (scripts/bundle.ts). No OVA: convert the
   * exported VHDX with qemu-img where one is needed.
   */
  async exportVm(
    vm: VmRecord,
    request: { dir: string; format: 'bundle' | 'ova' },
    events: EventSink,
  ): Promise<VmResult<VmExportFacts>> {
    const fail = (error: VmFailure): VmResult<VmExportFacts> => {
      events({ subject: vm.name, phase: 'export', status: 'failed', message: error.message });
      return { name: vm.name, ok: false, error };
    };
    if (request.format === 'ova')
      return fail({
        code: 'HYPERV_OVA_UNSUPPORTED',
        message: 'OVA packages are written for libvirt VMs only',
        hint: 'Export the bundle and convert its VHDX: qemu-img convert -O vmdk -o subformat=streamOptimized.',
      });
    if (!isHostPath(request.dir))
      return fail({
        code: 'HYPERV_EXPORT_PATH',
        message: `${JSON.stringify(request.dir)} is not a folder on the Hyper-V host`,
        hint: 'Give it as the host sees it: D:\\exports or \\\\server\\share\\exports.',
      });
    const id = typeof vm.resources?.vmId === 'string' ? vm.resources.vmId : undefined;
    events({ subject: vm.name, phase: 'export', status: 'start', message: `Export-VM to ${request.dir}` });
    try {
      const facts = await (await this.driver(vm.host)).exportVm({
        vm: { name: vm.name, ...(id ? { id } : {}) },
        dir: request.dir,
        // Every key the script fills in is here already: a PowerShell object takes no new properties.
        description: {
          labctlExport: 1,
          ...recordIdentity(vm),
          provider: this.name,
          mac: '',
          cpus: 0,
          memoryMiB: 0,
          network: '',
          options: {},
          files: {},
          exportedAt: '',
        },
      });
      events({ subject: vm.name, phase: 'export', status: facts.written ? 'done' : 'skipped', message: facts.path });
      return {
        name: vm.name,
        ok: true,
        facts: {
          path: facts.path,
          format: 'bundle',
          written: Boolean(facts.written),
          files: objectArray<{ name: string; bytes: number; sha256: string }>(facts.files),
        },
      };
    } catch (error) {
      return fail(vmFailure(error, 'HYPERV_EXPORT_FAILED'));
    }
  }

  /** A bundle on the first host, checked there (SHA256SUMS), its vm.json returned for core to validate. */
  async readBundle(dir: string): Promise<{ dir: string; description: unknown; problem?: string }> {
    if (!isHostPath(dir))
      throw new UsageError('HYPERV_IMPORT_PATH', `${JSON.stringify(dir)} is not a folder on the Hyper-V host`, {
        hint: 'Give the exported folder as the host sees it: D:\\exports\\web-01.',
      });
    const host = this.options.hosts[0]!.name;
    const facts = await (await this.driver(host)).importVm({ lab: this.options.lab, dir, checkOnly: true });
    if (facts.problem) return { dir, description: undefined, problem: facts.problem };
    try {
      return { dir, description: JSON.parse(String(facts.description)) };
    } catch (err) {
      return { dir, description: undefined, problem: `vm.json is not JSON: ${(err as Error).message}` };
    }
  }

  /** Import-VM -Copy -GenerateNewId into the lab's disk folder on the first host; left off. */
  async importVm(
    bundle: { dir: string; description: VmBundleDescription },
    events: EventSink,
  ): Promise<VmResult<VmRecord>> {
    const d = bundle.description;
    const host = this.options.hosts[0]!.name;
    events({ subject: d.name, phase: 'import', status: 'start', message: `Import-VM -Copy on ${host}` });
    try {
      const facts = await (await this.driver(host)).importVm({
        lab: this.options.lab,
        dir: bundle.dir,
        checkOnly: false,
        ...(diskDirFor(this.hostConfig(host).path, this.options.lab)
          ? { diskDir: diskDirFor(this.hostConfig(host).path, this.options.lab)! }
          : {}),
      });
      if (facts.problem) throw new UsageError('BUNDLE_INVALID', `${bundle.dir}: ${facts.problem}`);
      events({ subject: d.name, phase: 'import', status: 'done', message: 'imported, off' });
      const mac = colonMac(facts.mac);
      return {
        name: d.name,
        ok: true,
        facts: {
          name: d.name,
          group: d.group,
          provider: this.name,
          host,
          ...(mac ? { mac } : {}),
          addresses: [],
          ssh: { ...d.ssh },
          state: 'created',
          ...(d.instanceId ? { instanceId: d.instanceId } : {}),
          ...(d.assignedAddress ? { assignedAddress: d.assignedAddress } : {}),
          ...(d.assign ? { assign: d.assign } : {}),
          ...(d.vars ? { vars: d.vars as VmRecord['vars'] } : {}),
          resources: { vmId: facts.id, vhdPath: facts.vhdPath, generation: facts.generation },
        },
      };
    } catch (error) {
      const failure = vmFailure(error, 'HYPERV_IMPORT_FAILED');
      events({ subject: d.name, phase: 'import', status: 'failed', message: failure.message });
      return { name: d.name, ok: false, error: failure };
    }
  }

  /** One snapshot_vms run per host of the call (checkpoints; see scripts/snapshot_vms.ts). */
  async snapshot(
    vms: VmRecord[],
    request: SnapshotRequest,
    events: EventSink,
  ): Promise<Array<VmResult<SnapshotFacts>>> {
    const phase = `snapshot ${request.action}`;
    return this.scriptPerHost(vms, phase, 'HYPERV_SNAPSHOT_FAILED', events, async (driver, refs) =>
      (
        await driver.snapshotVms({
          action: request.action,
          vms: refs,
          ...(request.name ? { name: request.name } : {}),
          ...(request.type ? { type: request.type === 'production' ? 'Production' : 'Standard' } : {}),
          ...(request.minFreeBytes !== undefined ? { minFreeBytes: request.minFreeBytes } : {}),
        })
      ).map((outcome): VmResult<SnapshotFacts> => {
        if (!outcome.ok)
          return { name: outcome.name, ok: false, error: hypervFailure(outcome.error, 'HYPERV_SNAPSHOT_FAILED') };
        if (request.action !== 'list')
          events({
            subject: outcome.name,
            phase,
            status: 'done',
            ...(outcome.snapshot ? { message: outcome.snapshot } : {}),
          });
        return {
          name: outcome.name,
          ok: true,
          facts: {
            ...(outcome.snapshot ? { snapshot: outcome.snapshot } : {}),
            snapshots: objectArray<CheckpointFacts>(outcome.snapshots).map(
              (checkpoint): SnapshotInfo => ({
                name: String(checkpoint.name),
                ...(checkpoint.created ? { created: String(checkpoint.created) } : {}),
                ...(checkpoint.parent ? { parent: String(checkpoint.parent) } : {}),
              }),
            ),
            ...(outcome.state ? { state: labctlState(outcome.state) } : {}),
          },
        };
      }),
    );
  }

  /**
   * One script run per host for the VMs of the call; a run that could not happen at all fails each
   * of its VMs with that error, and a VM the script said nothing about is a failure too.
   */
  private async scriptPerHost<F>(
    vms: VmRecord[],
    phase: string,
    code: string,
    events: EventSink,
    run: (driver: HyperVDriver, refs: VmRef[]) => Promise<Array<VmResult<F>>>,
  ): Promise<Array<VmResult<F>>> {
    const results: Array<VmResult<F>> = [];
    await Promise.all(
      [...this.refs(vms)].map(async ([host, refs]) => {
        const plain = refs.map(({ record: _record, ...ref }) => ref);
        for (const ref of plain) events({ subject: ref.name, phase, status: 'start' });
        let outcomes: Array<VmResult<F>>;
        try {
          outcomes = await run(await this.driver(host), plain);
        } catch (error) {
          const failure = vmFailure(error, 'HYPERV_RUN_FAILED');
          outcomes = plain.map((ref) => ({ name: ref.name, ok: false, error: failure }));
        }
        for (const ref of plain) {
          const outcome = outcomes.find((item) => item.name === ref.name) ?? {
            name: ref.name,
            ok: false as const,
            error: { code, message: 'the script returned no result for this VM' },
          };
          if (!outcome.ok) events({ subject: ref.name, phase, status: 'failed', message: outcome.error.message });
          results.push(outcome);
        }
      }),
    );
    return results;
  }

  /** The first host of this provider as `labctl hosts` shows it: get_host_facts, read-only. */
  async hostReport(): Promise<HostReport> {
    const name = this.options.hosts[0]!.name;
    try {
      const driver = await this.driver(name);
      const facts = await driver.hostFacts({
        lab: this.options.lab,
        goldens: [],
        switches: [],
        names: [],
        diskDirs: [],
      });
      if (!facts.hyperVModule)
        return {
          name,
          connection: name,
          reachable: false,
          error: `no Hyper-V PowerShell module (PowerShell ${facts.psVersion})`,
        };
      return {
        name,
        connection: name,
        reachable: true,
        versions: { powershell: facts.psVersion },
        migration: await driver
          .moveVms({ mode: 'facts', vms: [] })
          .then(moveFacts)
          .then((move) => {
            const problems = hostFindings(name, move.host, true).map(({ problem, fix }) => ({ problem, fix }));
            return { ready: problems.length === 0, problems };
          }),
        ...(facts.memoryCapacityBytes !== undefined ? { totalMemoryBytes: facts.memoryCapacityBytes } : {}),
        ...(facts.freeMemoryBytes !== undefined ? { freeMemoryBytes: facts.freeMemoryBytes } : {}),
      };
    } catch (error) {
      const failure = vmFailure(error, 'HYPERV_RUN_FAILED');
      return {
        name,
        connection: name,
        reachable: false,
        error: failure.message,
        ...(failure.hint ? { hint: failure.hint } : {}),
      };
    }
  }

  /**
   * Live migration with Move-VM, run on each source host for its VMs. First the preflight: move_vms
   * reads the source and the destination (and the directory, when the lab names one) and every
   * finding (migration off, CredSSP, no migration network, a switch the destination lacks, too little
   * memory, missing delegation) fails the source's VMs with the command that fixes it, before
   * anything moves. Disks not on shared storage (a share, a Cluster Shared Volume) move with the VM
   * (-IncludeStorage) into the destination's path. A VM already on the destination is reported there.
   */
  async migrate(vms: VmRecord[], request: MigrateRequest, events: EventSink): Promise<Array<VmResult<MigrateFacts>>> {
    const to = request.to;
    const known = [...this.options.hosts, ...(this.options.peers ?? [])].some((host) => host.name === to);
    if (!known)
      return vms.map((vm) => ({
        name: vm.name,
        ok: false,
        error: {
          code: 'HOST_UNKNOWN',
          message: `${to} is not a host of this lab`,
          hint: 'Hosts are listed under hosts: in labctl.yaml.',
        },
      }));
    const results: Array<VmResult<MigrateFacts>> = [];
    await Promise.all(
      [...this.refs(vms)].map(async ([from, refs]) => {
        const plain = refs.map(({ record: _record, ...ref }) => ref);
        try {
          results.push(...(await this.migrateFrom(from, to, plain, refs, request, events)));
        } catch (error) {
          const failure = vmFailure(error, 'HYPERV_RUN_FAILED');
          for (const ref of plain)
            events({ subject: ref.name, phase: 'migrate', status: 'failed', message: failure.message });
          results.push(...plain.map((ref) => ({ name: ref.name, ok: false as const, error: failure })));
        }
      }),
    );
    return results;
  }

  private async migrateFrom(
    from: string,
    to: string,
    refs: VmRef[],
    records: Array<VmRef & { record: VmRecord }>,
    request: MigrateRequest,
    events: EventSink,
  ): Promise<Array<VmResult<MigrateFacts>>> {
    const storagePath = this.hostConfig(to).path;
    const [sourceDriver, destinationDriver] = await Promise.all([this.driver(from), this.driver(to)]);
    const [source, destination] = await Promise.all([
      sourceDriver.moveVms({ mode: 'facts', vms: refs }).then(moveFacts),
      from === to
        ? undefined
        : destinationDriver
            .moveVms({ mode: 'facts', vms: refs, ...(storagePath ? { storagePath } : {}) })
            .then(moveFacts),
    ]);
    const here = new Map(source.vms.filter((vm) => vm.exists).map((vm) => [vm.name, vm]));
    const there = new Set((destination ?? source).vms.filter((vm) => vm.exists).map((vm) => vm.name));
    const results: Array<VmResult<MigrateFacts>> = [];
    const stay = (name: string, state?: string): VmResult<MigrateFacts> => ({
      name,
      ok: true,
      facts: { host: to, from: to, moved: false, state: labctlState(state), durationMs: 0 },
    });
    const toMove: VmRef[] = [];
    for (const ref of refs) {
      const vm = here.get(ref.name);
      if (from === to || (!vm && there.has(ref.name))) {
        const seen = (destination ?? source).vms.find((item) => item.name === ref.name);
        results.push(seen?.exists ? stay(ref.name, seen.state) : { name: ref.name, ok: false, error: missingVm(to) });
      } else if (!vm) results.push({ name: ref.name, ok: false, error: missingVm(from) });
      else if (request.mode === 'live' && vm.state !== 'Running')
        results.push({
          name: ref.name,
          ok: false,
          error: {
            code: 'MIGRATE_NOT_RUNNING',
            message: `${ref.name} is ${vm.state}: live migration moves a running VM`,
            hint: 'Start it first, or move it with --offline.',
          },
        });
      else if (request.mode === 'offline' && vm.state === 'Running')
        results.push({
          name: ref.name,
          ok: false,
          error: {
            code: 'MIGRATE_RUNNING',
            message: `${ref.name} is running: offline migration moves a stopped VM`,
            hint: 'Stop it first (labctl stop), or migrate it live (--live).',
          },
        });
      else toMove.push(ref);
    }
    if (toMove.length === 0 || !destination) return results;
    const moving = { ...source, vms: source.vms.filter((vm) => toMove.some((ref) => ref.name === vm.name)) };
    const includeStorage =
      request.copyStorage === true || moving.vms.some((vm) => (vm.disks ?? []).some((disk) => !onSharedStorage(disk)));
    const findings = [
      ...migrationFindings({ name: from, facts: moving }, { name: to, facts: destination }, includeStorage),
      ...((await this.options.delegationFindings?.(
        source.host.computerName || from,
        destination.host.computerName || to,
      )) ?? []),
    ];
    if (findings.length > 0) {
      const error: VmFailure = {
        code: 'MIGRATE_PREFLIGHT',
        message: `${from} -> ${to}: ${findings.map((finding) => finding.problem).join('; ')}`,
        hint: findings.map((finding) => finding.fix).join('. '),
      };
      for (const ref of toMove)
        events({ subject: ref.name, phase: 'migrate', status: 'failed', message: error.message });
      return [...results, ...toMove.map((ref) => ({ name: ref.name, ok: false as const, error }))];
    }
    const targetPath = storagePath ?? destination.host.virtualHardDiskPath;
    for (const ref of toMove)
      events({ subject: ref.name, phase: 'migrate', status: 'start', message: `${from} -> ${to}` });
    const raw = (await sourceDriver.moveVms({
      mode: 'move',
      vms: toMove,
      destination: destination.host.fqdn || destination.host.computerName || to,
      ...(includeStorage ? { includeStorage: true, storagePath: targetPath } : {}),
    })) as { vms?: unknown };
    const outcomes = objectArray<{
      name: string;
      ok: boolean;
      moved?: boolean;
      state?: string;
      live?: boolean;
      durationMs?: number;
      error?: { message?: string; type?: string; category?: string };
    }>(raw?.vms);
    for (const ref of toMove) {
      const outcome = outcomes.find((item) => item.name === ref.name);
      if (!outcome?.ok) {
        const failure = outcome
          ? hypervFailure(outcome.error, 'MIGRATE_FAILED')
          : { code: 'MIGRATE_FAILED', message: 'the script returned no result for this VM' };
        events({ subject: ref.name, phase: 'migrate', status: 'failed', message: failure.message });
        results.push({ name: ref.name, ok: false, error: failure });
        continue;
      }
      if (!outcome.moved) {
        results.push(stay(ref.name, here.get(ref.name)?.state));
        continue;
      }
      // The disks' new paths when the storage moved: the same file names in the VM's folder there.
      const resources = records.find((item) => item.name === ref.name)?.record.resources ?? {};
      const moved: Record<string, string> = {};
      for (const key of ['vhdPath', 'seedPath']) {
        const path = resources[key];
        if (includeStorage && typeof path === 'string' && !onSharedStorage(path))
          moved[key] = win32.join(targetPath, ref.name, win32.basename(path));
      }
      const durationMs = Number(outcome.durationMs ?? 0);
      events({
        subject: ref.name,
        phase: 'migrate',
        status: 'done',
        message: `on ${to} (${(durationMs / 1000).toFixed(1)} s)`,
      });
      results.push({
        name: ref.name,
        ok: true,
        facts: {
          host: to,
          from,
          moved: true,
          mode: outcome.live ? 'live' : 'offline',
          state: labctlState(outcome.state),
          durationMs,
          ...(Object.keys(moved).length > 0 ? { resources: moved } : {}),
        },
      });
    }
    return results;
  }

  async adapters(vms: VmRecord[]): Promise<AdapterReport[]> {
    const reports: AdapterReport[] = [];
    await Promise.all(
      [...this.refs(vms)].map(async ([host, refs]) => {
        const facts = await (await this.driver(host)).adapters(refs.map(({ record: _record, ...ref }) => ref));
        reports.push(...adapterReports(facts, host));
      }),
    );
    return reports;
  }

  async list(lab: string): Promise<VmRecord[]> {
    const records: VmRecord[] = [];
    await Promise.all(
      this.options.hosts.map(async (host) => {
        for (const vm of await (await this.driver(host.name)).listVms(lab)) {
          const mac = colonMac(vm.mac);
          records.push({
            name: vm.name,
            group: vm.group || 'default',
            provider: this.name,
            host: host.name,
            addresses: [],
            ssh: { hostKeys: [] },
            state: labctlState(vm.state),
            ...(mac ? { mac } : {}),
            resources: { vmId: vm.id, vhdPath: vm.vhdPath, generation: vm.generation },
          });
        }
      }),
    );
    return records;
  }

  async destroy(
    vms: VmRecord[],
    options: DestroyOptions,
    events: EventSink,
    protect: readonly string[] = [],
  ): Promise<Array<VmResult<DestroyFacts>>> {
    const results: Array<VmResult<DestroyFacts>> = [];
    await Promise.all(
      [...this.refs(vms)].map(async ([host, refs]) => {
        const goldens = new Set(protect);
        for (const ref of refs)
          if (typeof ref.record.resources?.golden === 'string') goldens.add(ref.record.resources.golden);
        for (const ref of refs) events({ subject: ref.name, phase: 'destroy', status: 'start' });
        let outcomes: Awaited<ReturnType<HyperVDriver['removeVms']>>;
        try {
          outcomes = await (await this.driver(host)).removeVms({
            lab: this.options.lab,
            keepDisks: options.keepDisks ?? false,
            protect: [...goldens],
            vms: refs.map(({ record, ...ref }) => ({
              ...ref,
              ...(typeof record.resources?.vhdPath === 'string' ? { vhdPath: record.resources.vhdPath } : {}),
            })),
          });
        } catch (error) {
          const failure = vmFailure(error, 'HYPERV_RUN_FAILED');
          for (const ref of refs) results.push({ name: ref.name, ok: false, error: failure });
          return;
        }
        for (const outcome of outcomes) {
          if (!outcome.ok) {
            const failure = hypervFailure(outcome.error, 'HYPERV_DESTROY_FAILED');
            events({ subject: outcome.name, phase: 'destroy', status: 'failed', message: failure.message });
            results.push({ name: outcome.name, ok: false, error: failure });
            continue;
          }
          const kept = (outcome.keptDisks ?? []).map((disk) => `${disk.path} (${disk.reason})`);
          const leftAlone = (outcome.keptDisks ?? [])
            .filter((disk) => disk.reason !== 'kept as asked')
            .map((disk) => `${JSON.stringify(disk.path)} (${disk.reason})`);
          for (const file of leftAlone)
            events({ subject: outcome.name, phase: 'destroy', status: 'warning', message: `left alone: ${file}` });
          events({
            subject: outcome.name,
            phase: 'destroy',
            status: outcome.state === 'removed' ? 'done' : 'skipped',
            message:
              [
                outcome.state === 'removed' ? undefined : 'was not there',
                kept.length ? `kept ${kept.join(', ')}` : undefined,
              ]
                .filter(Boolean)
                .join('; ') || undefined,
          });
          results.push({ name: outcome.name, ok: true, facts: { absent: outcome.state !== 'removed', leftAlone } });
        }
      }),
    );
    return results;
  }

  async close(): Promise<void> {
    const connections = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(
      connections.map(async (connection) => {
        try {
          await (await connection).runner.close?.();
        } catch {
          // A connection that failed to open has nothing to close.
        }
      }),
    );
  }
}

function missingVm(host: string): VmFailure {
  return {
    code: 'HYPERV_VM_MISSING',
    message: `the VM does not exist on ${host}`,
    hint: 'Run labctl create again to make it.',
  };
}

/** Seed 004's lesson: a Paused-Critical VM is out of disk space, not "running", and stopping it frees nothing. */
function pausedCritical(volume: VolumeSpace | undefined): VmFailure {
  const where = volume?.root ? `volume ${volume.root}` : 'the volume holding its disks';
  const free =
    typeof volume?.freeBytes === 'number'
      ? `${(volume.freeBytes / 2 ** 30).toFixed(2)} GiB free`
      : 'free space unknown';
  return {
    code: 'HYPERV_PAUSED_CRITICAL',
    message: `the VM is Paused-Critical: Hyper-V paused it because ${where} is full (${free})`,
    hint: "Free space on that volume (or move the VM's storage), then resume it with Resume-VM or labctl start; merging or deleting checkpoints also frees space.",
  };
}

/** A path as a Windows host sees it: a drive path or a UNC share. */
function isHostPath(path: string): boolean {
  return /^(?:[A-Za-z]:\\|\\\\[^\\]+\\[^\\]+)[^"\u0000-\u001f]*$/.test(path);
}

/** A per-VM error from a script, typed (its message is PowerShell's own text). */
function hypervFailure(
  error: { message?: string; type?: string; category?: string } | undefined,
  code: string,
): VmFailure {
  const message = error?.message ?? 'failed';
  return { code, message, hypervisor: [error?.type, error?.category, message].filter(Boolean).join(': ') };
}
