import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { homedir } from 'node:os';
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { UsageError } from './errors.js';
import { readRegularFile } from './files.js';
import { checkCaseCollisions, nameSchema, PROXY_JUMP } from './names.js';
import { jsonDepthExceeds, VarValueSchema } from './state.js';

/**
 * The lab file, `labctl.yaml`. Everything a flag can say can also be said here; flags win.
 * Unknown keys are errors (a typo such as `memroy:` must not be silently ignored), and every
 * error names the file, the line and the key path.
 */
export const LAB_FILE = 'labctl.yaml';

/**
 * Limits of every number a lab file or flag can carry, named in the refusal. They are the largest
 * values a real lab can use (Hyper-V: 12 TiB and 240 vCPUs per VM; libvirt's own limits are higher
 * but no lab machine has more), so anything past them is a typo or an attack, refused with exit 2.
 */
export const LIMITS = {
  count: 10_000,
  cpus: 1024,
  memoryMinMiB: 32,
  memoryMaxMiB: 12 * 1024 * 1024,
  concurrency: 256,
  timeoutMinSeconds: 1,
  timeoutMaxSeconds: 7 * 24 * 3600,
} as const;

/** Why a memory size in MiB cannot work, or undefined. */
export function memoryProblem(mib: number): string | undefined {
  if (!Number.isFinite(mib) || !Number.isInteger(mib)) return `${mib} MiB is not a whole number of MiB`;
  if (mib < LIMITS.memoryMinMiB) return `${mib} MiB is below the minimum of ${LIMITS.memoryMinMiB} MiB`;
  if (mib > LIMITS.memoryMaxMiB) return `${mib} MiB is above the maximum of ${LIMITS.memoryMaxMiB} MiB (12 TiB)`;
  return undefined;
}

