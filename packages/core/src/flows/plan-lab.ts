import { isIPv4 } from 'node:net';
import { homedir } from 'node:os';
import { UsageError } from '../errors.js';
import { checkCaseCollisions, checkName, quoteForMessage } from '../names.js';
import { DEFAULT_NAME_PATTERN, deterministicMac, LOCAL_MAC_PREFIX, planNames } from '../plan.js';
import { poolAddresses, subnetProblem } from '../address-pool.js';
import type { CloudInitPlan, PlannedAddress, Plan, VmOptions, VmPlan } from '../provider.js';
import {
  type GroupSpec,
  type LoadedLabFile,
  type MachineSettings,
  type NetworkSettings,
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
  /** Several hosts: place failed or half-made VMs again instead of on the host the state records. */
  replace?: boolean;
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
  const addressOwners = new Map<string, string>();
  for (const target of targetGroups(lab, flags, options.knownGroups ?? [])) {
    const settings: MachineSettings = {
      ...spec.defaults,
      ...target.spec,
      ssh: { ...spec.defaults?.ssh, ...target.spec.ssh },
      seed: { ...spec.defaults?.seed, ...target.spec.seed },
    };
    const network = { ...networkObject(spec.defaults?.network), ...networkObject(target.spec.network) };
    const addresses = plannedAddresses(network, target, flags);
    const cloudInit: CloudInitPlan | undefined =
      settings.seed?.enabled === false
        ? undefined
        : {
            hostKeyTypes: settings.seed?.hostKeyTypes ?? ['ed25519'],
            ...(settings.seed?.disableRoot !== undefined ? { disableRoot: settings.seed.disableRoot } : {}),
            ...(settings.seed?.userData ? { userData: settings.seed.userData } : {}),
          };
    const golden = fromFlag(flags.golden) ?? fromFile(settings.golden);
    if (!golden) {
      throw new UsageError('GOLDEN_REQUIRED', `no golden image for group ${target.group}`, {
        hint: 'Pass --golden PATH (a .vhd, .vhdx, .qcow2 or raw disk), or set defaults.golden in labctl.yaml.',
      });
    }
    const pattern = flags.name ?? target.spec.name ?? DEFAULT_NAME_PATTERN;
    for (const [index, name] of planNames(pattern, target.group, target.count).entries()) {
      checkName('vm', name, `group ${target.group}: name pattern ${JSON.stringify(pattern)}`);
      const other = seen.get(name);
      if (other !== undefined) {
        throw new UsageError('NAME_CLASH', `groups ${other} and ${target.group} would both make a VM named ${name}`, {
          hint: 'Give one of them another name pattern (name: in labctl.yaml).',
        });
      }
      seen.set(name, target.group);
      const address = addresses?.[index];
      if (address) {
        const owner = addressOwners.get(address.address);
        if (owner)
          throw new UsageError('ADDRESS_CLASH', `${owner} and ${name} would both get ${address.address}`, {
            hint: 'Give the groups address ranges that do not overlap (network.addresses in labctl.yaml).',
          });
        addressOwners.set(address.address, name);
      }
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
        network: flags.network ?? network.name ?? settings.switch ?? DEFAULT_NETWORK,
        options: providerOptions({
          firmware: flags.firmware ?? settings.firmware,
          generation: settings.generation,
          secureBoot: settings.secureBoot,
          vlan: settings.vlan,
          kernel,
          initrd,
          cmdline,
        }),
        ssh: {
          user: settings.ssh?.user ?? 'root',
          port: settings.ssh?.port ?? 22,
          ...(keyFile ? { keyFile } : {}),
          ...(settings.ssh?.proxyJump ? { proxyJump: settings.ssh.proxyJump } : {}),
        },
        ...(target.spec.vars ? { vars: target.spec.vars } : {}),
        ...(address ? { address } : {}),
        ...(cloudInit ? { cloudInit } : {}),
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

function networkObject(network: string | NetworkSettings | undefined): NetworkSettings {
  return typeof network === 'string' ? { name: network } : (network ?? {});
}

/** The group's addresses in VM order (index i -> the i-th address), checked; undefined without a pool. */
function plannedAddresses(
  network: NetworkSettings,
  target: GroupTarget,
  flags: CreateFlags,
): PlannedAddress[] | undefined {
  const where = `group ${target.group}: network.addresses`;
  // gateway/dns/prefix without addresses (from defaults:) serve the groups that have them.
  if (network.addresses === undefined) return undefined;
  if (flags.network !== undefined && network.name !== undefined && flags.network !== network.name)
    throw new UsageError(
      'ADDRESS_NETWORK',
      `--network ${flags.network}: group ${target.group}'s addresses belong to network ${network.name}`,
      {
        hint: 'Leave out --network, or change network.name and network.addresses together in labctl.yaml.',
      },
    );
  const pool = poolAddresses(network.addresses, where);
  if (pool.length < target.count)
    throw new UsageError('ADDRESS_POOL_SHORT', `${where} has ${pool.length} addresses for ${target.count} VMs`, {
      hint: 'Give the group a longer range, or make fewer VMs.',
    });
  const prefix = network.prefix ?? 24;
  const dns = network.dns ?? [];
  for (const entry of dns)
    if (!isIPv4(entry))
      throw new UsageError('ADDRESS_INVALID', `group ${target.group}: network.dns "${entry}" is not an IPv4 address`);
  return pool.slice(0, target.count).map((address) => {
    const problem = subnetProblem(address, prefix, network.gateway);
    if (problem) throw new UsageError('ADDRESS_INVALID', `${where}: ${problem}`);
    return {
      address,
      prefix,
      ...(network.gateway ? { gateway: network.gateway } : {}),
      ...(dns.length ? { dns } : {}),
      assign: network.assign ?? 'static',
    };
  });
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
