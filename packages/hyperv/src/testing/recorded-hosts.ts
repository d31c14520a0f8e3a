import { execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type SshConnection } from '@labctl/remote/ssh';
import { readSimulatedHost, writeSimulatedHost } from './sim-state.js';

/**
 * Simulated Hyper-V hosts behind real sshd (scripts/testbed/hyperv-hosts.sh), for tests and the
 * benchmark: labctl's scripts run under a real PowerShell 7 against the Hyper-V simulator module
 * (packages/hyperv/simulator). Each host's state is a directory (sim-state.ts); tests write and read
 * it as a FakeHost.
 */
export const GOLDEN = 'D:\\Golden\\centos7.vhdx';
export const GiB = 1024 ** 3;

/** A virtual disk on the simulated host (the header of its file; fileSize is what Get-VHD reports). */
export interface FakeFile {
  type: 'Dynamic' | 'Fixed' | 'Differencing';
  parent?: string;
  size: number;
  fileSize: number;
  writableBy?: string[];
  /** The file's real length (sparse), for copies that must write real bytes. */
  paddingBytes?: number;
}

/** A VM as the simulator keeps it (packages/hyperv/simulator/modules/Hyper-V/Hyper-V.psm1). */
export interface FakeVm {
  name: string;
  id: string;
  state: string;
  generation: number;
  memoryBytes: number;
  processors?: number;
  notes: string;
  /** Current disk of each drive (an .avhdx after a checkpoint). */
  disks: string[];
  adapters: Array<{ name: string; mac: string; switch: string | null; vlan?: number | null; dynamicMac?: boolean }>;
  /** linux (UEFI CA template), windows, or off. */
  secureBoot?: string | null;
  bootAt?: number | null;
  /** The VM's folder (New-VM -Path plus the VM name) and its configuration file. */
  path?: string;
  config?: string;
  checkpoints?: Array<{ id: string; name: string; parentId?: string | null; frozen?: string[] }>;
  automaticCheckpoints?: boolean;
  /** Integration services switched off (by id), e.g. Shutdown's 9F8233AC-…. */
  disabledServices?: string[];
}

/** Get-VMHost's migration fields as 5.1 prints them (the enum as a number: CredSSP=0, Kerberos=1). */
export interface FakeVmHost {
  VirtualMachineMigrationEnabled: boolean;
  VirtualMachineMigrationAuthenticationType: number;
  UseAnyNetworkForMigration: boolean;
  MaximumVirtualMachineMigrations: number;
  MigrationNetworks: Array<{ Subnet: string; Priority: number }>;
}

export interface FakeHost {
  /** Absent: a fresh host (migration off, CredSSP, no migration networks). */
  vmHost?: FakeVmHost;
  vms: FakeVm[];
  files: Record<string, FakeFile>;
  switches: Array<{ name: string; type: string }>;
  unregistered: Record<string, { name: string; switch: string; disks: string[]; notes?: string }>;
}

/** How a simulated host misbehaves (read by simulator/host.mjs and the simulator module). */
export interface Scenario {
  sleepMs?: number;
  dropOn?: string;
  throwOn?: string;
  failCreate?: string[];
  kvp?: Record<string, 'none' | 'nocontact' | 'disabled' | 'late'>;
  freeMemoryBytes?: number;
  freeBytes?: number;
  noHyperV?: boolean;
  secureBootTemplates?: string[];
  uptimeOffset?: number;
  /** $env:COMPUTERNAME as configure_migration reports it (default HV-FAKE). */
  computerName?: string;
  /** Set-VMHost -VirtualMachineMigrationAuthenticationType fails with access denied. */
  failSetVMHost?: boolean;
  /** A cmdlet fails like a host: AccessDenied, DiskFull, OperationFailed. */
  fail?: Record<string, 'AccessDenied' | 'DiskFull' | 'OperationFailed'>;
  /** Writes past this size fail (a volume filling up mid-copy). */
  fileSizeLimitBytes?: number;
  /** sshd's DefaultShell is PowerShell: the command line runs inside an outer PowerShell. */
  defaultShell?: boolean;
  logicalProcessors?: number;
  /** Guests that never finish a shutdown asked by Stop-VM (the VM keeps running). */
  ignoresShutdown?: string[];
  /** Integration service names in German (ids stay the same). */
  locale?: 'de';
  /** Win32_Volume's volumes (drive roots and mount points) with their free space. */
  volumes?: Array<{ name: string; freeBytes?: number; totalBytes?: number }>;
  /** Win32_OperatingSystem.Version, e.g. 10.0.14393 for Windows Server 2016. */
  osVersion?: string;
}

