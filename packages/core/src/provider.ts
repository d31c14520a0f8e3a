import type { Check } from './checks.js';
import type { EventSink } from './events.js';
import type { VmRecord } from './state.js';

/**
 * The contract every hypervisor provider implements (libvirt, Hyper-V). Providers never print and
 * never touch the state file: they return records and emit events; the provider-neutral flows in
 * the CLI's libraries write state after every VM. One round trip per batch where the hypervisor
 * allows it (Hyper-V: one PowerShell script creates a whole batch).
 */
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
  firmware: 'bios' | 'uefi';
  generation?: 1 | 2;
  secureBoot?: 'off' | 'linux' | 'windows';
  vlan?: number;
  /** Direct kernel boot (images without a bootloader). */
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  ssh: { user: string; port: number; keyFile?: string };
  vars?: Record<string, unknown>;
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

export interface Provider {
  readonly name: string;
  /** How many VMs one `create` or `start` call should get; the flows write state after every call. Default 1. */
  readonly batchSize?: number;
  /** Checks run before anything is changed; any `error` check stops the run. */
  preflight(plan: Plan): Promise<Check[]>;
  create(vms: VmPlan[], events: EventSink): Promise<VmRecord[]>;
  start(vms: VmRecord[], events: EventSink): Promise<void>;
  adapters(vms: VmRecord[]): Promise<AdapterReport[]>;
  /** VMs this lab owns as the hypervisor sees them (labctl-made only). */
  list(lab: string): Promise<VmRecord[]>;
  /** Removes VMs and their own disks; never the golden disk or any parent. */
  destroy(vms: VmRecord[], options: DestroyOptions, events: EventSink): Promise<void>;
  close?(): Promise<void>;
}
