/**
 * The JSON documents labctl's Hyper-V scripts take and print (the `data` of the envelope). Field
 * names are camelCase and chosen by labctl's scripts; values are already strings where
 * PowerShell 5.1 and 7 would disagree (enums, GUIDs).
 */
export interface ScriptFailure {
  message: string;
  type?: string;
  fqid?: string;
  category?: string;
}

export interface HostFactsInput {
  lab: string;
  goldens: string[];
  switches: string[];
  names: string[];
  /** Volumes to report free space for; empty: the host's VirtualHardDiskPath. */
  diskDirs: string[];
}

export interface GoldenFacts {
  path: string;
  exists: boolean;
  vhdType?: string;
  vhdFormat?: string;
  parentPath?: string;
  sizeBytes?: number;
  fileSizeBytes?: number;
  attachedTo?: Array<{ vm: string; state: string }>;
  writableBy?: string[];
  /** false: a share this session cannot read (the disk may exist; see reason). */
  readable?: boolean;
  reason?: string;
  /** Reading this golden disk failed (the other goldens are still reported). */
  error?: ScriptFailure;
}

export interface HostFacts {
  computerName: string;
  psVersion: string;
  hyperVModule: boolean;
  memoryCapacityBytes?: number;
  freeMemoryBytes?: number;
  logicalProcessors?: number;
  virtualHardDiskPath?: string;
  virtualMachinePath?: string;
  secureBootTemplates?: string[];
  secureBootTemplateParameter?: boolean;
  goldens?: GoldenFacts[];
  switches?: Array<{ name: string; exists: boolean; switchType?: string }>;
  names?: Array<{ name: string; exists: boolean; state?: string; lab?: string | null }>;
  /** Free space per disk directory; freeBytes null with `unknown` (the reason) when not looked up. */
  volumes?: Array<{
    dir: string;
    root: string | null;
    freeBytes: number | null;
    totalBytes: number | null;
    unknown?: string | null;
  }>;
  /** Static MACs of the host's VMs (12 hex digits) and the lab that made each VM, if any. */
  macs?: Array<{ vm: string; mac: string; lab: string | null }>;
}

export interface CreateVmSpec {
  name: string;
  group: string;
  generation: 1 | 2;
  memoryBytes: number;
  dynamicMemory?: { minimumBytes: number; maximumBytes: number };
  processors: number;
  switch: string;
  /** 12 hex digits, or null for a dynamic MAC. */
  mac: string | null;
  vlan: number | null;
  secureBoot: 'linux' | 'windows' | 'off';
  golden: string;
  clone: 'linked' | 'full';
  /** File name of the VM's own disk inside the batch's disk directory. */
  diskFile: string;
  /** File name of its seed disk there (`NAME.seed.vhdx`). */
  seedFile: string;
  /** The seed disk (a VHDX holding the cidata filesystem), gzip + base64; null: no seed. */
  seed: string | null;
}

export interface CreateVmsInput {
  lab: string;
  /** Where disks and VM configurations go; null: `<host VirtualHardDiskPath>\\<lab>`, decided on the host. */
  diskDir: string | null;
  vms: CreateVmSpec[];
}

export interface CreateVmResult {
  name: string;
  ok: boolean;
  created: boolean;
  id?: string;
  state?: string;
  vhdPath?: string;
  /** The seed disk create_vms wrote and attached (absent: no seed). */
  seedPath?: string | null;
  mac?: string;
  error?: ScriptFailure;
}

export interface VmRef {
  name: string;
  id?: string;
}

export interface MoveVmsInput {
  mode: 'facts' | 'move';
  vms: VmRef[];
  /** move: the destination's computer name (FQDN when known). */
  destination?: string;
  includeStorage?: boolean;
  /** Where storage goes on the destination (each VM in a folder of its name). */
  storagePath?: string;
}

export interface StartVmResult {
  name: string;
  ok: boolean;
  state?: string;
  started?: boolean;
  error?: ScriptFailure;
}

export interface StopVmsInput {
  vms: VmRef[];
  force: boolean;
  timeoutS: number;
  forceAfterTimeout: boolean;
}

export interface VolumeSpace {
  dir: string;
  root?: string | null;
  freeBytes?: number | null;
  totalBytes?: number | null;
  unknown?: string | null;
}

export interface StopVmResult {
  name: string;
  ok: boolean;
  state?: string;
  stopped?: boolean;
  forced?: boolean;
  /** A Paused-Critical VM: the volume that filled up. */
  volume?: VolumeSpace;
  error?: ScriptFailure;
}

export interface SnapshotVmsInput {
  action: 'save' | 'list' | 'revert' | 'delete';
  name?: string;
  /** Hyper-V's CheckpointType name (Standard, Production). */
  type?: string;
  minFreeBytes?: number;
  vms: VmRef[];
}

export interface CheckpointFacts {
  name: string;
  id: string;
  created?: string;
  parent?: string;
}

export interface SnapshotVmResult {
  name: string;
  ok: boolean;
  snapshot?: string | null;
  snapshots?: unknown;
  state?: string;
  error?: ScriptFailure;
}

export interface CopyDiskInput {
  vm: VmRef;
  /** A path on the host (D:\\golden\\web-v2.vhdx). */
  output: string;
  flatten: boolean;
  overwrite: boolean;
  /** Paths the output must never be (the VM's golden image). */
  protect: string[];
}

export interface CopyDiskFacts {
  path: string;
  source: string;
  bytes: number;
  sha256: string;
}

export interface ExportVmInput {
  vm: VmRef;
  /** A folder on the host; the export goes to <dir>\\<name>. */
  dir: string;
  /** labctl's part of vm.json; the script fills in what the VM says (CPUs, memory, MAC, switch, files). */
  description: Record<string, unknown>;
}

export interface ExportVmFacts {
  path: string;
  written: boolean;
  files?: unknown;
}

export interface ImportVmInput {
  lab: string;
  dir: string;
  checkOnly: boolean;
  diskDir?: string;
}

export interface ImportVmFacts {
  problem?: string;
  description?: string;
  id?: string;
  vhdPath?: string;
  seed?: string | null;
  generation?: number;
  mac?: string;
  state?: string;
}

export interface AdapterFacts {
  name: string;
  macAddress: string;
  ipAddresses: unknown;
  switchName: string;
  status: unknown;
}

export interface VmAdapterFacts {
  name: string;
  state: string;
  uptimeSeconds?: number;
  kvpEnabled?: boolean | null;
  kvpStatus?: string | null;
  adapters: unknown;
}

export interface ListedVm {
  name: string;
  id: string;
  state: string;
  group: string;
  vhdPath: string;
  generation: number;
  mac: string | null;
}

export interface RemoveVmsInput {
  lab: string;
  keepDisks: boolean;
  /** Golden disks: never deleted, whatever else a record says. */
  protect: string[];
  vms: Array<VmRef & { vhdPath?: string }>;
}

export interface RemoveVmResult {
  name: string;
  ok: boolean;
  state?: 'removed' | 'not_created';
  removedDisks?: string[];
  keptDisks?: Array<{ path: string; reason: string }>;
  error?: ScriptFailure;
}

export interface RegisterVmsInput {
  paths: string[];
  vhdDir?: string;
  switch?: string;
  dryRun: boolean;
}

export interface RegisterVmResult {
  path: string;
  ok: boolean;
  registered: boolean;
  already?: boolean;
  name?: string;
  id?: string;
  fixes?: Array<{ problem: string; fix: string }>;
  remaining?: Array<{ message: string; messageId: number; sourceType: string | null; sourceName: string | null }>;
  error?: ScriptFailure;
}
