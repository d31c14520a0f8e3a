import { type Check, failedChecks } from '../checks.js';
import { mapLimit } from '../concurrency.js';
import { describeError, isLabctlError, LabctlError } from '../errors.js';
import { type EventSink, silentSink } from '../events.js';
import { checkCaseCollisions } from '../names.js';
import {
  type Plan,
  type Provider,
  plannedSsh,
  resultsFor,
  type VmFailure,
  type VmPlan,
  type VmSeed,
} from '../provider.js';
import type { StateSession, StateStore, VmRecord } from '../state.js';
import { type Discover, recordDiscovery, type VmDiscoveryResult } from './discovery.js';
import { serialSaver } from './save.js';

/**
 * `labctl create`, provider-neutral: preflight -> create in bounded parallel batches (state written
 * after every batch) -> start in the same batches -> discovery -> summary. Converges: VMs that exist are kept, missing
 * ones created, orphans of an interrupted run (a domain without state, a 'creating' record without a
 * domain) adopted or re-made. A failure on one VM never loses the others.
 */
export type VmAction = 'created' | 'kept' | 'adopted' | 'failed' | 'skipped';

export interface CreateVmSummary {
  name: string;
  group: string;
  action: VmAction;
  state: VmRecord['state'];
  address: string | null;
  addresses: string[];
  hostKeys: string[];
  /** Why this VM failed or is not reachable, and what to check. */
  error?: string;
  /** The first failure of this VM in this run, typed: code, message, hint, the hypervisor's own text. */
  failure?: VmFailure;
  hint?: string;
}

export interface CreateSummary {
  lab: string;
  provider: string;
  checks: Check[];
  vms: CreateVmSummary[];
  counts: { planned: number; created: number; kept: number; adopted: number; failed: number; reachable: number };
  interrupted: boolean;
  durationMs: number;
}

export interface CreateFlowOptions {
  plan: Plan;
  provider: Provider;
  store: StateStore;
  events?: EventSink;
  /** Start the VMs (default true). */
  start?: boolean;
  /** Wait for addresses and SSH (default true; needs start). */
  wait?: boolean;
  timeoutMs: number;
  discover?: Discover;
  signal?: AbortSignal;
  /** Recorded in the lock file: who holds the lab. */
  command?: string;
  /**
   * Makes a VM's NoCloud seed (its own host keys, identity and address) right before the VM is made,
   * for providers that attach seeds; its public keys are pinned in the state first.
   */
  makeSeed?: (vm: VmPlan) => Promise<VmSeed>;
}

/** The preflight found something that must be fixed first. Nothing was changed. Exit status 2. */
export class PreflightError extends LabctlError {}

export class InterruptedError extends LabctlError {}

