import { type MigrationSettings, type RawSettings, settingsOf } from './migration.js';
import { stringArray } from './parse.js';

/**
 * What stands between two Hyper-V hosts and a live migration, read by move_vms (facts mode) on the
 * source and on the destination before anything moves. Every finding names the host it is about,
 * the problem, and the command that fixes it: the preflight of `labctl migrate` on Hyper-V.
 */
/** The live-migration settings (Get-LabctlMigrationSettings), and what a destination needs besides. */
export interface MoveHostFacts extends MigrationSettings {
  freeMemoryBytes: number;
  switches: string[];
  virtualHardDiskPath: string;
}

export interface MoveVmFacts {
  name: string;
  exists: boolean;
  state?: string;
  memoryBytes?: number;
  switches?: string[];
  disks?: string[];
  /** What its disk files take (Get-VHD FileSize), moved with -IncludeStorage. */
  diskBytes?: number;
}

export interface MoveFacts {
  host: MoveHostFacts;
  vms: MoveVmFacts[];
  storage?: { freeBytes: number | null; unknown: string | null };
}

export interface MigrationFinding {
  /** The lab's name of the host it is about, or the VM's name. */
  subject: string;
  problem: string;
  fix: string;
}

const MiB = 1024 * 1024;

/** move_vms' facts, typed; fields a host did not print read as "not set". */
export function moveFacts(raw: unknown): MoveFacts {
  const data = (raw ?? {}) as { host?: Record<string, unknown>; vms?: unknown; storage?: Record<string, unknown> };
  const host = data.host ?? {};
  const vms = Array.isArray(data.vms) ? data.vms : data.vms ? [data.vms] : [];
  return {
    host: {
      ...settingsOf(host as RawSettings),
      freeMemoryBytes: Number(host.freeMemoryBytes ?? 0),
      switches: stringArray(host.switches),
      virtualHardDiskPath: String(host.virtualHardDiskPath ?? ''),
    },
    vms: vms.map((vm: Record<string, unknown>) => ({
      name: String(vm.name ?? ''),
      exists: vm.exists === true,
      ...(vm.state !== undefined ? { state: String(vm.state) } : {}),
      ...(vm.memoryBytes !== undefined ? { memoryBytes: Number(vm.memoryBytes) } : {}),
      ...(vm.diskBytes !== undefined && vm.diskBytes !== null ? { diskBytes: Number(vm.diskBytes) } : {}),
      switches: stringArray(vm.switches),
      disks: stringArray(vm.disks),
    })),
    ...(data.storage
      ? {
          storage: {
            freeBytes: typeof data.storage.freeBytes === 'number' ? data.storage.freeBytes : null,
            unknown: typeof data.storage.unknown === 'string' ? data.storage.unknown : null,
          },
        }
      : {}),
  };
}

/** A disk both hosts can open where it is: a share or a Cluster Shared Volume. */
export function onSharedStorage(path: string): boolean {
  return path.startsWith('\\\\') || /^[A-Za-z]:\\ClusterStorage\\/i.test(path);
}

/**
 * What a host lacks to take part in live migrations: on, Kerberos, and (to receive them, `incoming`)
 * a network to receive them on.
 */
export function hostFindings(name: string, host: MoveHostFacts, incoming: boolean): MigrationFinding[] {
  const findings: MigrationFinding[] = [];
  if (!host.migrationEnabled)
    findings.push({
      subject: name,
      problem: `${name}: live migration is off`,
      fix: `On ${name}: Enable-VMMigration (or labctl delegation apply --configure-hosts)`,
    });
  if (host.authenticationType !== 'Kerberos')
    findings.push({
      subject: name,
      problem: `${name}: migrations authenticate with ${host.authenticationType}, which works only from a logon on the source host itself (and Credential Guard, on by default in Windows Server 2025, blocks it)`,
      fix: `On ${name}: Set-VMHost -VirtualMachineMigrationAuthenticationType Kerberos (and constrained delegation: labctl delegation apply)`,
    });
  if (
    incoming &&
    host.migrationEnabled &&
    !host.useAnyNetwork &&
    host.migrationNetworks !== null &&
    host.migrationNetworks.length === 0
  )
    findings.push({
      subject: name,
      problem: `${name}: no migration network, and UseAnyNetworkForMigration is off: incoming migrations have no network`,
      fix: `On ${name}: Add-VMMigrationNetwork <subnet>, or Set-VMHost -UseAnyNetworkForMigration $true`,
    });
  return findings;
}

/**
 * Every finding for moving `vms` from `source` to `destination` (lab host names), or none; with
 * `includeStorage`, the destination's volume must hold their disk files too.
 */
export function migrationFindings(
  source: { name: string; facts: MoveFacts },
  destination: { name: string; facts: MoveFacts },
  includeStorage = false,
): MigrationFinding[] {
  const findings: MigrationFinding[] = [
    ...hostFindings(source.name, source.facts.host, false),
    ...hostFindings(destination.name, destination.facts.host, true),
  ];
  const target = destination.facts.host;
  const switches = new Set(target.switches.map((name) => name.toLowerCase()));
  let memory = 0;
  for (const vm of source.facts.vms) {
    if (!vm.exists) continue;
    for (const name of vm.switches ?? [])
      if (!switches.has(name.toLowerCase()))
        findings.push({
          subject: vm.name,
          problem: `${vm.name}: its switch '${name}' does not exist on ${destination.name}`,
          fix: `On ${destination.name}: New-VMSwitch -Name '${name.replaceAll("'", "''")}' (the same name), or connect ${vm.name} to a switch ${destination.name} has`,
        });
    if (vm.state === 'Running') memory += vm.memoryBytes ?? 0;
  }
  const diskBytes = source.facts.vms.reduce((sum, vm) => sum + (vm.exists ? (vm.diskBytes ?? 0) : 0), 0);
  const space = destination.facts.storage?.freeBytes;
  if (includeStorage && typeof space === 'number' && diskBytes > space)
    findings.push({
      subject: destination.name,
      problem: `${destination.name} has ${Math.round(space / MiB)} MiB free where the disks go; they take ${Math.round(diskBytes / MiB)} MiB`,
      fix: `Free space on ${destination.name} (or give it another path: in hosts:), or move fewer VMs there`,
    });
  if (memory > target.freeMemoryBytes)
    findings.push({
      subject: destination.name,
      problem: `${destination.name} has ${Math.round(target.freeMemoryBytes / MiB)} MiB free; the running VMs to move need ${Math.round(memory / MiB)} MiB`,
      fix: `Free memory on ${destination.name}, or move fewer VMs there (labctl evacuate spreads them)`,
    });
  return findings;
}
