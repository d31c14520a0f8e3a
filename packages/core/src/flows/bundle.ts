import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { z } from 'zod';
import { LabctlError, UsageError } from '../errors.js';
import { type EventSink, silentSink } from '../events.js';
import { nameSchema, pathInside } from '../names.js';
import type { Provider, VmBundleDescription, VmExportFacts, VmFailure } from '../provider.js';
import type { StateStore, VmRecord } from '../state.js';
import { type Selection, selectVms } from './operate.js';

/**
 * `labctl export` and `labctl import`: a VM copied out as a self-contained bundle (or an OVA), and
 * a bundle made a VM of a lab again. The bundle is untrusted input when it comes back: SHA256SUMS
 * must verify, and its description (vm.json) is checked like a lab file before anything changes.
 */
export const SUMS_FILE = 'SHA256SUMS';
export const DESCRIPTION_FILE = 'vm.json';

export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Why a directory is not a complete bundle (a file missing or changed), or undefined when it is. */
export async function bundleProblem(dir: string): Promise<string | undefined> {
  let sums: string;
  try {
    sums = await readFile(pathInside(dir, SUMS_FILE, 'bundle file'), 'utf8');
  } catch {
    return `no ${SUMS_FILE}: not a labctl export, or an unfinished one`;
  }
  const lines = sums.split('\n').filter(Boolean);
  if (lines.length === 0 || lines.length > 16) return `${SUMS_FILE} does not list the bundle's files`;
  for (const line of lines) {
    const match = /^([0-9a-f]{64}) {2}([A-Za-z0-9][A-Za-z0-9._-]{0,127})$/.exec(line);
    if (!match) return `${SUMS_FILE} has a line that is not "SHA256  FILE": ${JSON.stringify(line.slice(0, 80))}`;
    try {
      if ((await fileSha256(pathInside(dir, match[2]!, 'bundle file'))) !== match[1])
        return `${match[2]} does not match its SHA-256 in ${SUMS_FILE}`;
    } catch {
      return `${match[2]} is missing`;
    }
  }
  return undefined;
}

/** A file of the bundle: relative, up to three folders deep (Hyper-V's `Virtual Hard Disks/…`), no `..`. */
const fileName = z
  .string()
  .regex(/^(?:[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}\/){0,3}[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}$/, 'a file inside the bundle')
  .refine((value) => !value.split('/').includes('..'), 'a file inside the bundle');
const line = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[^\u0000-\u001f\u007f-\u009f]*$/, 'one line of printable text');

const DescriptionSchema = z.object({
  labctlExport: z.literal(1),
  name: nameSchema('vm'),
  group: nameSchema('group'),
  provider: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
  mac: z.string().regex(/^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$/, 'a MAC address'),
  cpus: z.number().int().min(1).max(1024),
  memoryMiB: z
    .number()
    .int()
    .min(16)
    .max(16 * 1024 * 1024),
  network: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[^\u0000-\u001f\u007f"'<>&]*$/, 'a network, bridge:NAME or switch name'),
  options: z.record(z.string().regex(/^[a-zA-Z]{1,32}$/), z.union([line(4096), z.number()])),
  ssh: z.object({
    user: line(256).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    keyFile: line(4096).optional(),
    hostKeys: z.array(line(16_384)).max(32),
  }),
  instanceId: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,128}$/)
    .optional(),
  assignedAddress: z
    .string()
    .regex(/^[0-9a-fA-F:.]{2,64}$/)
    .optional(),
  assign: z.enum(['static', 'reservation']).optional(),
  vars: z.record(z.string(), z.unknown()).optional(),
  files: z.object({ disk: fileName, seed: fileName.optional(), definition: fileName }),
  exportedAt: z.string().max(64),
});

/**
 * What a bundle keeps of a VM's record, whichever provider exports it: its name, group, SSH settings
 * with the pinned host keys, and its seed identity and address. The provider adds the hardware.
 */
export function recordIdentity(
  vm: VmRecord,
): Pick<VmBundleDescription, 'name' | 'group' | 'ssh' | 'instanceId' | 'assignedAddress' | 'assign' | 'vars'> {
  return {
    name: vm.name,
    group: vm.group,
    ssh: {
      ...(vm.ssh.user !== undefined ? { user: vm.ssh.user } : {}),
      ...(vm.ssh.port !== undefined ? { port: vm.ssh.port } : {}),
      ...(vm.ssh.keyFile !== undefined ? { keyFile: vm.ssh.keyFile } : {}),
      hostKeys: vm.ssh.hostKeys,
    },
    ...(vm.instanceId ? { instanceId: vm.instanceId } : {}),
    ...(vm.assignedAddress ? { assignedAddress: vm.assignedAddress } : {}),
    ...(vm.assign ? { assign: vm.assign } : {}),
    ...(vm.vars ? { vars: vm.vars } : {}),
  };
}

