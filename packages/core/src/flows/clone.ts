import { LabctlError, UsageError } from '../errors.js';
import { type EventSink, silentSink } from '../events.js';
import { checkName } from '../names.js';
import type { Plan, Provider, VmFailure } from '../provider.js';
import type { StateStore, VmRecord } from '../state.js';
import type { CreateSummary } from './create.js';

/**
 * `labctl clone SRC NEW`: a new VM of the lab from an existing one. SRC's disk (as it is, SRC
 * stopped, or as one of its snapshots was) is copied to a frozen base that nothing ever writes;
 * NEW is then made by the create flow like any VM, on that base: its own name, MAC, seed (host keys,
 * instance-id) and state record. Linked: NEW's disk is an overlay on the base. Full: NEW gets a
 * standalone copy. Either way the base is the provider's, at a path it derives from NEW's name, and
 * goes when NEW is destroyed. SRC is only read.
 */
export interface CloneFlowOptions {
  lab: string;
  store: StateStore;
  source: string;
  name: string;
  mode: 'linked' | 'full';
  fromSnapshot?: string;
  provider: (vm: VmRecord) => Provider;
  /** NEW's plan on that base (planned as `create` plans a VM of SRC's group). */
  planVm: (source: VmRecord, base: string) => Promise<Plan>;
  /** The create flow, wired as `labctl create` wires it (seeds, discovery, start/wait). */
  create: (plan: Plan, provider: Provider) => Promise<CreateSummary>;
  events?: EventSink;
}

export interface CloneSummary {
  source: string;
  name: string;
  mode: 'linked' | 'full';
  fromSnapshot?: string;
  /** The frozen copy of SRC's disk NEW was made from (removed with NEW). */
  base: string;
  create: CreateSummary;
}

/** States of a record that a re-run of the same clone finishes (a killed or failed clone). */
const UNFINISHED = new Set(['planned', 'creating', 'failed']);

export async function cloneVm(options: CloneFlowOptions): Promise<CloneSummary> {
  const events = options.events ?? silentSink;
  checkName('vm', options.source, 'clone');
  checkName('vm', options.name, 'clone');
  if (options.fromSnapshot !== undefined) checkName('snapshot', options.fromSnapshot, 'clone --from-snapshot');
  if (options.source.toLowerCase() === options.name.toLowerCase())
    throw new UsageError('CLONE_SAME_NAME', 'the clone needs a name of its own');
  const state = await options.store.read();
  const source = state?.vms.find((vm) => vm.name === options.source);
  if (!source)
    throw new UsageError('VM_UNKNOWN', `no VM named ${options.source} in this lab`, {
      hint: "labctl list shows the lab's VMs.",
    });
  const existing = state?.vms.find((vm) => vm.name.toLowerCase() === options.name.toLowerCase());
  if (existing && !UNFINISHED.has(existing.state))
    throw new UsageError('VM_EXISTS', `the lab already has a VM named ${existing.name}`, {
      hint: `Pick another name, or destroy it first: labctl destroy ${existing.name}`,
    });
  const provider = options.provider(source);
  if (!provider.exportDisk || !provider.cloneBasePath)
    throw new UsageError('CLONE_UNSUPPORTED', `the ${provider.name} provider cannot copy a VM's disk yet`, {
      hint: 'Clones are built for libvirt and Hyper-V.',
    });
  if (options.fromSnapshot === undefined) {
    const live = (await provider.list(state!.lab)).find((vm) => vm.name === source.name);
    if (live && live.state !== 'stopped' && live.state !== 'created')
      throw new UsageError('VM_RUNNING', `${source.name} is ${live.state}: its disk would be copied while it writes`, {
        hint: `Stop it first (labctl stop ${source.name}), or clone one of its snapshots (--from-snapshot NAME).`,
      });
  }
  const basePath = provider.cloneBasePath(source, options.name, options.mode);
  // A re-run after a kill with NEW already recorded keeps the base NEW may already sit on (the
  // create flow then adopts or remakes NEW); a base without a record is left over: replaced.
  {
    const copied = await provider.exportDisk(
      source,
      {
        output: basePath,
        format: basePath.toLowerCase().endsWith('.vhdx') ? 'vhdx' : 'qcow2',
        flatten: options.mode === 'full',
        overwrite: !existing,
        ...(options.fromSnapshot !== undefined ? { snapshot: options.fromSnapshot } : {}),
      },
      events,
    );
    if (!copied.ok && !(existing && copied.error.code === 'OUTPUT_EXISTS')) throw failure(copied.error);
  }
  const plan = await options.planVm(source, basePath);
  const created = await options.create(plan, provider);
  return {
    source: source.name,
    name: options.name,
    mode: options.mode,
    ...(options.fromSnapshot !== undefined ? { fromSnapshot: options.fromSnapshot } : {}),
    base: basePath,
    create: created,
  };
}

function failure(error: VmFailure): LabctlError {
  return new LabctlError(error.code, error.message, { ...(error.hint ? { hint: error.hint } : {}) });
}
