import { readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { UsageError } from './errors.js';
import { VarValueSchema } from './state.js';

/**
 * The lab file, `labctl.yaml`. Everything a flag can say can also be said here; flags win.
 * Unknown keys are errors (a typo such as `memroy:` must not be silently ignored), and every
 * error names the file, the line and the key path.
 */
export const LAB_FILE = 'labctl.yaml';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Sizes: a number of MiB, or "512M", "2G", "1GiB". */
export const SizeMiB = z.union([z.number().positive(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return Math.round(value);
  const parsed = parseSizeMiB(value);
  if (parsed === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a size (use MiB as a number, or 512M, 2G, 1GiB)` });
    return z.NEVER;
  }
  return parsed;
});

export function parseSizeMiB(value: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*$/i.exec(value);
  if (!match) return undefined;
  const amount = Number(match[1]);
  const unit = (match[2] ?? '').toUpperCase();
  const factor = { '': 1, K: 1 / 1024, M: 1, G: 1024, T: 1024 * 1024 }[unit];
  return factor === undefined ? undefined : Math.round(amount * factor);
}

export const SshSettingsSchema = z.strictObject({
  user: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  keyFile: z.string().min(1).optional(),
});

/** Settings of one kind of VM; `defaults:` and each group carry them, the group wins. */
export const MachineSettingsSchema = z.strictObject({
  golden: z.string().min(1).optional(),
  clone: z.enum(['linked', 'full']).optional(),
  cpus: z.number().int().min(1).max(1024).optional(),
  memory: SizeMiB.optional(),
  network: z.string().min(1).optional(),
  firmware: z.enum(['bios', 'uefi']).optional(),
  generation: z.union([z.literal(1), z.literal(2)]).optional(),
  secureBoot: z.enum(['off', 'linux', 'windows']).optional(),
  switch: z.string().min(1).optional(),
  vlan: z.number().int().min(1).max(4094).optional(),
  kernel: z.string().min(1).optional(),
  initrd: z.string().min(1).optional(),
  cmdline: z.string().optional(),
  ssh: SshSettingsSchema.optional(),
});
export type MachineSettings = z.infer<typeof MachineSettingsSchema>;

export const GroupSchema = MachineSettingsSchema.extend({
  count: z.number().int().min(0).max(10_000).optional(),
  /** Name pattern: {group}, {n}, {nn}, {nnn}. Default "{group}-{nn}". */
  name: z.string().min(1).optional(),
  vars: z.record(z.string(), VarValueSchema).optional(),
  children: z.array(z.string().min(1)).optional(),
});
export type GroupSpec = z.infer<typeof GroupSchema>;

export const HostSchema = z.strictObject({
  name: z.string().min(1),
  /** How to reach it: user@host[:port] over SSH, or "local". */
  address: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  /** libvirt connection URI for this host (qemu+ssh://...). */
  uri: z.string().min(1).optional(),
  /** Where VM disks go on this host. */
  path: z.string().min(1).optional(),
  concurrency: z.number().int().min(1).max(64).optional(),
});
export type HostSpec = z.infer<typeof HostSchema>;

export const LabSpecSchema = z.strictObject({
  lab: z.string().regex(NAME_RE, 'letters, digits, "_", "-" and "." only, starting with a letter or digit').optional(),
  provider: z.enum(['libvirt', 'hyperv']).optional(),
  uri: z.string().min(1).optional(),
  concurrency: z.number().int().min(1).max(256).optional(),
  timeout: z.number().positive().optional(),
  defaults: MachineSettingsSchema.optional(),
  groups: z.record(z.string().regex(NAME_RE, 'group names: letters, digits, "_", "-", "."'), GroupSchema).optional(),
  hosts: z.array(HostSchema).optional(),
  inventory: z
    .strictObject({
      vars: z.record(z.string(), VarValueSchema).optional(),
      groups: z
        .record(
          z.string(),
          z.strictObject({
            vars: z.record(z.string(), VarValueSchema).optional(),
            children: z.array(z.string()).optional(),
          }),
        )
        .optional(),
    })
    .optional(),
  /** Provider-specific sections; each provider validates its own. */
  libvirt: z.record(z.string(), z.unknown()).optional(),
  hyperv: z.record(z.string(), z.unknown()).optional(),
  delegation: z.record(z.string(), z.unknown()).optional(),
  template: z.record(z.string(), z.unknown()).optional(),
});
export type LabSpec = z.infer<typeof LabSpecSchema>;

export interface LoadedLabFile {
  /** Absolute path, or undefined when there is no lab file. */
  path: string | undefined;
  spec: LabSpec;
  /** Lab name: the file's `lab:`, else the lab directory's name. */
  lab: string;
  /** Resolve a path written in the lab file relative to the file's directory. */
  resolvePath(value: string): string;
}

/** A lab name from a directory name, made valid. */
export function labNameFromDir(dir: string): string {
  const name = basename(resolve(dir)).replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^[^A-Za-z0-9]+/, '');
  return name || 'lab';
}

/** Parse lab-file text; errors name file:line and the key path. */
export function parseLabFile(text: string, file: string): LabSpec {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const error = doc.errors[0]!;
    const pos = lineCounter.linePos(error.pos[0]);
    throw new UsageError('LABFILE_SYNTAX', `${file}${pos ? `:${pos.line}:${pos.col}` : ''}: ${error.message.split('\n')[0]}`, {
      hint: 'Fix the YAML syntax; indentation uses spaces, not tabs.',
    });
  }
  const data = doc.toJS() ?? {};
  const result = LabSpecSchema.safeParse(data);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = issue.path.map(String);
  // Point at the deepest node that exists in the document (an unknown key points at itself).
  const keys = issue.code === 'unrecognized_keys' ? [...path, String(issue.keys[0])] : path;
  let line: number | undefined;
  for (let depth = keys.length; depth >= 0 && line === undefined; depth--) {
    const parentPath = keys.slice(0, depth);
    const node = depth === 0 ? doc.contents : doc.getIn(parentPath, true);
    // For an unknown key, the key's own position is the helpful one.
    if (depth === keys.length && issue.code === 'unrecognized_keys') {
      const parent = doc.getIn(keys.slice(0, -1), true) ?? (keys.length === 1 ? doc.contents : undefined);
      if (isMap(parent)) {
        const pair = parent.items.find((item) => isScalar(item.key) && String(item.key.value) === keys.at(-1));
        const range = isScalar(pair?.key) ? pair.key.range : undefined;
        if (range) line = lineCounter.linePos(range[0]).line;
      }
      continue;
    }
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    if (range) line = lineCounter.linePos(range[0]).line;
  }
  const keyPath = keys.join('.') || '(top level)';
  const message = issue.code === 'unrecognized_keys' ? `unknown key "${keys.at(-1)}"` : issue.message;
  throw new UsageError('LABFILE_INVALID', `${file}${line ? `:${line}` : ''}: ${keyPath}: ${message}`, {
    hint: 'See `labctl create --help` and docs/lab-file.md for the keys a lab file takes.',
    details: { file, line, keyPath },
  });
}

/**
 * Load the lab file: `explicit` when given (must exist), else `labctl.yaml` in the lab directory
 * (optional). No file means an empty spec: flags and built-in defaults do the rest.
 */
export async function loadLabFile(labDir: string, explicit?: string): Promise<LoadedLabFile> {
  const path = explicit ? resolve(explicit) : join(labDir, LAB_FILE);
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || explicit) {
      throw new UsageError('LABFILE_UNREADABLE', `cannot read lab file ${path}: ${(err as Error).message}`, {
        hint: explicit ? 'Check the --file path.' : undefined,
      });
    }
  }
  const spec = text === undefined ? {} : parseLabFile(text, path);
  const base = text === undefined ? labDir : dirname(path);
  return {
    path: text === undefined ? undefined : path,
    spec,
    lab: spec.lab ?? labNameFromDir(labDir),
    resolvePath: (value: string) => resolveLocalPath(value, base),
  };
}

/**
 * Relative paths in the lab file and flags are relative to where they were written; a Windows
 * absolute path (`D:\Golden\c7.vhdx`, `\\server\share\...`) names a file on a Hyper-V host and stays as is.
 */
export function resolveLocalPath(value: string, base: string): string {
  if (isAbsolute(value) || /^[A-Za-z]:[\\/]|^\\\\/.test(value)) return value;
  return resolve(base, value);
}
