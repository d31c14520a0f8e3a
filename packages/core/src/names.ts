import { isAbsolute, relative, resolve } from 'node:path';
import { z } from 'zod';
import { UsageError } from './errors.js';

/**
 * One rule per kind of name, checked wherever a name enters labctl: flags, the lab file, the state
 * file, the environment. Names become file names (disks, console logs, emitted scripts), domain and
 * VM names, inventory hosts and groups, and words in PowerShell input, so the rule is the
 * intersection of what all of those take: no path separators, no leading "-" (read as an option by
 * virsh, ssh, qemu-img), no control characters or escape sequences (they would rewrite the user's
 * terminal), no trailing "." (NTFS drops it, so `web.` and `web` would be one file on Hyper-V).
 */
export type NameKind = 'lab' | 'group' | 'vm' | 'host' | 'snapshot';

interface NameRule {
  pattern: RegExp;
  max: number;
  says: string;
}

const WINDOWS_DEVICE = /^(?:con|prn|aux|nul|com[0-9]|lpt[0-9])(?:\..*)?$/i;
const WORD = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?$/;

const RULES: Record<NameKind, NameRule> = {
  lab: {
    pattern: WORD,
    max: 64,
    says: 'letters, digits, "_", "-" and ".", starting with a letter or digit, not ending with "."',
  },
  group: {
    pattern: WORD,
    max: 64,
    says: 'letters, digits, "_", "-" and ".", starting with a letter or digit, not ending with "."',
  },
  // Hyper-V takes 100 characters; a host name label 63, and VM names are the guests' host names.
  vm: {
    pattern: WORD,
    max: 63,
    says: 'letters, digits, "_", "-" and ".", starting with a letter or digit, not ending with "."',
  },
  // Names of hosts in `hosts:` (and on the command line): DNS-like, so they are also safe file words.
  host: {
    pattern: /^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/,
    max: 253,
    says: 'DNS labels of letters, digits, "_" and "-" (at most 63 each) joined by "."',
  },
  snapshot: {
    pattern: WORD,
    max: 64,
    says: 'letters, digits, "_", "-" and ".", starting with a letter or digit, not ending with "."',
  },
};

/** Why `value` is not a valid name of this kind, or undefined when it is. */
export function nameProblem(kind: NameKind, value: string): string | undefined {
  const rule = RULES[kind];
  if (value.length === 0) return `a ${kind} name cannot be empty`;
  if (value.length > rule.max)
    return `${kind} names have at most ${rule.max} characters (this one has ${value.length})`;
  if (!rule.pattern.test(value)) return `${kind} names take ${rule.says}`;
  // Windows opens a device, not a file, for these names with any extension (CON.vhdx is the console).
  if (WINDOWS_DEVICE.test(value))
    return `${JSON.stringify(value)} is a Windows device name (CON, PRN, AUX, NUL, COM1-9, LPT1-9), which cannot name a file`;
  return undefined;
}

/** `value` as a terminal-safe quoted word for messages: control characters and escapes are shown, not sent. */
export function quoteForMessage(value: string, max = 80): string {
  const shown = value.length > max ? `${value.slice(0, max)}...` : value;
  return JSON.stringify(shown).replace(
    /[\u007f-\u009f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Refuse (exit 2, before anything changes) a name that breaks its kind's rule. */
export function checkName(kind: NameKind, value: string, where: string): string {
  const problem = nameProblem(kind, value);
  if (problem) {
    throw new UsageError(
      'NAME_INVALID',
      `${where}: ${quoteForMessage(value)} is not a valid ${kind} name: ${problem}`,
      {
        hint: `Use a name such as web-01: ${RULES[kind].says}.`,
        details: { kind, where },
      },
    );
  }
  return value;
}

/**
 * Hyper-V and NTFS compare names without case: `Web-01` and `web-01` are one VM and one disk there.
 * Refuse two names of the lab that differ only in case.
 */
export function checkCaseCollisions(kind: NameKind, names: Iterable<string>, where: string): void {
  const seen = new Map<string, string>();
  for (const name of names) {
    const key = name.toLowerCase();
    const other = seen.get(key);
    if (other === name) {
      throw new UsageError('NAME_DUPLICATE', `${where}: ${kind} name ${quoteForMessage(name)} appears twice`, {
        hint: `Each ${kind} needs its own name.`,
      });
    }
    if (other !== undefined) {
      throw new UsageError(
        'NAME_CASE_CLASH',
        `${where}: ${kind} names ${quoteForMessage(other)} and ${quoteForMessage(name)} differ only in case`,
        {
          hint: 'Hyper-V and Windows file systems treat them as one name; rename one of them.',
        },
      );
    }
    seen.set(key, name);
  }
}

/**
 * `child` resolved against `dir`, refused unless it stays inside `dir` (no "..", no absolute escape).
 * Every path labctl derives from a name goes through this before it is used.
 */
export function pathInside(dir: string, child: string, what = 'path'): string {
  const base = resolve(dir);
  const full = resolve(base, child);
  const rel = relative(base, full);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    throw new UsageError('PATH_OUTSIDE', `${what} ${quoteForMessage(full)} would be outside ${quoteForMessage(base)}`, {
      hint: 'Names must not contain path separators or "..".',
    });
  }
  return full;
}

/** True when `path` is `dir` itself or lies inside it (both resolved, no symlinks followed). */
export function isInside(dir: string, path: string): boolean {
  const rel = relative(resolve(dir), resolve(path));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** A zod string that must be a valid name of its kind; the issue says which rule it broke. */
export function nameSchema(kind: NameKind) {
  return z.string().superRefine((value, ctx) => {
    const problem = nameProblem(kind, value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}

/**
 * A jump host list as `ssh -J` takes it: `[user@]host[:port]`, comma-separated, hops in order.
 * Nothing else: the value reaches ssh command lines, ssh_config and Ansible's ssh args, so no
 * spaces, quotes, `-` at the start or `%` tokens.
 */
export const PROXY_JUMP =
  /^(?:(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}@)?(?:[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?)(?:,(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}@)?(?:[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?){0,7}$/;
