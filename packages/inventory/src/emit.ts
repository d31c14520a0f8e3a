import type { VarValue } from '@labctl/core/state';
import type { Inventory, InventoryGroup, Vars } from './model.js';
import { isBareIniString, pythonLiteral, quoteString, shlexQuote } from './python-literal.js';

/**
 * The emitters. All three formats (and the dynamic-inventory answers) write the same model, and every
 * value is written so that `ansible-inventory --list` gives back exactly that value: INI through
 * Python literals, YAML as double-quoted scalars, JSON as JSON. Strings that Jinja would template
 * (`{{`, `{%`, `{#`) are marked unsafe where the format can say so (`!unsafe` in YAML,
 * `__ansible_unsafe` in JSON), so a play sees them literally too.
 */
export type InventoryFormat = 'ini' | 'yaml' | 'json';
export const INVENTORY_FORMATS: readonly InventoryFormat[] = ['ini', 'yaml', 'json'];

/** Text on the first line of every file labctl writes; its presence means labctl may overwrite the file. */
export const OWNER_MARK = 'written by labctl inventory';

/**
 * A value inside a comment line: lab names are validated where they enter, but a comment must end
 * where labctl ends it whatever the value (a newline would start an inventory line of its own).
 */
export function commentText(value: string): string {
  return value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?');
}

export function beginMarker(lab: string): string {
  return `# BEGIN labctl managed block (lab ${commentText(lab)}) - labctl inventory --merge replaces it; edit outside it`;
}
export function endMarker(lab: string): string {
  return `# END labctl managed block (lab ${commentText(lab)})`;
}

export function header(inventory: Inventory): string {
  return `# Ansible inventory ${OWNER_MARK} for lab "${commentText(inventory.lab)}". Regenerate it instead of editing it.\n`;
}

const JINJA = /\{\{|\{%|\{#/;

export function needsUnsafe(value: string): boolean {
  return JINJA.test(value);
}

/** True when some string in the inventory would be templated by Ansible in INI (which cannot mark it unsafe). */
export function hasTemplatedValues(inventory: Inventory): boolean {
  const check = (value: VarValue): boolean =>
    typeof value === 'string'
      ? needsUnsafe(value)
      : Array.isArray(value)
        ? value.some(check)
        : value !== null && typeof value === 'object'
          ? Object.values(value).some(check)
          : false;
  return [...inventory.hosts.map((h) => h.vars), ...inventory.groups.map((g) => g.vars)].some((vars) =>
    Object.values(vars).some(check),
  );
}

// ---------- INI ----------

function iniValueText(value: VarValue): string {
  return typeof value === 'string' && isBareIniString(value) ? value : pythonLiteral(value);
}

/** The managed block alone, markers included; --merge puts exactly this into a hand-written file. */
export function emitIniBlock(inventory: Inventory): string {
  const lines: string[] = [beginMarker(inventory.lab)];
  const hostsByName = new Map(inventory.hosts.map((host) => [host.name, host]));
  const root = inventory.groups[0] as InventoryGroup;
  for (const group of inventory.groups.slice(1)) {
    lines.push(`[${group.name}]`);
    for (const name of group.hosts) {
      const vars = hostsByName.get(name)?.vars ?? {};
      // Host lines are split like a shell would (shlex), then each value is a Python literal.
      const words = Object.entries(vars).map(([key, value]) => `${key}=${shlexQuote(iniValueText(value))}`);
      lines.push([name, ...words].join(' '));
    }
    if (group.children.length) lines.push(`[${group.name}:children]`, ...group.children);
    if (Object.keys(group.vars).length) lines.push(`[${group.name}:vars]`, ...iniVarLines(group.vars));
    lines.push('');
  }
  lines.push(`[${root.name}:children]`, ...root.children);
  // The root's vars come last, always: hand-written lines after the block keep meaning what they meant.
  lines.push(`[${root.name}:vars]`, ...iniVarLines(root.vars), endMarker(inventory.lab));
  return `${lines.join('\n')}\n`;
}

function iniVarLines(vars: Vars): string[] {
  // [group:vars] lines are split at the first "=" and stripped, no shell-like splitting.
  return Object.entries(vars).map(([key, value]) => `${key}=${iniValueText(value)}`);
}

export function emitIni(inventory: Inventory): string {
  return `${header(inventory)}${emitIniBlock(inventory)}`;
}

// ---------- YAML ----------

const YAML_PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const YAML11_SPECIAL = /^(?:y|yes|n|no|true|false|on|off|null)$/i;

function yamlKey(key: string): string {
  return YAML_PLAIN_KEY.test(key) && !YAML11_SPECIAL.test(key) ? key : quoteString(key);
}

function yamlValue(value: VarValue): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean' || typeof value === 'number') return String(value);
  if (typeof value === 'string') return needsUnsafe(value) ? `!unsafe ${quoteString(value)}` : quoteString(value);
  if (Array.isArray(value)) return `[${value.map(yamlValue).join(', ')}]`;
  return `{${Object.entries(value)
    .map(([k, v]) => `${quoteString(k)}: ${yamlValue(v)}`)
    .join(', ')}}`;
}

function yamlVars(vars: Vars, indent: string, out: string[]): void {
  for (const [key, value] of Object.entries(vars)) out.push(`${indent}${yamlKey(key)}: ${yamlValue(value)}`);
}

export function emitYamlBlock(inventory: Inventory): string {
  const out: string[] = [beginMarker(inventory.lab)];
  const hostsByName = new Map(inventory.hosts.map((host) => [host.name, host]));
  const root = inventory.groups[0] as InventoryGroup;
  out.push(`${yamlKey(root.name)}:`, '  vars:');
  yamlVars(root.vars, '    ', out);
  out.push('  children:');
  for (const group of inventory.groups.slice(1)) {
    out.push(`    ${yamlKey(group.name)}:`);
    if (group.hosts.length) {
      out.push('      hosts:');
      for (const name of group.hosts) {
        out.push(`        ${yamlKey(name)}:`);
        yamlVars(hostsByName.get(name)?.vars ?? {}, '          ', out);
      }
    }
    if (Object.keys(group.vars).length) {
      out.push('      vars:');
      yamlVars(group.vars, '        ', out);
    }
    if (group.children.length) {
      out.push('      children:');
      for (const child of group.children) out.push(`        ${yamlKey(child)}: {}`);
    }
    if (!group.hosts.length && !group.children.length && !Object.keys(group.vars).length) out[out.length - 1] += ' {}';
  }
  out.push(endMarker(inventory.lab));
  return `${out.join('\n')}\n`;
}

export function emitYaml(inventory: Inventory): string {
  return `${header(inventory)}${emitYamlBlock(inventory)}`;
}

// ---------- JSON ----------

/** Values for JSON that Ansible reads with its own decoder: `{"__ansible_unsafe": "..."}` marks a string unsafe. */
export function jsonSafeValue(value: VarValue): unknown {
  if (typeof value === 'string') return needsUnsafe(value) ? { __ansible_unsafe: value } : value;
  if (Array.isArray(value)) return value.map(jsonSafeValue);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafeValue(v)]));
  return value;
}