export function defaultHost(): FakeHost {
  return {
    // A fresh host: live migration off, CredSSP, no migration networks.
    vmHost: {
      VirtualMachineMigrationEnabled: false,
      VirtualMachineMigrationAuthenticationType: 0,
      UseAnyNetworkForMigration: false,
      MaximumVirtualMachineMigrations: 2,
      MigrationNetworks: [],
    },
    vms: [],
    files: { [GOLDEN]: { type: 'Dynamic', size: 40 * GiB, fileSize: 3 * GiB } },
    switches: [{ name: 'LabSwitch', type: 'Internal' }],
    unregistered: {},
  };
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

export class RecordedHosts {
  readonly dir: string;
  readonly ports: number[];

  constructor(count: number, basePort: number) {
    this.dir = mkdtempSync(join(tmpdir(), 'hyperv-test-'));
    execFileSync(join(repoRoot, 'scripts/testbed/hyperv-hosts.sh'), ['up', this.dir, String(count), String(basePort)], {
      stdio: 'pipe',
    });
    this.ports = Array.from({ length: count }, (_, index) => basePort + index + 1);
    for (const port of this.ports) this.reset(port);
  }

  private file(port: number, name: string): string {
    return join(this.dir, 'hv', String(port), name);
  }

  /** The host's state directory. */
  stateDir(port: number): string {
    return join(this.dir, 'hv', String(port));
  }

  reset(port: number, host: FakeHost = defaultHost(), scenario: Scenario = {}): void {
    writeSimulatedHost(this.stateDir(port), host, scenario);
  }

  scenario(port: number, scenario: Scenario): void {
    const file = this.file(port, 'scenario.json');
    writeFileSync(file, JSON.stringify(scenario));
    chmodSync(file, 0o666);
  }

  host(port: number): FakeHost {
    return readSimulatedHost(this.stateDir(port));
  }

  /** Script names the host ran, in order (what the host saw, not what the client counted). */
  invocations(port: number): Array<{ script: string; shell: string; commandLength: number; vms?: number }> {
    return readFileSync(this.file(port, 'invocations.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line));
  }

  /** SSH logins sshd accepted on this host so far (from its own log). */
  logins(port: number): number {
    const index = this.ports.indexOf(port) + 1;
    return (
      readFileSync(join(this.dir, `h${index}`, 'sshd.log'), 'utf8').match(/Accepted publickey for labctl-np/g) ?? []
    ).length;
  }

  connect(port: number, knownHostsFile = join(this.dir, 'known_hosts')): Promise<SshConnection> {
    return connect(`labctl-np@127.0.0.1:${port}`, {
      knownHostsFile,
      identityFiles: [join(this.dir, 'client', 'id_ed25519')],
      agent: false,
      sshConfigFile: false,
      hostKeyPolicy: 'strict',
      readyTimeoutMs: 10_000,
    });
  }

  /** A known_hosts file where this port's host keys are replaced by another key: a changed host key. */
  changedKnownHosts(port: number): string {
    const file = join(this.dir, `known_hosts.changed-${port}`);
    const other = readFileSync(join(this.dir, 'client', 'wrong_ed25519.pub'), 'utf8')
      .split(' ')
      .slice(0, 2)
      .join(' ');
    const kept = readFileSync(join(this.dir, 'known_hosts'), 'utf8')
      .split('\n')
      .filter((line) => line && !line.startsWith(`[127.0.0.1]:${port} `));
    writeFileSync(file, `${kept.join('\n')}\n`);
    appendFileSync(file, `[127.0.0.1]:${port} ${other}\n`);
    return file;
  }

  stop(): void {
    try {
      execFileSync(join(repoRoot, 'scripts/testbed/hyperv-hosts.sh'), ['down', this.dir], { stdio: 'pipe' });
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
