import { lstat, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LabctlError, UsageError } from '../errors.js';
import { type EventSink, silentSink } from '../events.js';
import { checkName, pathInside } from '../names.js';
import type { Plan, Provider, VmFailure } from '../provider.js';
import { STATE_DIR, type StateStore, type VmRecord } from '../state.js';
import type { CreateSummary } from './create.js';

/**
 * `labctl clone SRC NEW`: a new VM of the lab from an existing one. SRC's disk (as it is, SRC
 * stopped, or as one of its snapshots was) is copied to a frozen base that nothing ever writes;
 * NEW is then made by the create flow like any VM, on that base: its own name, MAC, seed (host keys,
 * instance-id) and state record. Linked: NEW's disk is an overlay on the base, which stays as long
 * as NEW does. Full: NEW gets a standalone copy and the base is removed. SRC is only read.
 */
export interface CloneFlowOptions {
  lab: string;
  store: StateStore;
  source: string;
  name: string;
  mode: 'linked' | 'full';
  fromSnapshot?: string;
  provider: (vm: VmRecord) => Provider;
  /** Where the frozen base goes: a path labctl derives from NEW's name (see cloneBasePath). */
  basePath: string;
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
  /** The frozen base NEW's overlay uses (linked clones). */
  base?: string;
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
  if (!provider.exportDisk)
    throw new UsageError('CLONE_UNSUPPORTED', `the ${provider.name} provider cannot copy a VM's disk yet`, {
      hint: 'Clones are built for libvirt.',
    });
  if (options.fromSnapshot === undefined) {
    const live = (await provider.list(state!.lab)).find((vm) => vm.name === source.name);
    if (live && live.state !== 'stopped' && live.state !== 'created')
      throw new UsageError('VM_RUNNING', `${source.name} is ${live.state}: its disk would be copied while it writes`, {
        hint: `Stop it first (labctl stop ${source.name}), or clone one of its snapshots (--from-snapshot NAME).`,
      });
  }
  // A re-run after a kill keeps a base the unfinished clone may already run on.
  if (!(existing && (await present(options.basePath)))) {
    await mkdir(dirname(options.basePath), { recursive: true, mode: 0o700 });
    const copied = await provider.exportDisk(
      source,
      {
        output: options.basePath,
        format: 'qcow2',
        flatten: options.mode === 'full',
        overwrite: true,
        ...(options.fromSnapshot !== undefined ? { snapshot: options.fromSnapshot } : {}),
      },
      events,
    );
    if (!copied.ok) throw failure(copied.error);
  }
  const plan = await options.planVm(source, options.basePath);
  const created = await options.create(plan, provider);
  const made = created.vms.some((vm) => vm.name === options.name && vm.action !== 'failed');
  if (options.mode === 'full' && made) await rm(options.basePath, { force: true });
  return {
    source: source.name,
    name: options.name,
    mode: options.mode,
    ...(options.fromSnapshot !== undefined ? { fromSnapshot: options.fromSnapshot } : {}),
    ...(options.mode === 'linked' ? { base: options.basePath } : {}),
    create: created,
  };
}

/** The frozen base of a linked clone, derived from the clone's (validated) name inside the lab. */
export function cloneBasePath(labDir: string, name: string): string {
  checkName('vm', name, 'clone');
  return pathInside(join(labDir, STATE_DIR, 'bases'), `${name}.base.qcow2`, 'clone base');
}

/** After `destroy`: the clone's base goes with it (a path labctl derives itself, never one from the state). */
export async function removeCloneBase(labDir: string, name: string): Promise<boolean> {
  const path = cloneBasePath(labDir, name);
  if (!(await present(path))) return false;
  await rm(path, { force: true });
  return true;
}

async function present(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isFile();
  } catch {
    return false;
  }
}

function failure(error: VmFailure): LabctlError {
  return new LabctlError(error.code, error.message, { ...(error.hint ? { hint: error.hint } : {}) });
}
