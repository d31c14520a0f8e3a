import type { Check } from './checks.js';
import { describeError, isLabctlError } from './errors.js';
import type { EventSink } from './events.js';
import type { LoadedLabFile } from './spec.js';
import type { VmRecord, VmState } from './state.js';

/**
 * The contract every hypervisor provider implements (libvirt, Hyper-V). Providers never print and
 * never touch the state file: they return records and emit events; the provider-neutral flows in
 * the CLI's libraries write state after every VM. One round trip per batch where the hypervisor
 * allows it (Hyper-V: one PowerShell script creates a whole batch).
 */
/** Provider-specific settings of one VM, untyped in core (see VmPlan.options). */
export type VmOptions = Readonly<Record<string, string | number | undefined>>;

/**
 * The state's `ssh` of a planned VM: login, key file and jump hosts as planned, host keys as known
 * (the seed's, or none until first contact). Core and every provider record it the same way.
 */
export function plannedSsh(ssh: VmPlan['ssh'], hostKeys: string[] = []): VmRecord['ssh'] {
  return {
    user: ssh.user,
    port: ssh.port,
    hostKeys,
    ...(ssh.keyFile ? { keyFile: ssh.keyFile } : {}),
    ...(ssh.proxyJump ? { proxyJump: ssh.proxyJump } : {}),
  };
}

export interface VmPlan {
  name: string;
  group: string;
  /** Provider host: libvirt URI or Hyper-V host name; "local" for this machine. */
  host: string;
  mac: string;
  cpus: number;
  memoryMiB: number;
  /** Absolute path of the golden disk as the provider host sees it. Never written. */
  golden: string;
  clone: 'linked' | 'full';
  /** libvirt network / bridge, or Hyper-V switch. */
  network: string;
  /**
   * Settings only one provider reads (libvirt: firmware, kernel, initrd, cmdline; Hyper-V:
   * generation, secureBoot, vlan), as the lab file and flags gave them. Core only carries them: each
   * provider types and checks its own at its boundary (`libvirtOptions`, `hypervOptions`).
   */
  options: VmOptions;
  ssh: { user: string; port: number; keyFile?: string; proxyJump?: string };
  vars?: Record<string, unknown>;
  /** The address the VM will have, known before it boots (lab file `network.addresses`). */
  address?: PlannedAddress;
  /** How its cloud-init seed is made (absent: no seed, the host key is learned at first contact). */
  cloudInit?: CloudInitPlan;
  /** The seed itself, made by the create flow right before the provider makes the VM; never stored. */
  seed?: VmSeed;
}

export interface PlannedAddress {
  address: string;
  prefix: number;
  gateway?: string;
  dns?: string[];
  /** static: written into the seed; reservation: a DHCP reservation for the VM's MAC. */
  assign: 'static' | 'reservation';
}

export interface CloudInitPlan {
  hostKeyTypes: Array<'ed25519' | 'rsa'>;
  disableRoot?: boolean;
  userData?: Record<string, unknown>;
}

/**
 * A VM's NoCloud seed: the files of its `cidata` filesystem (private host keys among them, so it
 * lives only in memory and in the seed image the provider writes, mode 0600) and the public host
 * keys, pinned in the state before the VM exists.
 */
export interface VmSeed {
  instanceId: string;
  hostKeys: string[];
  files: Array<{ name: string; data: string }>;
}

export interface Plan {
  lab: string;
  provider: string;
  vms: VmPlan[];
  concurrency: number;
}

/** What the hypervisor reports about one network adapter of one VM. */
export interface AdapterReport {
  vm: string;
  /** Adapter name as the hypervisor knows it (vnet3, "Network Adapter"). */
  adapter?: string;
  mac?: string;
  /** Addresses as reported, unfiltered (may include 0.0.0.0, APIPA, fe80::). */
  addresses: string[];
  /** Where the addresses came from: "lease", "agent", "arp", "kvp". */
  source: string;
  /** When the VM has no adapter or is not running. */
  problem?: string;
  /**
   * When the address was handed out (epoch ms), if the source knows (DHCP leases). Discovery drops
   * reports older than the VM's start: stale leases of a destroyed VM that had the same MAC.
   */
  obtainedAt?: number;
}