/** Sizes: a number of MiB, or "512M", "2G", "1GiB"; a whole number of MiB within LIMITS. */
export const SizeMiB = z.union([z.number(), z.string().max(32)]).transform((value, ctx) => {
  const parsed = typeof value === 'number' ? value : parseSizeMiB(value);
  if (parsed === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a size (use MiB as a number, or 512M, 2G, 1GiB)` });
    return z.NEVER;
  }
  const problem = memoryProblem(parsed);
  if (problem) {
    ctx.addIssue({ code: 'custom', message: problem });
    return z.NEVER;
  }
  return parsed;
});

/** A size in MiB, exactly (not rounded): "1.5K" is 0.00146 MiB and is refused by the limits, not made 0. */
export function parseSizeMiB(value: string): number | undefined {
  const match = /^\s*(\d{1,15}(?:\.\d{1,9})?)\s*([KMGT]?)(i?B)?\s*$/i.exec(value);
  if (!match) return undefined;
  const amount = Number(match[1]);
  const unit = (match[2] ?? '').toUpperCase();
  const factor = { '': 1, K: 1 / 1024, M: 1, G: 1024, T: 1024 * 1024 }[unit];
  if (factor === undefined) return undefined;
  const mib = amount * factor;
  // 1.5G is 1536 MiB exactly; keep float noise from turning it into a fraction.
  return Math.abs(mib - Math.round(mib)) < 1e-9 ? Math.round(mib) : mib;
}

/** Jump hosts as `ssh -J` takes them (a VM's ssh settings, a host's entry). */
const proxyJumpSchema = z
  .string()
  .regex(PROXY_JUMP, 'is not a jump host list: [user@]host[:port], comma-separated (as ssh -J takes it)');

export const SshSettingsSchema = z.strictObject({
  user: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  keyFile: z.string().min(1).optional(),
  /** Reach the VMs through these jump hosts (`ssh -J`): `admin@bastion`, `a@j1,b@j2:2222`. */
  proxyJump: proxyJumpSchema.optional(),
});

/**
 * `network:` as an object: the libvirt network / Hyper-V switch (`name`) and, for addresses known
 * before boot, `addresses` (list or ranges, handed out in order), `prefix`, `gateway`, `dns`, and
 * `assign`: `static` (written into the VM's seed) or `reservation` (a DHCP reservation on a libvirt
 * network; the guest keeps using DHCP).
 */
export const NetworkSettingsSchema = z.strictObject({
  name: z.string().min(1).optional(),
  addresses: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  prefix: z.number().int().min(8).max(30).optional(),
  gateway: z.string().min(1).optional(),
  dns: z.array(z.string().min(1)).max(3).optional(),
  assign: z.enum(['static', 'reservation']).optional(),
});
export type NetworkSettings = z.infer<typeof NetworkSettingsSchema>;

/**
 * `seed:` the VM's cloud-init NoCloud seed (identity before first boot): on by default; `enabled:
 * false` for images that read none (the host key is then learned at first contact). `hostKeyTypes`
 * (ed25519, rsa), `disableRoot`, and `userData`: the lab's own cloud-config, merged in.
 */
export const SeedSettingsSchema = z.strictObject({
  enabled: z.boolean().optional(),
  hostKeyTypes: z
    .array(z.enum(['ed25519', 'rsa']))
    .min(1)
    .optional(),
  disableRoot: z.boolean().optional(),
  userData: z.record(z.string(), z.unknown()).optional(),
});
export type SeedSettings = z.infer<typeof SeedSettingsSchema>;

/** Settings of one kind of VM; `defaults:` and each group carry them, the group wins. */
export const MachineSettingsSchema = z.strictObject({
  golden: z.string().min(1).optional(),
  clone: z.enum(['linked', 'full']).optional(),
  cpus: z.number().int().min(1).max(LIMITS.cpus).optional(),
  memory: SizeMiB.optional(),
  network: z.union([z.string().min(1), NetworkSettingsSchema]).optional(),
  seed: SeedSettingsSchema.optional(),
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
  count: z.number().int().min(0).max(LIMITS.count).optional(),
  /** Name pattern: {group}, {n}, {nn}, {nnn}. Default "{group}-{nn}". */
  name: z.string().min(1).optional(),
  vars: z.record(z.string(), VarValueSchema).optional(),
  children: z.array(z.string().min(1)).optional(),
});
export type GroupSpec = z.infer<typeof GroupSchema>;

export const HostSchema = z.strictObject({
  name: nameSchema('host'),
  /** How to reach it: user@host[:port] over SSH, or "local". */
  address: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  /** libvirt connection URI for this host (qemu+ssh://...). */
  uri: z.string().min(1).optional(),
  /** Where VM disks go on this host. */
  path: z.string().min(1).optional(),
  /** libvirt: the storage pool for VM disks on this host (a remote URI's default: `default`). */
  pool: z
    .string()
    .regex(/^[A-Za-z0-9_.+-]{1,64}$/, 'a storage pool name')
    .optional(),
  concurrency: z.number().int().min(1).max(64).optional(),
  /** SSH to this host through jump hosts (`ssh -J` syntax; Hyper-V hosts reached over SSH). */
  proxyJump: proxyJumpSchema.optional(),
  /** MiB: the lab never places VMs with more memory than this on the host. */
  memoryLimit: z
    .number()
    .int()
    .min(64)
    .max(64 * 1024 * 1024)
    .optional(),
});
export type HostSpec = z.infer<typeof HostSchema>;

export const LabSpecSchema = z.strictObject({
  lab: nameSchema('lab').optional(),
  /** A provider of the CLI's registry (libvirt, hyperv); an unknown one is refused where it is used. */
  provider: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,31}$/, 'a provider name such as libvirt or hyperv')
    .optional(),
  uri: z.string().min(1).optional(),
  concurrency: z.number().int().min(1).max(LIMITS.concurrency).optional(),
  /** Seconds. */
  timeout: z.number().min(LIMITS.timeoutMinSeconds).max(LIMITS.timeoutMaxSeconds).optional(),
  defaults: MachineSettingsSchema.optional(),
  groups: z.record(nameSchema('group'), GroupSchema).optional(),
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
  const name = basename(resolve(dir))
    .replace(/[^A-Za-z0-9_.-]/g, '_')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 64)
    .replace(/\.+$/, '');
  return name || 'lab';
}

/** Parse lab-file text; errors name file:line and the key path. */
export function parseLabFile(text: string, file: string): LabSpec {
  const lineCounter = new LineCounter();
  // Duplicate keys are found below in linear time; yaml's own uniqueKeys check is quadratic in the
  // number of keys of a map (40,000 keys took 33 s).
  let doc: ReturnType<typeof parseDocument>;
  let data: unknown;
  try {
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
    if (doc.errors.length > 0) {
      const error = doc.errors[0]!;
      const pos = lineCounter.linePos(error.pos[0]);
      throw new UsageError(
        'LABFILE_SYNTAX',
        `${file}${pos ? `:${pos.line}:${pos.col}` : ''}: ${error.message.split('\n')[0]}`,
        {
          hint: 'Fix the YAML syntax; indentation uses spaces, not tabs.',
        },
      );
    }
    checkDuplicateKeys(doc.contents, file, lineCounter);
    // Aliases expand on conversion: a "billion laughs" file is refused, not expanded.
    data = doc.toJS({ maxAliasCount: 50 }) ?? {};
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // The yaml library's own limits (alias count) and a stack overflow on absurd nesting.
    throw new UsageError(
      'LABFILE_INVALID',
      `${file}: not a lab file labctl can read: ${(err as Error).message.split('\n')[0]}`,
      {
        hint: 'Lab files are small YAML maps; aliases may be used 50 times at most and nesting 32 levels deep.',
      },
    );
  }
  if (jsonDepthExceeds(data, MAX_DEPTH)) {
    throw new UsageError('LABFILE_INVALID', `${file}: nested more than ${MAX_DEPTH} levels deep`, {
      hint: 'Lab files are small YAML maps; flatten the values.',
    });
  }
  const result = LabSpecSchema.safeParse(data);
  if (result.success) {
    const hosts = result.data.hosts ?? [];
    checkCaseCollisions(
      'host',
      hosts.map((host) => host.name),
      `${file}: hosts`,
    );
    checkCaseCollisions('group', Object.keys(result.data.groups ?? {}), `${file}: groups`);
    return result.data;
  }
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
  // Never blocks on a FIFO or reads a device: anything but a regular file is refused (exit 2).
  const text = await readRegularFile(path, 'lab file', {
    maxBytes: LAB_FILE_MAX_BYTES,
    missingOk: !explicit,
    code: 'LABFILE_UNREADABLE',
    hint: explicit ? 'Check the --file path.' : undefined,
  });
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
 * Every path of a lab file goes through here (one rule for keyFile, golden images, seeds...).
 */
export function resolveLocalPath(value: string, base: string, home: string = homedir()): string {
  // `~` and `~/...` are the user's home, as the shell and OpenSSH read them (`~user` is left alone).
  if (value === '~' || value.startsWith('~/')) return resolve(home, value.slice(2));
  if (isAbsolute(value) || /^[A-Za-z]:[\\/]|^\\\\/.test(value)) return value;
  return resolve(base, value);
}

/** Lab files are written by hand: a megabyte is far more than any lab needs. */
export const LAB_FILE_MAX_BYTES = 1024 * 1024;
/** Nesting of lab files and state: 32 levels hold every real value (vars included). */
export const MAX_DEPTH = 32;

/** The first key that appears twice in one map, with its line (what yaml's uniqueKeys says, in linear time). */
function checkDuplicateKeys(root: unknown, file: string, lineCounter: LineCounter): void {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        if (seen.has(key)) {
          const range = isScalar(pair.key) ? pair.key.range : undefined;
          const line = range ? lineCounter.linePos(range[0]).line : undefined;
          throw new UsageError(
            'LABFILE_SYNTAX',
            `${file}${line ? `:${line}` : ''}: map keys must be unique (${JSON.stringify(String(key)).slice(0, 80)} appears twice)`,
            {
              hint: 'Remove or merge the repeated key.',
            },
          );
        }
        seen.add(key);
        stack.push(pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(item);
    }
  }
}