export async function createLab(options: CreateFlowOptions): Promise<CreateSummary> {
  const { plan, provider, store } = options;
  // A provider reports a VM's failure itself, with its own words; the flow's report of the same
  // failure would print it twice.
  const failedReported = new Set<string>();
  const upstream = options.events ?? silentSink;
  const events: typeof upstream = (event) => {
    if (event.status === 'failed') {
      const key = `${event.subject}\0${event.phase}`;
      if (failedReported.has(key)) return;
      failedReported.add(key);
    }
    upstream(event);
  };
  const started = Date.now();
  return store.withLock(plan.lab, options.command ?? 'labctl create', async (session) => {
    // A planned name that differs only in case from one the lab already has would be the same VM
    // and the same disk file on Hyper-V and NTFS: refused before anything is contacted.
    checkCaseCollisions(
      'vm',
      new Set([...session.state.vms.map((vm) => vm.name), ...plan.vms.map((vm) => vm.name)]),
      `lab ${plan.lab}`,
    );
    const onHypervisor = new Map((await listBeforeChanging(provider, plan.lab)).map((vm) => [vm.name, vm]));
    const { checks, placed } = await provider.preflight(plan);
    for (const check of checks) {
      if (check.level !== 'ok')
        events({
          subject: check.subject ?? plan.lab,
          phase: 'preflight',
          status: check.level === 'error' ? 'failed' : 'warning',
          message: check.message,
        });
    }
    const refused = failedChecks(checks);
    if (refused.length > 0) {
      throw new PreflightError('PREFLIGHT_FAILED', refused.map((check) => check.message).join('; '), {
        hint: [...new Set(refused.map((check) => check.hint).filter(Boolean))].join(' ') || 'Nothing was created.',
        details: { checks: refused },
        exitCode: 2,
      });
    }
    checkAddressesFree(session, plan);
    const seeds = await makeSeeds(options, onHypervisor);
    const save = serialSaver(session);
    const actions = new Map<string, VmAction>();
    const discoveries = new Map<string, VmDiscoveryResult>();
    // Hosts the provider could not reach: their VMs are neither seen nor made in this run.
    const down = provider.unreachableHosts?.() ?? new Map<string, VmFailure>();
    const unseen = new Set(
      session.state.vms
        .filter((vm) => vm.provider === provider.name && down.has(vm.host) && !onHypervisor.has(vm.name))
        .filter((vm) => !['creating', 'failed', 'missing', 'planned'].includes(vm.state))
        .map((vm) => vm.name),
    );
    reconcile(session, plan, provider.name, onHypervisor, actions, unseen);
    await save();

    const failures = new Map<string, VmFailure>();
    const summary = (interrupted: boolean): CreateSummary =>
      summarize(plan, provider.name, checks, session, actions, discoveries, failures, interrupted, started);
    // A VM recorded on a host that is down may well be running there: its record keeps its state
    // and gets the cause; nothing is made in its place.
    for (const name of unseen) {
      const error = down.get(session.vm(name)!.host)!;
      failures.set(name, error);
      session.upsertVm({ name, error: error.message, errorCode: error.code });
      if (plan.vms.some((vm) => vm.name === name)) actions.set(name, 'failed');
      events({ subject: name, phase: 'create', status: 'failed', message: error.message });
    }
    const toCreate = placed.vms
      .filter((vm) => !onHypervisor.has(vm.name) && !unseen.has(vm.name))
      .map((vm) => (seeds.has(vm.name) ? { ...vm, seed: seeds.get(vm.name)! } : vm));
    const byName = new Map([...placed.vms, ...toCreate].map((vm) => [vm.name, vm]));
    // Recorded before anything is touched: after a SIGKILL the next run knows these may be half-made.
    for (const vm of toCreate) {
      session.upsertVm({
        ...plannedRecord(vm, provider.name),
        state: 'creating',
        error: undefined,
        errorCode: undefined,
      });
    }
    await save();

    const fail = (name: string, phase: string, error: VmFailure) => {
      // The first failure of a VM is its cause: later steps skip a failed VM, so nothing overwrites it.
      if (failures.has(name)) return;
      failures.set(name, error);
      session.upsertVm({ name, state: 'failed', error: error.message, errorCode: error.code });
      actions.set(name, 'failed');
      events({ subject: name, phase, status: 'failed', message: error.message });
    };
    // The placed plan's batches (one provider call each, one host each), less the VMs that exist.
    const creating = new Set(toCreate.map((vm) => vm.name));
    await mapLimit(
      placed.batches
        .map((batch) => batch.filter((name) => creating.has(name)).map((name) => byName.get(name)!))
        .filter((batch) => batch.length > 0),
      plan.concurrency,
      async (batch) => {
        const results = await resultsFor(
          batch.map((vm) => vm.name),
          () => provider.create(batch, events),
        );
        for (const [name, result] of results) {
          if (!result.ok) {
            fail(name, 'create', result.error);
            continue;
          }
          const seed = byName.get(name)?.seed;
          session.upsertVm({
            ...result.facts,
            name,
            // The keys labctl made and put in the seed: pinned whatever the provider reported.
            ...(seed ? { ssh: { ...result.facts.ssh, hostKeys: seed.hostKeys }, instanceId: seed.instanceId } : {}),
            ...addressFields(byName.get(name)),
            state: result.facts.state === 'running' ? 'running' : 'created',
            error: undefined,
            errorCode: undefined,
          });
          actions.set(name, 'created');
        }
        await save();
      },
      { signal: options.signal },
    );
    if (options.signal?.aborted) return summary(true);

    if (options.start ?? true) {
      const startable = (name: string) => {
        const vm = session.vm(name);
        return vm && !failures.has(name) && vm.state !== 'failed' && vm.state !== 'creating' ? vm : undefined;
      };
      // Started in the same batches as create: one provider call per batch (Hyper-V: one start_vms
      // run per host), so the number of calls does not depend on --concurrency.
      await mapLimit(
        placed.batches
          .map((batch) => batch.map(startable).filter((vm): vm is VmRecord => vm !== undefined))
          .filter((batch) => batch.length > 0),
        plan.concurrency,
        async (batch) => {
          const startedAt = new Date().toISOString();
          const results = await resultsFor(
            batch.map((vm) => vm.name),
            () => provider.start(batch, events),
          );
          for (const vm of batch) {
            const result = results.get(vm.name)!;
            if (!result.ok) {
              fail(vm.name, 'start', result.error);
              continue;
            }
            session.upsertVm({
              name: vm.name,
              state: 'running',
              error: undefined,
              errorCode: undefined,
              // Core's own field, kept out of the provider's resources.
              ...(!result.facts.started && vm.startedAt ? {} : { startedAt }),
            });
          }
          await save();
        },
        { signal: options.signal },
      );
      if (options.signal?.aborted) return summary(true);

      if ((options.wait ?? true) && options.discover) {
        const running = plan.vms
          .map((vm) => session.vm(vm.name))
          .filter((vm): vm is VmRecord => vm?.state === 'running' && !failures.has(vm.name));
        const results = await options.discover(provider, running, {
          timeoutMs: options.timeoutMs,
          events,
          ...(options.signal ? { signal: options.signal } : {}),
        });
        for (const result of results) {
          discoveries.set(result.name, result);
          recordDiscovery(session, result);
        }
        await save();
        if (options.signal?.aborted) return summary(true);
      }
    }
    return summary(false);
  });
}