/** A complete local bundle's description, checked; exit 2 (nothing changed) when it is not one. */
export async function readBundle(dir: string): Promise<{ dir: string; description: VmBundleDescription }> {
  const full = resolve(dir);
  const problem = await bundleProblem(full);
  let raw: unknown;
  if (!problem) {
    try {
      raw = JSON.parse(await readFile(pathInside(full, DESCRIPTION_FILE, 'bundle file'), 'utf8'));
    } catch (err) {
      return checkedBundle({
        dir: full,
        description: undefined,
        problem: `${DESCRIPTION_FILE} is not JSON: ${(err as Error).message}`,
      });
    }
  }
  return checkedBundle({ dir: full, description: raw, ...(problem ? { problem } : {}) });
}

/** A bundle as read (here or on a provider's host): complete, and its description valid, or exit 2. */
export function checkedBundle(read: { dir: string; description: unknown; problem?: string }): {
  dir: string;
  description: VmBundleDescription;
} {
  const full = read.dir;
  if (read.problem)
    throw new UsageError('BUNDLE_INVALID', `${full} is not a complete labctl export: ${read.problem}`, {
      hint: 'Export it again (labctl export NAME -o DIR); a re-run finishes an interrupted export.',
    });
  const raw = read.description;
  const parsed = DescriptionSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UsageError(
      'BUNDLE_INVALID',
      `${full}/${DESCRIPTION_FILE} at ${issue.path.join('.') || '(top)'}: ${issue.message}`,
    );
  }
  return { dir: full, description: parsed.data as VmBundleDescription };
}

export interface ExportFlowOptions extends Selection {
  lab: string;
  store: StateStore;
  provider: (vm: VmRecord) => Provider;
  dir: string;
  format: 'bundle' | 'ova';
  events?: EventSink;
  signal?: AbortSignal;
}

export type ExportResult =
  | { name: string; ok: true; facts: VmExportFacts }
  | { name: string; ok: false; error: VmFailure };

/** Exports the selected VMs one after another, holding the lab lock (nobody starts them meanwhile). */
export async function exportVms(
  options: ExportFlowOptions,
): Promise<{ lab: string; vms: ExportResult[]; interrupted: boolean }> {
  const events = options.events ?? silentSink;
  return options.store.withLock(options.lab, 'labctl export', async (session) => {
    const targets = selectVms(session.state, options, 'export');
    const running: string[] = [];
    const byProvider = new Map<Provider, VmRecord[]>();
    for (const vm of targets)
      byProvider.set(options.provider(vm), [...(byProvider.get(options.provider(vm)) ?? []), vm]);
    for (const [provider, vms] of byProvider) {
      if (!provider.exportVm)
        throw new UsageError('EXPORT_UNSUPPORTED', `the ${provider.name} provider cannot export VMs yet`, {
          hint: 'Export is built for libvirt.',
        });
      const live = new Map((await provider.list(session.state.lab)).map((vm) => [vm.name, vm.state]));
      for (const vm of vms) {
        const state = live.get(vm.name);
        if (state !== undefined && state !== 'stopped' && state !== 'created') running.push(`${vm.name} (${state})`);
      }
    }
    if (running.length > 0)
      throw new UsageError(
        'VM_RUNNING',
        `stop these VMs before exporting them (a copy of a running disk is not consistent): ${running.join(', ')}`,
        {
          hint: 'labctl stop NAME...',
        },
      );
    const results: ExportResult[] = [];
    for (const vm of targets) {
      if (options.signal?.aborted) break;
      const result = await options.provider(vm).exportVm!(vm, { dir: options.dir, format: options.format }, events);
      results.push(result);
    }
    return { lab: session.state.lab, vms: results, interrupted: options.signal?.aborted ?? false };
  });
}

/** Makes a bundle a VM of this lab (stopped), its record written with the bundle's pinned host keys. */
export async function importVm(options: {
  lab: string;
  store: StateStore;
  provider: Provider;
  dir: string;
  events?: EventSink;
}): Promise<VmRecord> {
  const bundle = options.provider.readBundle
    ? checkedBundle(await options.provider.readBundle(options.dir))
    : await readBundle(options.dir);
  const d = bundle.description;
  if (d.provider !== options.provider.name)
    throw new UsageError(
      'BUNDLE_PROVIDER',
      `${bundle.dir} was exported from ${d.provider}; this lab uses ${options.provider.name}`,
    );
  if (!options.provider.importVm)
    throw new UsageError('IMPORT_UNSUPPORTED', `the ${options.provider.name} provider cannot import VMs yet`);
  return options.store.withLock(options.lab, 'labctl import', async (session) => {
    const clash = session.state.vms.find((vm) => vm.name.toLowerCase() === d.name.toLowerCase());
    if (clash)
      throw new UsageError('VM_EXISTS', `the lab already has a VM named ${clash.name}`, {
        hint: `Destroy it first (labctl destroy ${clash.name}), or import into another lab (--lab-dir).`,
      });
    const result = await options.provider.importVm!(bundle, options.events ?? silentSink);
    if (!result.ok)
      throw new LabctlError(result.error.code, result.error.message, {
        ...(result.error.hint ? { hint: result.error.hint } : {}),
      });
    const record = session.upsertVm(result.facts);
    await session.save();
    return record;
  });
}