export interface DestroyOptions {
  keepDisks?: boolean;
}

/**
 * A plan after preflight: every VM on the host it goes to (`host`), and the batches the flows hand
 * the provider, one call each, every batch on one host. The flows iterate these batches for every
 * operation of the run; no placement lives in provider memory.
 */
export interface PlacedPlan extends Plan {
  batches: string[][];
}

export interface PreflightResult {
  checks: Check[];
  placed: PlacedPlan;
}

/** The placed plan of a provider without placement of its own: VMs stay where the plan put them, in batches of `size`. */
export function placeInBatches(plan: Plan, size: number): PlacedPlan {
  const batches: string[][] = [];
  const step = Math.max(1, size);
  for (let i = 0; i < plan.vms.length; i += step) batches.push(plan.vms.slice(i, i + step).map((vm) => vm.name));
  return { ...plan, batches };
}

export interface PreflightOptions {
  /** Read-only: change nothing, start nothing (the checks of `--dry-run`). */
  dryRun?: boolean;
}

/** Why one VM's operation failed: a typed error a user can act on, with the hypervisor's own words. */
export interface VmFailure {
  code: string;
  message: string;
  hint?: string;
  /** The hypervisor's own text (virsh's or PowerShell's error), when it said more than `message`. */
  hypervisor?: string;
}

/**
 * One result shape for every provider operation, per VM. A provider never throws for one VM's
 * failure; it throws only when the whole call could not run (host unreachable), and then the flow
 * gives every VM of the call that error.
 */
export type VmResult<F> = { name: string; ok: true; facts: F } | { name: string; ok: false; error: VmFailure };

/** A typed failure from anything thrown: a LabctlError keeps its code and hint. */
export function vmFailure(err: unknown, fallbackCode = 'VM_FAILED'): VmFailure {
  if (isLabctlError(err)) {
    const stderr = (err.details as { stderr?: unknown } | undefined)?.stderr;
    return {
      code: err.code,
      message: err.message,
      ...(err.hint ? { hint: err.hint } : {}),
      ...(typeof stderr === 'string' && stderr.trim() ? { hypervisor: stderr.trim() } : {}),
    };
  }
  return { code: fallbackCode, message: describeError(err) };
}

export function failed<F>(name: string, error: VmFailure): VmResult<F> {
  return { name, ok: false, error };
}

/** What `start` reports for a VM it started or found running. */
export interface StartFacts {
  state: VmState;
  /** False when it was already running. */
  started: boolean;
}

/** What `destroy` reports for a VM it removed (or found gone). */
export interface DestroyFacts {
  /** The VM was not there any more (an interrupted run, or removed by hand). */
  absent: boolean;
  /** Files named by the state or the hypervisor that labctl did not prove it made, left alone. */
  leftAlone: string[];
}

/** How `stop` stops: a guest shutdown (ACPI / Hyper-V's shutdown integration service) with a deadline. */
export interface StopOptions {
  /** Power off at once, no guest shutdown. */
  force?: boolean;
  /** Seconds the guest gets to shut down; after them a VM is powered off only with `forceAfterTimeout`. */
  timeoutS: number;
  forceAfterTimeout?: boolean;
}

/** What `stop` reports for a VM it stopped or found stopped. */
export interface StopFacts {
  state: VmState;
  /** False when it was not running. */
  stopped: boolean;
  /** It was powered off (asked, or the guest did not shut down in time). */
  forced: boolean;
}

/** Snapshots are a stack per VM: saved on top, reverted to the newest unless named, deleted anywhere. */
export type SnapshotAction = 'save' | 'list' | 'revert' | 'delete';