/**
 * The hypervisor's VMs of the lab, asked before anything changes: a hypervisor that cannot be
 * reached refuses the run like a failed preflight check (exit 2, its message and hint), since
 * nothing was changed.
 */
async function listBeforeChanging(provider: Provider, lab: string): Promise<VmRecord[]> {
  try {
    return await provider.list(lab);
  } catch (err) {
    const hint = isLabctlError(err) ? err.hint : undefined;
    throw new PreflightError(isLabctlError(err) ? err.code : 'PREFLIGHT_FAILED', describeError(err), {
      ...(hint ? { hint } : {}),
      exitCode: 2,
      cause: err,
    });
  }
}

function plannedRecord(vm: VmPlan, provider: string): Partial<VmRecord> & { name: string } {
  return {
    name: vm.name,
    group: vm.group,
    provider,
    host: vm.host,
    mac: vm.mac,
    addresses: [],
    ssh: plannedSsh(vm.ssh, vm.seed?.hostKeys ?? []),
    ...(vm.seed ? { instanceId: vm.seed.instanceId } : {}),
    ...addressFields(vm),
    ...(vm.vars ? { vars: vm.vars as VmRecord['vars'] } : {}),
  };
}

function addressFields(vm: VmPlan | undefined): Partial<VmRecord> {
  return vm?.address ? { assignedAddress: vm.address.address, assign: vm.address.assign } : {};
}

/**
 * A planned address that another VM of the lab already has (one this run keeps, or one recorded
 * under another name) is refused before anything changes: two VMs with one address would each
 * answer for the other.
 */
function checkAddressesFree(session: StateSession, plan: Plan): void {
  const plannedAddress = new Map(plan.vms.map((vm) => [vm.name, vm.address?.address]));
  const taken = new Map<string, string>();
  for (const vm of session.state.vms) {
    if (vm.state === 'missing' || vm.state === 'destroying') continue;
    for (const address of [vm.assignedAddress, ...vm.addresses])
      if (address && plannedAddress.get(vm.name) !== address) taken.set(address, vm.name);
  }
  const clashes = plan.vms
    .filter((vm) => vm.address && taken.has(vm.address.address) && taken.get(vm.address.address) !== vm.name)
    .map((vm) => `${vm.name} would get ${vm.address!.address}, which ${taken.get(vm.address!.address)} has`);
  if (clashes.length > 0)
    throw new PreflightError('ADDRESS_CLASH', clashes.join('; '), {
      hint: 'Give the group another address range (network.addresses), or destroy the VM that has the address.',
      exitCode: 2,
    });
}

/**
 * One seed per VM this run makes, before anything changes: a seed that cannot be made (the login
 * key's .pub missing, a cloud-config key labctl owns) refuses the run with exit 2.
 */
