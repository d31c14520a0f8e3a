import { rankAddresses } from '@labctl/core/address';
import { UsageError } from '@labctl/core/errors';
import type { LabSpec } from '@labctl/core/spec';
import type { LabState, VarValue, VmRecord } from '@labctl/core/state';

/**
 * The inventory labctl means, independent of the format: groups with hosts, children and vars,
 * hosts with their vars, and the known_hosts lines that pin each host's SSH key. Every emitter
 * (INI, YAML, JSON, `--list`) writes this one model, so they cannot disagree.
 */
export type Vars = Record<string, VarValue>;

export interface InventoryGroup {
  name: string;
  hosts: string[];
  children: string[];
  vars: Vars;
}

export interface InventoryHost {
  name: string;
  group: string;
  vars: Vars;
  /** Jump hosts (`ssh -J` syntax) from the lab file's ssh.proxyJump; also in the host's ssh args. */
  proxyJump?: string;
}

export interface Inventory {
  lab: string;
  /** `labctl_<lab>`: parent of every group labctl writes, holder of every host. */
  rootGroup: string;
  /** Root group first, then the others in a stable order. */
  groups: InventoryGroup[];
  hosts: InventoryHost[];
  /** known_hosts lines ("NAME type base64", NAME being the VM's HostKeyAlias), empty when no host has a recorded key. */
  knownHosts: string[];
}

export interface SkippedVm {
  name: string;
  reason: string;
}

export interface BuildResult {
  inventory: Inventory;
  warnings: string[];
  skipped: SkippedVm[];
}

export interface BuildOptions {
  /** Absolute path the known_hosts file will have; `ansible_ssh_common_args` points at it. */
  knownHostsFile: string;
  /** Resolve a path from the lab file (key files) against the lab file's directory. */
  resolvePath?: (value: string) => string;
}