export interface SnapshotRequest {
  action: SnapshotAction;
  /** save: the new snapshot's name (default snap-N); revert/delete: which one (default: the newest). */
  name?: string;
  /** Hyper-V's checkpoint type; libvirt ignores it (its snapshots are always full). */
  type?: 'standard' | 'production';
  /** save: refuse when the volume of the VM's disk has less free space than this (bytes). */
  minFreeBytes?: number;
}

export interface SnapshotInfo {
  name: string;
  /** ISO 8601, when the hypervisor says. */
  created?: string;
  /** The parent snapshot's name (the one below it on the stack). */
  parent?: string;
  /** What the VM was doing when it was taken ("running", "shutoff"), when known. */
  vmState?: string;
}

/** What a snapshot operation reports for one VM: the snapshot it acted on and the stack afterwards, oldest first. */
export interface SnapshotFacts {
  snapshot?: string;
  snapshots: SnapshotInfo[];
  /** The VM's state after the operation (a revert may start or stop it). */
  state?: VmState;
}

/** The name `save` gives when none is asked for: snap-N, one above the highest snap-N of the stack. */
export function nextSnapshotName(existing: readonly SnapshotInfo[]): string {
  let highest = 0;
  for (const snapshot of existing) {
    const match = /^snap-(\d{1,9})$/.exec(snapshot.name);
    if (match) highest = Math.max(highest, Number(match[1]));
  }
  return `snap-${highest + 1}`;
}

/** Disk formats labctl writes when it copies a VM's disk out (capture, clone bases, export). */
export type DiskFormat = 'qcow2' | 'raw' | 'vhd' | 'vhdx' | 'vmdk';

/**
 * A copy of a VM's disk as it is now (the VM stopped) or as one of its snapshots was. Written to a
 * temporary name beside `output`, synced, then renamed: a killed copy leaves no half file under
 * the name, and a re-run starts it over. The VM's own chain and its golden image are only read.
 */
export interface DiskExportRequest {
  /** Absolute path on this machine. */
  output: string;
  format: DiskFormat;
  /**
   * true: one standalone image with everything of the chain. false: only what the VM wrote, on top
   * of its golden image (a qcow2 whose backing file is the golden): the frozen base of a linked clone.
   */
  flatten: boolean;
  /** Read this snapshot of the VM instead of its current disk (the VM may then run). */
  snapshot?: string;
  /** Replace an existing output (labctl refuses by default). */
  overwrite?: boolean;
}

export interface DiskExportFacts {
  path: string;
  format: DiskFormat;
  /** Bytes the output file takes. */
  bytes: number;
  /** The image it still depends on (flatten: false), absent for a standalone one. */
  backing?: string;
  sha256: string;
}

/**
 * A VM copied out as a self-contained bundle (`labctl export`): its flattened disk, its seed, the
 * hypervisor's own definition, this description (`vm.json`) and SHA256SUMS, written last. What
 * `labctl import` reads back; documented in docs/day2.md.
 */
export interface VmBundleDescription {
  labctlExport: 1;
  name: string;
  group: string;
  provider: string;
  mac: string;
  cpus: number;
  memoryMiB: number;
  network: string;
  /** Provider-specific settings as the VM had them (libvirt: firmware, domainType, kernel, initrd, cmdline). */
  options: Record<string, string | number>;
  ssh: { user?: string; port?: number; keyFile?: string; proxyJump?: string; hostKeys: string[] };
  instanceId?: string;
  assignedAddress?: string;
  assign?: 'static' | 'reservation';
  vars?: Record<string, unknown>;
  /** Files of the bundle, by role, relative to its directory. */
  files: { disk: string; seed?: string; definition: string };
  exportedAt: string;
}

export interface VmExportFacts {
  /** The bundle's directory, or the .ova file. */
  path: string;
  format: 'bundle' | 'ova';
  /** False when a complete, verified bundle was already there (a re-run). */
  written: boolean;
  files: Array<{ name: string; bytes: number; sha256: string }>;
}

