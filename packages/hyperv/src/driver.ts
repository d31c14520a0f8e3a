import type { PowerShellSession } from '@labctl/remote/powershell';
import { objectArray } from './parse.js';
import { SCRIPTS } from './scripts/index.js';
import type {
  CopyDiskFacts,
  CopyDiskInput,
  CreateVmResult,
  CreateVmsInput,
  ExportVmFacts,
  ExportVmInput,
  HostFacts,
  HostFactsInput,
  ImportVmFacts,
  ImportVmInput,
  ListedVm,
  MoveVmsInput,
  RegisterVmResult,
  RegisterVmsInput,
  RemoveVmResult,
  RemoveVmsInput,
  SnapshotVmResult,
  SnapshotVmsInput,
  StartVmResult,
  StopVmResult,
  StopVmsInput,
  VmAdapterFacts,
  VmRef,
} from './types.js';

/**
 * One Hyper-V host, one method per script (style point 4: a driver interface in front of the
 * PowerShell implementation). Every method is exactly one PowerShell invocation, whatever the
 * number of VMs it is given.
 */
export interface HyperVDriver {
  readonly host: string;
  hostFacts(input: HostFactsInput): Promise<HostFacts>;
  createVms(input: CreateVmsInput): Promise<CreateVmResult[]>;
  startVms(lab: string, vms: VmRef[]): Promise<StartVmResult[]>;
  stopVms(input: StopVmsInput): Promise<StopVmResult[]>;
  snapshotVms(input: SnapshotVmsInput): Promise<SnapshotVmResult[]>;
  copyDisk(input: CopyDiskInput): Promise<CopyDiskFacts>;
  exportVm(input: ExportVmInput): Promise<ExportVmFacts>;
  importVm(input: ImportVmInput): Promise<ImportVmFacts>;
  adapters(vms: VmRef[]): Promise<VmAdapterFacts[]>;
  listVms(lab: string): Promise<ListedVm[]>;
  removeVms(input: RemoveVmsInput): Promise<RemoveVmResult[]>;
  registerVms(input: RegisterVmsInput): Promise<RegisterVmResult[]>;
  /** move_vms: what live migration needs here (facts), or Move-VM of each VM (move); see move.ts. */
  moveVms(input: MoveVmsInput): Promise<unknown>;
  /** PowerShell invocations so far (for benchmarks and round-trip tests). */
  readonly invocations: number;
}

export interface DriverTimeouts {
  /** Per script run; creating a batch of full copies can take long. */
  createMs?: number;
  defaultMs?: number;
}

export class PowerShellHyperVDriver implements HyperVDriver {
  constructor(
    private readonly session: PowerShellSession,
    private readonly timeouts: DriverTimeouts = {},
  ) {}

  get host(): string {
    return this.session.host;
  }

  get invocations(): number {
    return this.session.invocations;
  }

  private run<T>(script: keyof typeof SCRIPTS, input: unknown, timeoutMs?: number): Promise<T> {
    return this.session.run<T>(SCRIPTS[script], input, { timeoutMs: timeoutMs ?? this.timeouts.defaultMs ?? 120_000 });
  }

  hostFacts(input: HostFactsInput): Promise<HostFacts> {
    return this.run<HostFacts>('get_host_facts', input);
  }

  async createVms(input: CreateVmsInput): Promise<CreateVmResult[]> {
    const data = await this.run<{ vms: unknown }>('create_vms', input, this.timeouts.createMs ?? 1_800_000);
    return objectArray<CreateVmResult>(data?.vms);
  }

  async startVms(lab: string, vms: VmRef[]): Promise<StartVmResult[]> {
    return objectArray<StartVmResult>((await this.run<{ vms: unknown }>('start_vms', { lab, vms }))?.vms);
  }

  /** The script asks every guest at once and waits up to timeoutS for them all. */
  async stopVms(input: StopVmsInput): Promise<StopVmResult[]> {
    const deadline = 180_000 + input.timeoutS * 1000;
    return objectArray<StopVmResult>((await this.run<{ vms: unknown }>('stop_vms', input, deadline))?.vms);
  }

  /** One VM's disk, merged by Convert-VHD: as long as the disk is big (up to 2 hours). */
  copyDisk(input: CopyDiskInput): Promise<CopyDiskFacts> {
    return this.run<CopyDiskFacts>('copy_disk', input, 7_200_000);
  }

  exportVm(input: ExportVmInput): Promise<ExportVmFacts> {
    return this.run<ExportVmFacts>('export_vm', input, 7_200_000);
  }

  importVm(input: ImportVmInput): Promise<ImportVmFacts> {
    return this.run<ImportVmFacts>('import_vm', input, input.checkOnly ? 1_800_000 : 7_200_000);
  }

  async snapshotVms(input: SnapshotVmsInput): Promise<SnapshotVmResult[]> {
    return objectArray<SnapshotVmResult>((await this.run<{ vms: unknown }>('snapshot_vms', input, 1_800_000))?.vms);
  }

  async adapters(vms: VmRef[]): Promise<VmAdapterFacts[]> {
    return objectArray<VmAdapterFacts>((await this.run<{ vms: unknown }>('get_adapters', { vms }))?.vms);
  }

  /** A move copies memory (and with IncludeStorage, disks): up to 2 hours for the batch. */
  moveVms(input: MoveVmsInput): Promise<unknown> {
    return this.run<unknown>('move_vms', input, input.mode === 'facts' ? 120_000 : 7_200_000);
  }

  async listVms(lab: string): Promise<ListedVm[]> {
    return objectArray<ListedVm>((await this.run<{ vms: unknown }>('list_vms', { lab }))?.vms);
  }

  async removeVms(input: RemoveVmsInput): Promise<RemoveVmResult[]> {
    return objectArray<RemoveVmResult>((await this.run<{ vms: unknown }>('remove_vms', input, 600_000))?.vms);
  }

  async registerVms(input: RegisterVmsInput): Promise<RegisterVmResult[]> {
    return objectArray<RegisterVmResult>((await this.run<{ vms: unknown }>('register_vms', input, 600_000))?.vms);
  }
}