function jsonVars(vars: Vars): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(vars)) out[key] = jsonSafeValue(value);
  return out;
}

/** The YAML inventory tree as JSON (Ansible's yaml plugin reads .json files). The root group's `labctl_lab` var marks the file as labctl's. */
export function emitJson(inventory: Inventory): string {
  const hostsByName = new Map(inventory.hosts.map((host) => [host.name, host]));
  const root = inventory.groups[0] as InventoryGroup;
  const children: Record<string, unknown> = {};
  for (const group of inventory.groups.slice(1)) {
    const entry: Record<string, unknown> = {};
    if (group.hosts.length)
      entry.hosts = Object.fromEntries(group.hosts.map((name) => [name, jsonVars(hostsByName.get(name)?.vars ?? {})]));
    if (Object.keys(group.vars).length) entry.vars = jsonVars(group.vars);
    if (group.children.length) entry.children = Object.fromEntries(group.children.map((child) => [child, {}]));
    children[group.name] = entry;
  }
  return `${JSON.stringify({ [root.name]: { vars: jsonVars(root.vars), children } }, null, 1)}\n`;
}

export function emitInventory(inventory: Inventory, format: InventoryFormat): string {
  if (format === 'ini') return emitIni(inventory);
  if (format === 'yaml') return emitYaml(inventory);
  return emitJson(inventory);
}

// ---------- dynamic inventory (script protocol) ----------

/** The `--list` answer: every group flat, with `_meta.hostvars` so Ansible never calls `--host`. */
export function dynamicList(inventory: Inventory): Record<string, unknown> {
  const answer: Record<string, unknown> = {
    _meta: { hostvars: Object.fromEntries(inventory.hosts.map((host) => [host.name, jsonVars(host.vars)])) },
    all: { children: [inventory.rootGroup] },
  };
  for (const group of inventory.groups) {
    const entry: Record<string, unknown> = {};
    if (group.hosts.length) entry.hosts = group.hosts;
    if (group.children.length) entry.children = group.children;
    if (Object.keys(group.vars).length) entry.vars = jsonVars(group.vars);
    answer[group.name] = entry;
  }
  return answer;
}

/** The `--host NAME` answer: the host's vars, `{}` for a host labctl does not know (as the protocol asks). */
export function dynamicHost(inventory: Inventory, name: string): Record<string, unknown> {
  const host = inventory.hosts.find((h) => h.name === name);
  return host ? jsonVars(host.vars) : {};
}