/** What Ansible accepts as a group name: `^[\d\W]|[^\w]` are invalid (C.INVALID_VARIABLE_NAMES). */
const INVALID_GROUP_CHARS = /^[\p{Nd}]|[^\p{L}\p{N}_]/gu;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Host names labctl writes: nothing that an inventory would read as a range, a port, a comment or quoting. */
const HOST_NAME = /^[\p{L}\p{N}_][\p{L}\p{N}_.-]*$/u;
const HOST_KEY_LINE = /^(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+={0,2}(\s.*)?$/;
/** Holds the lab's stopped VMs, outside their own groups: `ansible web -m ping` does not wait on them. */
export const STOPPED_GROUP = 'labctl_stopped';
const RESERVED_GROUPS = new Set(['all', 'ungrouped', STOPPED_GROUP]);
const GONE_STATES = new Set(['missing', 'destroying', 'planned']);
/** Recorded as not running: no SSH to wait for. `labctl start` (or a create) moves them back. */
const STOPPED_STATES = new Set(['stopped', 'paused-critical']);

/** The name Ansible would use with TRANSFORM_INVALID_GROUP_CHARS=always (`web-1` -> `web_1`). */
export function safeGroupName(name: string): string {
  return name.replace(INVALID_GROUP_CHARS, '_');
}

export function isValidVarName(name: string): boolean {
  return VAR_NAME.test(name);
}

export function rootGroupName(lab: string): string {
  return `labctl_${safeGroupName(lab)}`;
}

/** The pinned-key options for ssh, as one string that Ansible splits with shlex. */
export function sshCommonArgs(knownHostsFile: string): string {
  if (/["\n]/.test(knownHostsFile)) {
    throw new UsageError(
      'INVENTORY_BAD_PATH',
      `cannot point ssh at ${JSON.stringify(knownHostsFile)}: the path contains a double quote or newline`,
      {
        hint: 'Write the inventory to a directory whose path has no " or newline.',
      },
    );
  }
  // ssh reads UserKnownHostsFile as a whitespace-separated list and expands %-tokens: quote and escape.
  const sshValue = /\s/.test(knownHostsFile)
    ? `"${knownHostsFile.replaceAll('%', '%%')}"`
    : knownHostsFile.replaceAll('%', '%%');
  const option = `UserKnownHostsFile=${sshValue}`;
  const word = /^[A-Za-z0-9_./:@%+,=-]+$/.test(option) ? option : `'${option.replaceAll("'", `'"'"'`)}'`;
  return `-o ${word} -o StrictHostKeyChecking=yes`;
}

/**
 * The user's own `ansible_ssh_common_args` (a ProxyJump, a ControlPath...) followed by labctl's
 * pinning: added to, never replaced. ssh takes the first value of an option, so what the user
 * wrote wins where both set one.
 */
export function withPinning(userArgs: string, knownHostsFile: string): string {
  const ours = sshCommonArgs(knownHostsFile);
  const theirs = userArgs.trim();
  return theirs === '' || theirs.includes(ours) ? theirs || ours : `${theirs} ${ours}`;
}

function checkVars(vars: Vars | undefined, where: string, warnings: string[]): Vars {
  const result: Vars = {};
  for (const [key, value] of Object.entries(vars ?? {})) {
    if (!isValidVarName(key)) {
      warnings.push(
        `${where}: variable "${key}" left out: Ansible variable names are letters, digits and "_", not starting with a digit`,
      );
      continue;
    }
    result[key] = value;
  }
  return result;
}

interface GroupDraft {
  name: string;
  hosts: string[];
  children: Set<string>;
  vars: Vars;
}

/**
 * Build the inventory from the lab's state and lab file. Pure: nothing is read or written; problems
 * that do not stop the inventory (a VM without an address, a renamed group) come back as warnings.
 */
export function buildInventory(state: LabState, spec: LabSpec, options: BuildOptions): BuildResult {
  const warnings: string[] = [];
  const skipped: SkippedVm[] = [];
  const rootGroup = rootGroupName(state.lab);
  const resolvePath = options.resolvePath ?? ((value: string) => value);
  const groups = new Map<string, GroupDraft>();
  const renamed = new Map<string, string>();

  const groupName = (raw: string, where: string): string => {
    const safe = safeGroupName(raw);
    if (RESERVED_GROUPS.has(safe) || safe === rootGroup) {
      throw new UsageError(
        'INVENTORY_RESERVED_GROUP',
        `${where}: group name "${raw}" is reserved (${[...RESERVED_GROUPS, rootGroup].join(', ')})`,
        {
          hint: 'Rename the group in labctl.yaml.',
        },
      );
    }
    if (safe !== raw && !renamed.has(raw)) {
      renamed.set(raw, safe);
      warnings.push(`group "${raw}" is not a valid Ansible group name; written as "${safe}"`);
    }
    return safe;
  };
  const group = (name: string): GroupDraft => {
    let draft = groups.get(name);
    if (!draft) {
      draft = { name, hosts: [], children: new Set(), vars: {} };
      groups.set(name, draft);
    }
    return draft;
  };

  const root = group(rootGroup);
  root.vars = { ...checkVars(spec.inventory?.vars, 'labctl.yaml inventory.vars', warnings) };

  const hosts: InventoryHost[] = [];
  const knownHosts: string[] = [];
  const collator = new Intl.Collator('en', { numeric: true });
  const sorted = [...state.vms].sort((a, b) => collator.compare(a.group, b.group) || collator.compare(a.name, b.name));
  for (const vm of sorted) {
    // An address given before boot (static, reservation) is known before discovery confirms it.
    const ranked = rankAddresses([...vm.addresses, ...(vm.assignedAddress ? [vm.assignedAddress] : [])]);
    const reason = unusableReason(vm, ranked);
    if (reason) {
      skipped.push({ name: vm.name, reason });
      warnings.push(`VM ${vm.name} left out: ${reason}`);
      continue;
    }
    const address = ranked[0] as string;
    const groupSpec = spec.groups?.[vm.group];
    const ssh = { ...spec.defaults?.ssh, ...groupSpec?.ssh };
    const port = vm.ssh.port ?? ssh.port;
    const user = vm.ssh.user ?? ssh.user;
    const keyFile = vm.ssh.keyFile ?? (ssh.keyFile ? resolvePath(ssh.keyFile) : undefined);
    const proxyJump = vm.ssh.proxyJump ?? ssh.proxyJump;
    const vars: Vars = { ansible_host: address };
    if (port !== undefined) vars.ansible_port = port;
    if (user !== undefined) vars.ansible_user = user;
    if (keyFile !== undefined) vars.ansible_ssh_private_key_file = keyFile;
    vars.labctl_state = vm.state;
    Object.assign(vars, checkVars(vm.vars, `VM ${vm.name}`, warnings));
    if (typeof vars.ansible_ssh_common_args === 'string')
      vars.ansible_ssh_common_args = withPinning(vars.ansible_ssh_common_args, options.knownHostsFile);

    const name = groupName(vm.group, `VM ${vm.name}`);
    const stopped = STOPPED_STATES.has(vm.state);
    group(stopped ? STOPPED_GROUP : name).hosts.push(vm.name);
    hosts.push({ name: vm.name, group: stopped ? STOPPED_GROUP : name, vars, ...(proxyJump ? { proxyJump } : {}) });

    // Keys are pinned under the VM's name (ssh's HostKeyAlias), not its address: an address another
    // VM had before never looks like a changed key, and a key that changed is refused wherever the
    // VM's own vars point Ansible. Names are [A-Za-z0-9_.-] (HOST_NAME): no known_hosts pattern syntax.
    // The jump host comes after any ProxyJump of the user's own ssh args (ssh takes the first).
    vars.ansible_ssh_extra_args = `-o HostKeyAlias=${vm.name}${proxyJump ? ` -o ProxyJump=${proxyJump}` : ''}`;
    const keys = vm.ssh.hostKeys.filter((line) => {
      const ok = HOST_KEY_LINE.test(line.trim());
      if (!ok)
        warnings.push(
          `VM ${vm.name}: recorded host key "${line.slice(0, 40)}" is not an OpenSSH public key line; left out of known_hosts`,
        );
      return ok;
    });
    if (keys.length === 0) {
      warnings.push(
        `VM ${vm.name} has no recorded SSH host key: Ansible will refuse to connect (strict host-key checking). Run labctl ip --wait to record it.`,
      );
    }
    for (const key of keys) {
      const [type, blob] = key.trim().split(/\s+/);
      knownHosts.push(`${vm.name} ${type} ${blob}`);
    }
  }

  // Group vars and children: the VM group's section, then inventory.groups (which wins on a clash).
  const groupSources: Array<[string, { vars?: Vars; children?: string[] } | undefined, string]> = [
    ...Object.entries(spec.groups ?? {}).map(
      ([name, g]) => [name, g, `labctl.yaml groups.${name}`] as [string, typeof g, string],
    ),
    ...Object.entries(spec.inventory?.groups ?? {}).map(
      ([name, g]) => [name, g, `labctl.yaml inventory.groups.${name}`] as [string, typeof g, string],
    ),
  ];
  for (const [raw, source, where] of groupSources) {
    const draft = group(groupName(raw, where));
    Object.assign(draft.vars, checkVars(source?.vars, where, warnings));
    // A group's ssh args replace the lab's in Ansible: they carry the pinning too.
    if (typeof draft.vars.ansible_ssh_common_args === 'string')
      draft.vars.ansible_ssh_common_args = withPinning(draft.vars.ansible_ssh_common_args, options.knownHostsFile);
    for (const child of source?.children ?? []) {
      const childName = groupName(child, `${where}.children`);
      if (childName === draft.name)
        throw new UsageError('INVENTORY_GROUP_CYCLE', `${where}: group "${raw}" lists itself as a child`);
      group(childName);
      draft.children.add(childName);
    }
  }
  checkCycles(groups);

  root.vars.labctl_lab = state.lab;
  const userArgs = root.vars.ansible_ssh_common_args;
  root.vars.ansible_ssh_common_args =
    typeof userArgs === 'string'
      ? withPinning(userArgs, options.knownHostsFile)
      : sshCommonArgs(options.knownHostsFile);
  const others = [...groups.values()].filter((g) => g !== root).sort((a, b) => a.name.localeCompare(b.name));
  for (const other of others) root.children.add(other.name);

  return {
    inventory: {
      lab: state.lab,
      rootGroup,
      groups: [root, ...others].map((g) => ({ name: g.name, hosts: g.hosts, children: [...g.children], vars: g.vars })),
      hosts,
      knownHosts,
    },
    warnings,
    skipped,
  };
}

function unusableReason(vm: VmRecord, ranked: string[]): string | undefined {
  if (GONE_STATES.has(vm.state)) return `its state is "${vm.state}"`;
  if (!HOST_NAME.test(vm.name))
    return `its name "${vm.name}" cannot be an inventory host name (letters, digits, "_", "-", "." only)`;
  if (ranked.length === 0) {
    const seen = vm.addresses.length ? ` (seen: ${vm.addresses.join(', ')})` : '';
    return `no usable address${seen}; run labctl ip --wait`;
  }
  return undefined;
}

function checkCycles(groups: Map<string, GroupDraft>): void {
  const visiting = new Set<string>();
  const done = new Set<string>();
  const visit = (name: string, path: string[]): void => {
    if (done.has(name)) return;
    if (visiting.has(name)) {
      throw new UsageError('INVENTORY_GROUP_CYCLE', `groups form a cycle: ${[...path, name].join(' -> ')}`, {
        hint: 'Ansible refuses a group that is its own ancestor; fix children: in labctl.yaml.',
      });
    }
    visiting.add(name);
    for (const child of groups.get(name)?.children ?? []) visit(child, [...path, name]);
    visiting.delete(name);
    done.add(name);
  };
  for (const name of groups.keys()) visit(name, []);
}
