import { UsageError } from '../errors.js';
import { type EventSink, silentSink } from '../events.js';
import { checkName } from '../names.js';
import { type Provider, resultsFor, type VmFailure, type VmResult } from '../provider.js';
import type { LabState, StateStore, VmRecord } from '../state.js';
import { serialSaver } from './save.js';

/**
 * The day-2 flow every operation on existing VMs shares (start, stop, snapshot): pick the VMs from
 * the state, hold the lab lock, hand each provider its VMs in calls of at most OPERATION_BATCH (one
 * Hyper-V script per host and call), and write each VM's new state as its result comes back. A VM
 * that fails keeps its record and gets the error; the first error of a VM is the one reported.
 */
export interface Selection {
  names?: readonly string[];
  groups?: readonly string[];
  all?: boolean;
}

/**
 * The recorded VMs a selection names, in state order, checked before anything changes: an unknown
 * name or group, or nothing selected, is a usage error (exit 2).
 */
export function selectVms(state: LabState, selection: Selection, command: string): VmRecord[] {
  const names = selection.names ?? [];
  const groups = selection.groups ?? [];
  for (const name of names) checkName('vm', name, command);
  for (const group of groups) checkName('group', group, command);
  if (!selection.all && names.length === 0 && groups.length === 0)
    throw new UsageError('NOTHING_SELECTED', `${command}: name the VMs, or pass --group G or --all`, {
      hint: `labctl ${command} vm-01 vm-02, labctl ${command} --group web, or labctl ${command} --all`,
    });
  const byName = new Map(state.vms.map((vm) => [vm.name.toLowerCase(), vm]));
  const unknown = names.filter((name) => !byName.has(name.toLowerCase()));
  if (unknown.length > 0)
    throw new UsageError('VM_UNKNOWN', `no VM named ${unknown.join(', ')} in lab "${state.lab}"`, {
      hint: "labctl list shows the lab's VMs.",
    });
  const knownGroups = new Set(state.vms.map((vm) => vm.group));
  const emptyGroups = groups.filter((group) => !knownGroups.has(group));
  if (emptyGroups.length > 0)
    throw new UsageError('GROUP_UNKNOWN', `no VM of group ${emptyGroups.join(', ')} in lab "${state.lab}"`, {
      hint: "labctl list shows the lab's VMs and their groups.",
    });
  const wanted = new Set(names.map((name) => name.toLowerCase()));
  const selected = state.vms.filter(
    (vm) => selection.all || wanted.has(vm.name.toLowerCase()) || groups.includes(vm.group),
  );
  if (selected.length === 0)
    throw new UsageError('NOTHING_SELECTED', `lab "${state.lab}" has no VMs`, {
      hint: 'Create some with: labctl create --count 3',
    });
  return selected;
}

export type OperationResult<F> = { name: string; ok: true; facts: F } | { name: string; ok: false; error: VmFailure };

export interface OperationSummary<F> {
  lab: string;
  operation: string;
  vms: Array<OperationResult<F>>;
  interrupted: boolean;
  /** With dryRun: the VMs the operation would act on (nothing was asked of any provider). */
  dryRun?: { selected: string[] };
}

export interface OperationOptions<F> extends Selection {
  lab: string;
  store: StateStore;
  /** The provider that manages a recorded VM. */
  provider: (vm: VmRecord) => Provider;
  /** The operation's name for messages, the lock and progress: "start", "stop", "snapshot save". */
  operation: string;
  /** One provider call for a batch of VMs on that provider. */
  call: (provider: Provider, vms: VmRecord[], events: EventSink) => Promise<Array<VmResult<F>>>;
  /** What to write into a VM's record after it succeeded (nothing: the record is left as it is). */
  update?: (vm: VmRecord, facts: F) => Partial<VmRecord> | undefined;
  events?: EventSink;
  signal?: AbortSignal;
  /** Select and check only: no provider call, no state written (`--dry-run`). */
  dryRun?: boolean;
}

/** VMs per provider call: one Hyper-V script handles this many; an interrupt waits for at most one call. */
export const OPERATION_BATCH = 25;

export async function operateOnVms<F>(options: OperationOptions<F>): Promise<OperationSummary<F>> {
  const events = options.events ?? silentSink;
  return options.store.withLock(options.lab, `labctl ${options.operation}`, async (session) => {
    const save = serialSaver(session);
    const targets = selectVms(session.state, options, options.operation);
    if (options.dryRun)
      return {
        lab: session.state.lab,
        operation: options.operation,
        vms: [],
        interrupted: false,
        dryRun: { selected: targets.map((vm) => vm.name) },
      };
    const byProvider = new Map<Provider, VmRecord[]>();
    for (const vm of targets) {
      const provider = options.provider(vm);
      byProvider.set(provider, [...(byProvider.get(provider) ?? []), vm]);
    }
    const results = new Map<string, OperationResult<F>>();
    await Promise.all(
      [...byProvider].map(async ([provider, vms]) => {
        for (let i = 0; i < vms.length; i += OPERATION_BATCH) {
          if (options.signal?.aborted) return;
          const batch = vms.slice(i, i + OPERATION_BATCH);
          const outcome = await resultsFor(
            batch.map((vm) => vm.name),
            () => options.call(provider, batch, events),
          );
          for (const vm of batch) {
            const result = outcome.get(vm.name)!;
            results.set(vm.name, result);
            if (result.ok) {
              const change = options.update?.(vm, result.facts);
              if (change) session.upsertVm({ ...change, error: undefined, errorCode: undefined, name: vm.name });
            } else {
              session.upsertVm({
                name: vm.name,
                error: `${options.operation} failed: ${result.error.message}`,
                errorCode: result.error.code,
              });
            }
          }
          await save();
        }
      }),
    );
    return {
      lab: session.state.lab,
      operation: options.operation,
      vms: targets.flatMap((vm) => {
        const result = results.get(vm.name);
        return result ? [result] : [];
      }),
      interrupted: options.signal?.aborted ?? false,
    };
  });
}

/** The operation's result as the exit status: 130 interrupted, 1 when any VM failed, else 0. */
export function operationExitCode(summary: { vms: Array<{ ok: boolean }>; interrupted: boolean }): number {
  if (summary.interrupted) return 130;
  return summary.vms.some((vm) => !vm.ok) ? 1 : 0;
}
