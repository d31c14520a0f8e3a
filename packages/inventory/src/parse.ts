import { UsageError } from '@labctl/core/errors';
import type { VarValue } from '@labctl/core/state';
import { isMap, LineCounter, parseDocument, type ScalarTag } from 'yaml';
import type { Vars } from './model.js';
import { iniValue, shlexSplit } from './python-literal.js';

/**
 * A reader for existing Ansible inventories (INI and YAML/JSON), with Ansible's semantics: sections
 * `[g]`, `[g:vars]`, `[g:children]` (declared in any order), host ranges `web[01:10]` and
 * `db-[a:c]`, `host:port`, inline host vars read as Python literals, later definitions winning.
 * The result has the shape of `ansible-inventory --list --export`, reduced to what can be compared.
 */
export interface ParsedGroup {
  hosts: string[];
  children: string[];
  vars: Vars;
}

export interface ParsedInventory {
  format: 'ini' | 'yaml';
  groups: Record<string, ParsedGroup>;
  hostvars: Record<string, Vars>;
}

class InventoryBuilder {
  readonly groups = new Map<string, { hosts: Set<string>; children: Set<string>; vars: Vars }>();
  readonly hostvars = new Map<string, Vars>();

  group(name: string) {
    let group = this.groups.get(name);
    if (!group) {
      group = { hosts: new Set(), children: new Set(), vars: {} };
      this.groups.set(name, group);
    }
    return group;
  }

  host(name: string, group: string, vars: Vars, port: number | undefined): void {
    const hostVars = this.hostvars.get(name) ?? {};
    this.hostvars.set(name, hostVars);
    if (group !== 'all') this.group(group).hosts.add(name);
    else this.group('all');
    if (port !== undefined) hostVars.ansible_port = port;
    Object.assign(hostVars, vars);
  }

  result(format: 'ini' | 'yaml'): ParsedInventory {
    // Ansible's reconcile step: hosts in no group but "all" are "ungrouped".
    const grouped = new Set<string>();
    for (const [name, group] of this.groups)
      if (name !== 'all' && name !== 'ungrouped') for (const host of group.hosts) grouped.add(host);
    for (const host of this.hostvars.keys()) if (!grouped.has(host)) this.group('ungrouped').hosts.add(host);
    const groups: Record<string, ParsedGroup> = {};
    for (const [name, group] of this.groups) {
      groups[name] = {
        hosts: name === 'all' ? [] : [...group.hosts].sort(),
        children: name === 'all' ? [] : [...group.children].sort(),
        vars: group.vars,
      };
    }
    return { format, groups, hostvars: Object.fromEntries(this.hostvars) };
  }
}

/** Ansible's `expand_hostname_range`: `db[01:10:3]-x[a:c]` (zero padding kept, letters, steps). */
export function expandHostRange(pattern: string): string[] {
  const open = pattern.indexOf('[');
  if (open < 0) return [pattern];
  const close = pattern.indexOf(']', open);
  if (close < 0) throw new Error(`host range "${pattern}" has no closing ]`);
  const head = pattern.slice(0, open);
  const tail = pattern.slice(close + 1);
  const bounds = pattern.slice(open + 1, close).split(':');
  if (bounds.length !== 2 && bounds.length !== 3) throw new Error('host range must be begin:end or begin:end:step');
  const beg = bounds[0] || '0';
  const end = bounds[1] as string;
  const step = Number.parseInt(bounds[2] ?? '1', 10);
  if (!end) throw new Error('host range must specify end value');
  if (!(step > 0)) throw new Error('host range step must be a positive number');
  const width = beg.length > 1 && beg.startsWith('0') ? beg.length : 0;
  if (width && width !== end.length) throw new Error('host range must specify equal-length begin and end formats');
  const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const values: string[] = [];
  if (/^[A-Za-z]$/.test(beg) && /^[A-Za-z]$/.test(end)) {
    const from = letters.indexOf(beg);
    const to = letters.indexOf(end);
    if (from > to) throw new Error('host range must have begin <= end');
    for (let i = from; i <= to; i += step) values.push(letters[i] as string);
  } else {
    if (!/^-?\d+$/.test(beg) || !/^-?\d+$/.test(end))
      throw new Error(`host range [${bounds.join(':')}] is not numeric or a letter range`);
    for (let i = Number(beg); i <= Number(end); i += step)
      values.push(width ? String(i).padStart(width, '0') : String(i));
  }
  return values.flatMap((value) => expandHostRange(`${head}${value}${tail}`));
}

/** A host pattern with an optional `:port` (not for bare IPv6 addresses), expanded. */
export function parseHostPattern(pattern: string): { hosts: string[]; port: number | undefined } {
  let host = pattern;
  let port: number | undefined;
  const bracketedV6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(pattern);
  if (bracketedV6?.[1]?.includes(':') && !/^\d*:\d+(:\d+)?$/.test(bracketedV6[1])) {
    return { hosts: [bracketedV6[1]], port: bracketedV6[2] === undefined ? undefined : Number(bracketedV6[2]) };
  }
  const withPort = /^(.+):(\d+)$/.exec(pattern);
  if (withPort && !(withPort[1] as string).replace(/\[[^\]]*\]/g, '').includes(':')) {
    host = withPort[1] as string;
    port = Number(withPort[2]);
  }
  return { hosts: expandHostRange(host), port };
}