async function makeSeeds(
  options: CreateFlowOptions,
  onHypervisor: Map<string, VmRecord>,
): Promise<Map<string, VmSeed>> {
  const seeds = new Map<string, VmSeed>();
  if (!options.provider.seeds || !options.makeSeed) return seeds;
  for (const vm of options.plan.vms) {
    if (onHypervisor.has(vm.name) || !vm.cloudInit) continue;
    try {
      seeds.set(vm.name, await options.makeSeed(vm));
    } catch (err) {
      throw new PreflightError(isLabctlError(err) ? err.code : 'SEED_INVALID', `${vm.name}: ${describeError(err)}`, {
        hint:
          isLabctlError(err) && err.hint
            ? err.hint
            : 'Nothing was created. Fix seed: in labctl.yaml, or set seed.enabled: false.',
        exitCode: 2,
        cause: err,
      });
    }
  }
  return seeds;
}

/**
 * State vs. what the hypervisor has. A domain of this lab unknown to the state is adopted (it was made
 * by a run that died before writing state); a record whose domain is gone is re-made.
 */
function reconcile(
  session: StateSession,
  plan: Plan,
  provider: string,
  onHypervisor: Map<string, VmRecord>,
  actions: Map<string, VmAction>,
  unseen: ReadonlySet<string>,
): void {
  const planned = new Map(plan.vms.map((vm) => [vm.name, vm]));
  for (const [name, found] of onHypervisor) {
    const known = session.vm(name);
    const vmPlan = planned.get(name);
    if (!known || known.state === 'creating' || known.state === 'failed' || known.state === 'missing') {
      session.upsertVm({
        ...(vmPlan ? plannedRecord(vmPlan, provider) : {}),
        ...(known ?? {}),
        name,
        group: known?.group ?? found.group,
        provider,
        host: found.host,
        state: found.state,
        error: undefined,
        resources: { ...known?.resources, ...found.resources },
      });
      if (vmPlan)
        actions.set(name, known && known.state !== 'creating' && known.state !== 'failed' ? 'kept' : 'adopted');
    } else {
      // Found on another host than recorded (moved by hand, or by a migration that died before
      // writing state): the record follows the VM.
      session.upsertVm({ name, state: found.state, ...(found.host !== known.host ? { host: found.host } : {}) });
      if (vmPlan) actions.set(name, 'kept');
    }
  }
  for (const known of session.state.vms) {
    if (known.provider !== provider || onHypervisor.has(known.name) || unseen.has(known.name)) continue;
    if (known.state !== 'creating' && known.state !== 'planned')
      session.upsertVm({ name: known.name, state: 'missing' });
  }
}

function summarize(
  plan: Plan,
  provider: string,
  checks: Check[],
  session: StateSession,
  actions: Map<string, VmAction>,
  discoveries: Map<string, VmDiscoveryResult>,
  failures: Map<string, VmFailure>,
  interrupted: boolean,
  started: number,
): CreateSummary {
  const vms = plan.vms.map((vmPlan): CreateVmSummary => {
    const record = session.vm(vmPlan.name);
    const action = actions.get(vmPlan.name) ?? 'skipped';
    const discovery = discoveries.get(vmPlan.name);
    const unreachable = discovery && discovery.status !== 'reachable' && discovery.status !== 'addressed';
    return {
      name: vmPlan.name,
      group: vmPlan.group,
      action,
      state: record?.state ?? 'planned',
      address: record?.addresses[0] ?? null,
      addresses: record?.addresses ?? [],
      hostKeys: record?.ssh.hostKeys ?? [],
      ...(record?.error ? { error: record.error } : {}),
      ...(failures.has(vmPlan.name) ? { failure: failures.get(vmPlan.name) } : {}),
      ...(failures.get(vmPlan.name)?.hint
        ? { hint: failures.get(vmPlan.name)?.hint }
        : unreachable && discovery.hint
          ? { hint: discovery.hint }
          : {}),
    };
  });
  const count = (action: VmAction) => vms.filter((vm) => vm.action === action).length;
  return {
    lab: plan.lab,
    provider,
    checks,
    vms,
    counts: {
      planned: plan.vms.length,
      created: count('created'),
      kept: count('kept'),
      adopted: count('adopted'),
      failed: vms.filter((vm) => vm.error !== undefined).length,
      reachable: vms.filter((vm) => discoveries.get(vm.name)?.status === 'reachable').length,
    },
    interrupted,
    durationMs: Date.now() - started,
  };
}