/** Where and how `labctl migrate` moves VMs: to another host of the lab, the VM's disks on storage both hosts see. */
export interface MigrateRequest {
  /** A host name of the lab's `hosts:`. */
  to: string;
  /** live: memory copied while the VM runs (the default for a running VM); offline: the definition moves, the VM stays stopped. */
  mode?: 'live' | 'offline';
  /** libvirt: the migration stream goes through libvirt's own connection (peer to peer): no migration ports between hosts. */
  tunnelled?: boolean;
  /** libvirt: migrate even when libvirt cannot tell the disks are on shared storage (a bind mount, a test bed). */
  unsafe?: boolean;
  /** The disks move with the VM (hosts that do not share storage); Hyper-V decides this by itself when unset. */
  copyStorage?: boolean;
}

export interface MigrateFacts {
  /** The host the VM is on now. */
  host: string;
  from: string;
  /** False when it was there already. */
  moved: boolean;
  mode?: 'live' | 'offline';
  state: VmState;
  durationMs: number;
  /** Provider resources that changed with the move (disk paths, when the storage moved too). */
  resources?: Record<string, unknown>;
}

/** One host as `labctl hosts` shows it. A host that cannot be reached says why, with a hint. */
export interface HostReport {
  name: string;
  /** The connection: a libvirt URI, an SSH target. */
  connection: string;
  reachable: boolean;
  error?: string;
  hint?: string;
  versions?: Record<string, string>;
  totalMemoryBytes?: number;
  freeMemoryBytes?: number;
  freeDiskBytes?: number;
  /** VMs (domains) the host has, of any lab. */
  vms?: number;
  running?: number;
  /** Hyper-V: whether the host can send and receive live migrations, and what stands in the way. */
  migration?: { ready: boolean; problems: Array<{ problem: string; fix: string }> };
}

export interface Provider {
  readonly name: string;
  /**
   * Attaches `VmPlan.seed` to the VMs it creates (a cidata disk), so the flow makes one per VM and
   * pins its host keys. A provider without it gets no seed, and keys are learned at first contact.
   */
  readonly seeds?: boolean;
  /**
   * Checks run before anything is changed; any `error` check stops the run. With `dryRun` only
   * read-only checks run (no directory made, no probe VM booted): `create --dry-run` runs exactly these.
   */
  preflight(plan: Plan, options?: PreflightOptions): Promise<PreflightResult>;
  /** One result per VM asked for: the VM's record on success. */
  create(vms: VmPlan[], events: EventSink): Promise<Array<VmResult<VmRecord>>>;
  start(vms: VmRecord[], events: EventSink): Promise<Array<VmResult<StartFacts>>>;
  /** Guest shutdown with a deadline, or power-off (see StopOptions); a stopped VM is left as it is. */
  stop(vms: VmRecord[], options: StopOptions, events: EventSink): Promise<Array<VmResult<StopFacts>>>;
  /**
   * Copies one VM's disk out (template capture, clone bases, export). Optional: a provider without
   * it refuses those commands with a clear error.
   */
  exportDisk?(vm: VmRecord, request: DiskExportRequest, events: EventSink): Promise<VmResult<DiskExportFacts>>;
  /**
   * Where `labctl clone` puts the frozen copy of `source`'s disk for the clone `name`, as the
   * provider host sees it: a path the provider derives from the clone's name and removes with the
   * clone. Throws a UsageError for a mode it does not build.
   */
  cloneBasePath?(source: VmRecord, name: string, mode: 'linked' | 'full'): string;
  /** A stopped VM as a bundle in `dir/NAME/` or an OVF package `dir/NAME.ova` (optional, like exportDisk). */
  exportVm?(
    vm: VmRecord,
    request: { dir: string; format: 'bundle' | 'ova' },
    events: EventSink,
  ): Promise<VmResult<VmExportFacts>>;
  /**
   * A bundle that lives on the provider's host (Hyper-V): checked there (SHA256SUMS) and its vm.json
   * returned unparsed for core to validate. Absent: the bundle is a local directory core reads.
   */
  readBundle?(dir: string): Promise<{ dir: string; description: unknown; problem?: string }>;
  /** Defines a VM of this lab from a verified bundle (its disk and seed copied in); the VM is left stopped. */
  importVm?(bundle: { dir: string; description: VmBundleDescription }, events: EventSink): Promise<VmResult<VmRecord>>;
  /** One snapshot operation on every VM of the call (Hyper-V: one script per host). */
  snapshot(vms: VmRecord[], request: SnapshotRequest, events: EventSink): Promise<Array<VmResult<SnapshotFacts>>>;
  adapters(vms: VmRecord[]): Promise<AdapterReport[]>;
  /** VMs this lab owns as the hypervisor sees them (labctl-made only). */
  list(lab: string): Promise<VmRecord[]>;
  /** Removes VMs and their own disks; never the golden disk or any parent. */
  destroy(vms: VmRecord[], options: DestroyOptions, events: EventSink): Promise<Array<VmResult<DestroyFacts>>>;
  /** Moves VMs of this host to another host of the lab (optional: a provider without it refuses `migrate`). */
  migrate?(vms: VmRecord[], request: MigrateRequest, events: EventSink): Promise<Array<VmResult<MigrateFacts>>>;
  /**
   * Hosts of the lab this provider could not reach in its last `list` or `preflight`, with the cause
   * (a provider over several hosts lists the others' VMs and fails only these hosts' VMs).
   */
  unreachableHosts?(): ReadonlyMap<string, VmFailure>;
  /** This provider's host (its connection), for `labctl hosts` and placement; optional. */
  hostReport?(): Promise<HostReport>;
  close?(): Promise<void>;
}

