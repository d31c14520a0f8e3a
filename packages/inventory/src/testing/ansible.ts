import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { VarValue } from '@labctl/core/state';
import type { Inventory, Vars } from '../model.js';
import type { ParsedInventory } from '../parse.js';

/**
 * Test helpers around the real `ansible-inventory`: run it, and reduce its `--list --export` JSON,
 * labctl's model and the parser's result to one comparable shape (groups by name with sorted hosts
 * and children and their vars; host vars by host). Empty groups and the implicit members of "all"
 * are left out on every side, and so are hosts without vars in `hostvars`: Ansible lists them inconsistently.
 */
export interface Canonical {
  groups: Record<string, { hosts: string[]; children: string[]; vars: Vars }>;
  hostvars: Record<string, Vars>;
}

export const ansibleEnv = (dir: string): NodeJS.ProcessEnv => ({
  ...process.env,
  ANSIBLE_LOCAL_TEMP: dir,
  ANSIBLE_NOCOLOR: '1',
  ANSIBLE_FORCE_COLOR: '0',
  // An inventory Ansible cannot read must fail the run, not become a warning and an empty inventory.
  ANSIBLE_INVENTORY_UNPARSED_FAILED: 'true',
  ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED: 'true',
  ANSIBLE_PYTHON_INTERPRETER: 'auto_silent',
});

export async function ansibleInventoryList(
  source: string,
  tmpDir: string,
  args: string[] = ['--export'],
  env: NodeJS.ProcessEnv = {},
): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)('ansible-inventory', ['-i', source, '--list', ...args], {
    env: { ...ansibleEnv(tmpDir), ...env },
    maxBuffer: 512 * 1024 * 1024,
  });
  return JSON.parse(stdout) as Record<string, unknown>;
}

/** `{"__ansible_unsafe": "x"}` (how ansible-inventory prints an unsafe string) back to "x"; counts them. */
export function unwrapUnsafe(value: unknown, found: { count: number } = { count: 0 }): VarValue {
  if (Array.isArray(value)) return value.map((item) => unwrapUnsafe(item, found));
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 1 && entries[0]?.[0] === '__ansible_unsafe') {
      found.count++;
      return entries[0][1] as string;
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, unwrapUnsafe(v, found)]));
  }
  return value as VarValue;
}

function finish(groups: Canonical['groups'], hostvars: Record<string, Vars>): Canonical {
  const kept: Canonical['groups'] = {};
  for (const [name, group] of Object.entries(groups).sort(([a], [b]) => a.localeCompare(b))) {
    const g =
      name === 'all'
        ? { hosts: [], children: [], vars: group.vars }
        : { hosts: [...group.hosts].sort(), children: [...group.children].sort(), vars: group.vars };
    if (g.hosts.length || g.children.length || Object.keys(g.vars).length) kept[name] = g;
  }
  // ansible-inventory lists only hosts that have vars; membership is in the groups.
  return {
    groups: kept,
    hostvars: Object.fromEntries(Object.entries(hostvars).filter(([, vars]) => Object.keys(vars).length > 0)),
  };
}

export function canonicalFromAnsible(
  list: Record<string, unknown>,
  found: { count: number } = { count: 0 },
): Canonical {
  const groups: Canonical['groups'] = {};
  for (const [name, raw] of Object.entries(list)) {
    if (name === '_meta') continue;
    const group = raw as { hosts?: string[]; children?: string[]; vars?: Record<string, unknown> };
    groups[name] = {
      hosts: group.hosts ?? [],
      children: group.children ?? [],
      vars: (unwrapUnsafe(group.vars ?? {}, found) as Vars) ?? {},
    };
  }
  const meta = (list._meta as { hostvars?: Record<string, unknown> } | undefined)?.hostvars ?? {};
  const hostvars = Object.fromEntries(
    Object.entries(meta).map(([host, vars]) => [host, unwrapUnsafe(vars, found) as Vars]),
  );
  return finish(groups, hostvars);
}

export function canonicalFromModel(inventory: Inventory): Canonical {
  const groups: Canonical['groups'] = {};
  for (const group of inventory.groups)
    groups[group.name] = { hosts: group.hosts, children: group.children, vars: group.vars };
  groups.all = { hosts: [], children: [inventory.rootGroup], vars: {} };
  return finish(groups, Object.fromEntries(inventory.hosts.map((host) => [host.name, host.vars])));
}

export function canonicalFromParsed(parsed: ParsedInventory): Canonical {
  return finish(structuredClone(parsed.groups), parsed.hostvars);
}