const SECTION = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$/;
const GROUP_LINE = /^([^:\]\s]+)\s*(?:#.*)?$/;

/**
 * `definedElsewhere`: groups another part of the same file defines (labctl's block, when `--merge`
 * reads the hand-written part alone): a `[web:vars]` for them is as valid as Ansible finds it in
 * the whole file.
 */
export function parseIniInventory(
  text: string,
  source = 'inventory',
  definedElsewhere: readonly string[] = [],
): ParsedInventory {
  const builder = new InventoryBuilder();
  builder.group('all');
  builder.group('ungrouped');
  for (const name of definedElsewhere) builder.group(name);
  const pending = new Map<string, { line: number; state: string; parents: string[] }>();
  let group = 'ungrouped';
  let state = 'hosts';
  const lines = text.split(/\r\n|\r|\n|\v|\f|\x1c|\x1d|\x1e|\x85|\u2028|\u2029/);
  function fail(lineno: number, message: string): never {
    throw new UsageError('INVENTORY_PARSE', `${source}:${lineno}: ${message}`, {
      hint: 'Fix the inventory; `ansible-inventory -i FILE --list` shows the same problem.',
    });
  }
  for (const [index, raw] of lines.entries()) {
    const lineno = index + 1;
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const section = SECTION.exec(line);
    if (section) {
      group = section[1] as string;
      state = section[2] ?? 'hosts';
      if (!['hosts', 'children', 'vars'].includes(state))
        fail(lineno, `Section [${group}:${state}] has unknown type: ${state}`);
      if (!builder.groups.has(group) && state === 'vars' && !pending.has(group))
        pending.set(group, { line: lineno, state, parents: [] });
      builder.group(group);
      const waiting = pending.get(group);
      if (waiting && state !== 'vars') {
        if (waiting.state === 'children') resolvePending(group);
        else pending.delete(group);
      }
      continue;
    }
    if (line.startsWith('[') && line.endsWith(']')) fail(lineno, `Invalid section entry: '${line}'`);
    if (state === 'hosts') {
      let tokens: string[];
      try {
        tokens = shlexSplit(line);
      } catch (err) {
        fail(lineno, `Error parsing host definition '${line}': ${(err as Error).message}`);
      }
      if (tokens.length === 0) continue;
      let expanded: { hosts: string[]; port: number | undefined };
      try {
        expanded = parseHostPattern(tokens[0] as string);
      } catch (err) {
        fail(lineno, (err as Error).message);
      }
      const vars: Vars = {};
      for (const token of tokens.slice(1)) {
        const eq = token.indexOf('=');
        if (eq < 0) fail(lineno, `Expected key=value host variable assignment, got: ${token}`);
        vars[token.slice(0, eq)] = iniValue(token.slice(eq + 1));
      }
      for (const host of expanded.hosts) builder.host(host, group, { ...vars }, expanded.port);
    } else if (state === 'vars') {
      const eq = line.indexOf('=');
      if (eq < 0) fail(lineno, `Expected key=value, got: ${line}`);
      builder.group(group).vars[line.slice(0, eq).trim()] = iniValue(line.slice(eq + 1).trim());
    } else {
      const child = GROUP_LINE.exec(line)?.[1];
      if (child === undefined) fail(lineno, `Expected group name, got: ${line}`);
      if (builder.groups.has(child)) builder.group(group).children.add(child);
      else {
        const waiting = pending.get(child);
        if (waiting) waiting.parents.push(group);
        else pending.set(child, { line: lineno, state: 'children', parents: [group] });
      }
    }
  }
  function resolvePending(name: string): void {
    const waiting = pending.get(name);
    if (!waiting) return;
    for (const parent of waiting.parents) {
      builder.group(parent).children.add(name);
      if (pending.get(parent)?.state === 'children') resolvePending(parent);
    }
    pending.delete(name);
  }
  for (const [name, waiting] of pending) {
    if (waiting.state === 'vars') fail(waiting.line, `Section [${name}:vars] not valid for undefined group: ${name}`);
    fail(waiting.line, `Section [${waiting.parents.at(-1)}:children] includes undefined group: ${name}`);
  }
  return builder.result('ini');
}

/** `!unsafe` marks a string Ansible must not template; its value is the string itself. */
const unsafeTag: ScalarTag = { tag: '!unsafe', resolve: (value: string) => value };
const vaultTag: ScalarTag = { tag: '!vault', resolve: (value: string) => value };
/** PyYAML's YAML 1.1 float needs a dot and a signed exponent: `1.5e3` and `1e3` stay strings. */
const PYYAML_EXP_FLOAT = /^[-+]?(?:[0-9][0-9_]*)\.[0-9_]*[eE][-+][0-9]+$/;
function ansibleTags(tags: Array<ScalarTag | unknown>): Array<ScalarTag | unknown> {
  const adjusted = tags.map((tag) => {
    const scalar = tag as ScalarTag;
    return scalar.tag === 'tag:yaml.org,2002:float' && scalar.format === 'EXP'
      ? { ...scalar, test: PYYAML_EXP_FLOAT }
      : tag;
  });
  return [...adjusted, unsafeTag, vaultTag];
}

/** Ansible reads a file as JSON first (its decoder turns `{"__ansible_unsafe": s}` into s), then as YAML. */
function fromAnsibleJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromAnsibleJson);
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value);
  if (entries.length === 1 && entries[0]?.[0] === '__ansible_unsafe') return entries[0][1];
  return Object.fromEntries(entries.map(([k, v]) => [k, fromAnsibleJson(v)]));
}

