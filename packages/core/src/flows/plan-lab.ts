import { homedir } from 'node:os';
import { UsageError } from '../errors.js';
import { checkCaseCollisions, checkName, quoteForMessage } from '../names.js';
import { DEFAULT_NAME_PATTERN, deterministicMac, LOCAL_MAC_PREFIX, planNames } from '../plan.js';
import type { Plan, VmOptions, VmPlan } from '../provider.js';
import {
  type GroupSpec,
  type LoadedLabFile,
  type MachineSettings,
  LIMITS,
  memoryProblem,
  parseSizeMiB,
  resolveLocalPath,
} from '../spec.js';

/**
 * Lab file + flags -> the plan: which VMs, with which names, MACs (under the provider's prefix) and settings. Flags win over the
 * group, the group over `defaults:`. Pure: nothing is contacted, so `--dry-run` shows exactly this.
 */
export interface CreateFlags {
  count?: number;
  group?: string;
  name?: string;
  golden?: string;
  clone?: 'linked' | 'full';
  cpus?: number;
  memory?: string;
  network?: string;
  provider?: string;
  uri?: string;
  concurrency?: number;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  firmware?: 'bios' | 'uefi';
  /** Allow --group to name a group that neither labctl.yaml nor the lab has yet. */
  newGroup?: boolean;
}

export const DEFAULT_GROUP = 'vm';
export const DEFAULT_CONCURRENCY = 4;
export const DEFAULT_MEMORY_MIB = 512;
export const DEFAULT_NETWORK = 'default';

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? `${homedir()}${path.slice(1)}` : path;
}

interface GroupTarget {
  group: string;
  count: number;
  spec: GroupSpec;
}

function targetGroups(lab: LoadedLabFile, flags: CreateFlags, knownGroups: readonly string[]): GroupTarget[] {
  const groups = lab.spec.groups ?? {};
  const names = Object.keys(groups);
  if (flags.group !== undefined) {
    checkName('group', flags.group, '--group');
    if (!groups[flags.group] && !knownGroups.includes(flags.group) && !flags.newGroup) {
      // A typo (--group wbe) must not silently start a new group of VMs.
      const known = [...new Set([...names, ...knownGroups])].sort();
      throw new UsageError('GROUP_UNKNOWN', `no group "${flags.group}" in labctl.yaml or in lab "${lab.lab}"`, {
        hint: `${known.length ? `Known groups: ${known.join(', ')}. ` : ''}To start a new group, add --new-group (or define it under groups: in labctl.yaml).`,
        details: { known },
      });
    }
    const spec = groups[flags.group] ?? {};
    const count = flags.count ?? spec.count;
    if (count === undefined) {
      throw new UsageError('COUNT_REQUIRED', `how many VMs in group ${flags.group}?`, {
        hint: `Pass --count N, or set groups.${flags.group}.count in labctl.yaml.`,
      });
    }
    return [{ group: flags.group, count, spec }];
  }
  if (names.length === 0) return [{ group: DEFAULT_GROUP, count: flags.count ?? 1, spec: {} }];
  if (flags.count !== undefined) {
    if (names.length > 1) {
      throw new UsageError('GROUP_REQUIRED', `--count needs --group: labctl.yaml has the groups ${names.join(', ')}`, {
        hint: `e.g. labctl create --group ${names[0]} --count ${flags.count}`,
      });
    }
    return [{ group: names[0]!, count: flags.count, spec: groups[names[0]!]! }];
  }
  return names.map((group) => ({ group, count: groups[group]!.count ?? 1, spec: groups[group]! }));
}

export interface PlannedLab {
  plan: Plan;
  uri: string | undefined;
}

export interface PlanOptions {
  /** The provider when neither the flags nor the lab file name one (the CLI's registry knows it). */
  defaultProvider?: string;
  /**
   * The MAC prefix of a provider (its definition's `macPrefix`), so Hyper-V VMs get 00:15:5D MACs
   * and libvirt ones 52:54:00. Without one: a locally administered prefix no vendor owns.
   */
  macPrefix?: (provider: string) => string | undefined;
  /** Groups the lab already has (from its state): --group may name them without --new-group. */
  knownGroups?: readonly string[];
}