/**
 * The results of a call for exactly the VMs asked for: a VM the provider said nothing about is a
 * failure (never silently "done"); a whole call that threw fails every VM of it with that error.
 */
export async function resultsFor<F>(
  names: readonly string[],
  call: () => Promise<Array<VmResult<F>>>,
): Promise<Map<string, VmResult<F>>> {
  let results: Array<VmResult<F>>;
  try {
    results = await call();
  } catch (err) {
    const error = vmFailure(err, 'PROVIDER_CALL_FAILED');
    return new Map(names.map((name) => [name, failed<F>(name, error)]));
  }
  const byName = new Map<string, VmResult<F>>();
  for (const result of results)
    if (names.includes(result.name) && !byName.has(result.name)) byName.set(result.name, result);
  for (const name of names) {
    if (!byName.has(name))
      byName.set(
        name,
        failed<F>(name, { code: 'PROVIDER_NO_RESULT', message: 'the provider returned no result for this VM' }),
      );
  }
  return byName;
}

/** What a provider is made from: the lab, its directory, and the connection (a libvirt URI, a Hyper-V host). */
export interface ProviderContext {
  lab: LoadedLabFile;
  labDir: string;
  /** Absent: the lab file's, else the provider's default connection. "local": this machine. */
  connection?: string;
}

/**
 * One per provider package (libvirt, hyperv), exported by the package; the CLI's registry is a list
 * of these. Neutral code (core, the CLI) knows providers only through this shape, never by name.
 */
export interface ProviderDefinition {
  name: string;
  /** Prefix (3 octets) of the static MACs planned for its VMs, known before any provider is made. */
  macPrefix: string;
  /** The connection used when neither a flag nor the lab file names one; `env` overrides `value`. */
  defaultConnection: { value: string; env?: string };
  make(context: ProviderContext): Provider;
  /**
   * A lab with `hosts:`: `create --host NAME` still goes through every host (so the lab's VMs on the
   * others are seen, never made twice) and only pins the new VMs to NAME. Without it, --host narrows
   * the provider to that one host.
   */
  pinsWithinHosts?: boolean;
  /** Writes what a run would execute, for review (Hyper-V: --emit-powershell); contacts nothing. */
  emitDryRun?(context: ProviderContext, plan: Plan, dir: string): Promise<string[]>;
}