function readJson(text: string): Record<string, unknown> | undefined {
  try {
    const data = JSON.parse(text) as unknown;
    return data !== null && typeof data === 'object' && !Array.isArray(data)
      ? (fromAnsibleJson(data) as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export function parseYamlInventory(text: string, source = 'inventory'): ParsedInventory {
  const data = readJson(text) ?? readYaml(text, source);
  if ('plugin' in data)
    throw new UsageError(
      'INVENTORY_PARSE',
      `${source}: this is an inventory plugin configuration, not a YAML inventory`,
    );
  return inventoryFromTree(data, source);
}

function readYaml(text: string, source: string): Record<string, unknown> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    version: '1.1',
    customTags: ansibleTags as never,
    lineCounter,
    uniqueKeys: true,
    prettyErrors: false,
  });
  if (doc.errors.length) {
    const error = doc.errors[0];
    const pos = error ? lineCounter.linePos(error.pos[0]) : undefined;
    throw new UsageError('INVENTORY_PARSE', `${source}${pos ? `:${pos.line}` : ''}: ${error?.message.split('\n')[0]}`);
  }
  if (!isMap(doc.contents))
    throw new UsageError('INVENTORY_PARSE', `${source}: a YAML inventory is a mapping of groups`);
  return doc.toJS({ maxAliasCount: 1000 }) as Record<string, unknown>;
}

function inventoryFromTree(data: Record<string, unknown>, source: string): ParsedInventory {
  const builder = new InventoryBuilder();
  builder.group('all');
  builder.group('ungrouped');
  const isMapping = (value: unknown): value is Record<string, unknown> =>
    value !== null && typeof value === 'object' && !Array.isArray(value);
  const parseGroup = (name: string, body: unknown): void => {
    if (body !== null && !isMapping(body)) return; // Ansible skips it with a warning.
    const group = builder.group(name);
    if (body === null) return;
    for (const section of ['vars', 'children', 'hosts']) {
      const value = body[section];
      if (typeof value === 'string') body[section] = { [value]: null };
      else if (value !== undefined && value !== null && !isMapping(value)) {
        throw new UsageError(
          'INVENTORY_PARSE',
          `${source}: Invalid "${section}" entry for "${name}" group, requires a dictionary`,
        );
      }
    }
    for (const [key, value] of Object.entries(body)) {
      if (!isMapping(value)) continue;
      if (key === 'vars') Object.assign(group.vars, value as Vars);
      else if (key === 'children') {
        for (const [child, childBody] of Object.entries(value)) {
          parseGroup(child, childBody ?? null);
          group.children.add(child);
        }
      } else if (key === 'hosts') {
        for (const [pattern, vars] of Object.entries(value)) {
          let expanded: { hosts: string[]; port: number | undefined };
          try {
            expanded = parseHostPattern(pattern);
          } catch (err) {
            throw new UsageError('INVENTORY_PARSE', `${source}: host "${pattern}": ${(err as Error).message}`);
          }
          const hostVars = isMapping(vars) ? (vars as Record<string, VarValue>) : {};
          for (const host of expanded.hosts) builder.host(host, name, { ...hostVars }, expanded.port);
        }
      }
    }
  };
  for (const [name, body] of Object.entries(data)) parseGroup(name, body ?? null);
  return builder.result('yaml');
}

/** Which reader Ansible would use for a file: YAML for .yml/.yaml/.json (and extension-less YAML mappings), INI otherwise. */
export function detectInventoryFormat(path: string, text: string): 'ini' | 'yaml' {
  if (/\.(ya?ml|json)$/i.test(path)) return 'yaml';
  if (/\.[^/.]+$/.test(path)) return 'ini';
  try {
    const parsed = parseYamlInventory(text, path);
    return Object.keys(parsed.groups).length > 2 || Object.keys(parsed.hostvars).length > 0 ? 'yaml' : 'ini';
  } catch {
    return 'ini';
  }
}

export function parseInventory(
  text: string,
  format: 'ini' | 'yaml',
  source?: string,
  definedElsewhere: readonly string[] = [],
): ParsedInventory {
  return format === 'ini' ? parseIniInventory(text, source, definedElsewhere) : parseYamlInventory(text, source);
}