export function planLab(lab: LoadedLabFile, flags: CreateFlags, options: PlanOptions = {}): PlannedLab {
  const spec = lab.spec;
  const provider = flags.provider ?? spec.provider ?? options.defaultProvider;
  if (!provider) {
    throw new UsageError('PROVIDER_REQUIRED', 'no provider: set provider: in labctl.yaml or pass --provider');
  }
  const macPrefix = options.macPrefix?.(provider) ?? LOCAL_MAC_PREFIX;
  const uri = flags.uri ?? spec.uri;
  const fromFile = (value: string | undefined) =>
    value === undefined ? undefined : lab.resolvePath(expandHome(value));
  const fromFlag = (value: string | undefined) =>
    value === undefined ? undefined : resolveLocalPath(expandHome(value), process.cwd());
  let memoryFlag: number | undefined;
  if (flags.memory !== undefined) {
    memoryFlag = parseSizeMiB(flags.memory);
    if (memoryFlag === undefined)
      throw new UsageError('MEMORY_INVALID', `--memory ${quoteForMessage(flags.memory)} is not a size`, {
        hint: 'Use MiB (512) or 512M, 2G.',
      });
    const problem = memoryProblem(memoryFlag);
    if (problem)
      throw new UsageError('MEMORY_INVALID', `--memory ${flags.memory}: ${problem}`, {
        hint: `Use a whole number of MiB from ${LIMITS.memoryMinMiB} to ${LIMITS.memoryMaxMiB}.`,
      });
  }
  checkLimit('--count', flags.count, 0, LIMITS.count);
  checkLimit('--cpus', flags.cpus, 1, LIMITS.cpus);
  checkLimit('--concurrency', flags.concurrency, 1, LIMITS.concurrency);
  const vms: VmPlan[] = [];
  const seen = new Map<string, string>();
  for (const target of targetGroups(lab, flags, options.knownGroups ?? [])) {
    const settings: MachineSettings = {
      ...spec.defaults,
      ...target.spec,
      ssh: { ...spec.defaults?.ssh, ...target.spec.ssh },
    };
    const golden = fromFlag(flags.golden) ?? fromFile(settings.golden);
    if (!golden) {
      throw new UsageError('GOLDEN_REQUIRED', `no golden image for group ${target.group}`, {
        hint: 'Pass --golden PATH (a .vhd, .vhdx, .qcow2 or raw disk), or set defaults.golden in labctl.yaml.',
      });
    }
    const pattern = flags.name ?? target.spec.name ?? DEFAULT_NAME_PATTERN;
    for (const name of planNames(pattern, target.group, target.count)) {
      checkName('vm', name, `group ${target.group}: name pattern ${JSON.stringify(pattern)}`);
      const other = seen.get(name);
      if (other !== undefined) {
        throw new UsageError('NAME_CLASH', `groups ${other} and ${target.group} would both make a VM named ${name}`, {
          hint: 'Give one of them another name pattern (name: in labctl.yaml).',
        });
      }
      seen.set(name, target.group);
      const kernel = fromFlag(flags.kernel) ?? fromFile(settings.kernel);
      const initrd = fromFlag(flags.initrd) ?? fromFile(settings.initrd);
      const cmdline = flags.cmdline ?? settings.cmdline;
      const keyFile = fromFile(settings.ssh?.keyFile);
      vms.push({
        name,
        group: target.group,
        host: uri ?? 'local',
        mac: deterministicMac(lab.lab, name, macPrefix),
        cpus: flags.cpus ?? settings.cpus ?? 1,
        memoryMiB: memoryFlag ?? settings.memory ?? DEFAULT_MEMORY_MIB,
        golden,
        clone: flags.clone ?? settings.clone ?? 'linked',
        network: flags.network ?? settings.network ?? settings.switch ?? DEFAULT_NETWORK,
        options: providerOptions({
          firmware: flags.firmware ?? settings.firmware,
          generation: settings.generation,
          secureBoot: settings.secureBoot,
          vlan: settings.vlan,
          kernel,
          initrd,
          cmdline,
        }),
        ssh: { user: settings.ssh?.user ?? 'root', port: settings.ssh?.port ?? 22, ...(keyFile ? { keyFile } : {}) },
        ...(target.spec.vars ? { vars: target.spec.vars } : {}),
      });
    }
  }
  checkCaseCollisions('group', new Set(vms.map((vm) => vm.group)), 'the plan');
  checkCaseCollisions(
    'vm',
    vms.map((vm) => vm.name),
    'the plan',
  );
  return {
    plan: { lab: lab.lab, provider, vms, concurrency: flags.concurrency ?? spec.concurrency ?? DEFAULT_CONCURRENCY },
    uri,
  };
}

/** A whole number within [min, max], refused with the limit named (exit 2). */
export function checkLimit(flag: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(
      'NUMBER_OUT_OF_RANGE',
      `${flag} ${value} is out of range: a whole number from ${min} to ${max}`,
      {
        hint: `labctl refuses ${flag} above ${max}; no lab it can make is bigger.`,
      },
    );
  }
}

/** The provider-specific settings that were given (the provider types, checks and defaults them). */
function providerOptions(options: Record<string, string | number | undefined>): VmOptions {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}
