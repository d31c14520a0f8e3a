import { chmod, copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, join, posix } from 'node:path';
import { mapLimit } from '@labctl/core/concurrency';
import { describeError } from '@labctl/core/errors';
import type { EventSink } from '@labctl/core/events';
import { pathInside } from '@labctl/core/names';
import {
  type AdapterReport,
  type DestroyFacts,
  type DestroyOptions,
  type DiskExportFacts,
  type DiskExportRequest,
  failed,
  type HostReport,
  type MigrateFacts,
  type MigrateRequest,
  type Plan,
  type PreflightOptions,
  type PreflightResult,
  type Provider,
  placeInBatches,
  plannedSsh,
  type SnapshotFacts,
  type SnapshotRequest,
  type StartFacts,
  type StopFacts,
  type StopOptions,
  type VmBundleDescription,
  type VmExportFacts,
  type VmPlan,
  type VmResult,
  vmFailure,
} from '@labctl/core/provider';
import type { VmRecord, VmState } from '@labctl/core/state';
import { isoImage } from '@labctl/seed/iso9660';
import { SEED_LABEL } from '@labctl/seed/nocloud';
import { type Accelerator, type AcceleratorChoice, chooseAccelerator } from './accelerator.js';
import { AdapterReader } from './adapters.js';
import { exportBundle } from './bundle.js';
import { connectError, isLocalUri, LibvirtError } from './connect.js';
import { snapshotDomains, stopDomain } from './day2.js';
import type { GoldenInfo } from './disks.js';
import { exportDomainDisk } from './export-disk.js';
import { alreadyThere, migrateDomain } from './migrate.js';
import { libvirtOptions } from './options.js';
import { parseDomainList } from './parse.js';
import { libvirtChecks, type PreflightHost } from './preflight.js';
import { addReservation, addressChecks, removeReservation } from './reservations.js';
import { withSshMux } from './ssh-mux.js';
import { type DiskStore, LocalStore, PoolStore } from './storage.js';
import { isNoDomain, isNotRunning, Virsh } from './virsh.js';
import { domainXml, LABCTL_XMLNS, type LabctlMetadata, networkSource, parseLabctlMetadata } from './xml.js';

/**
 * The KVM/libvirt provider: `virsh` with generated domain XML, a qcow2 overlay per VM on the golden
 * image, identity through the kernel command line and the SMBIOS serial, labctl's own `<metadata>`
 * in every domain so `list` finds exactly this lab's VMs, even after a crash.
 */
export { isLocalUri, LibvirtError, remoteUriChecks } from './connect.js';

export const DEFAULT_URI = 'qemu:///system';
export const DEFAULT_POOL = 'default';

export interface LibvirtProviderOptions {
  lab: string;
  uri?: string;
  /**
   * This machine's directory for the domain XML labctl hands to virsh and, with a local libvirt and
   * no `pool`, for the VMs' overlays and console logs too.
   */
  diskDir: string;
  /**
   * A libvirt storage pool for the VMs' disks and console logs, made through libvirt's storage API
   * (vol-create / vol-delete). Always used for a remote URI (default pool `default`); for a local URI
   * only when set (otherwise this machine's qemu-img makes the overlays in diskDir).
   */
  pool?: string;
  accelerator?: 'auto' | Accelerator;
  /** Where the accelerator probe result is cached (default ~/.cache/labctl/accelerator.json). */
  acceleratorCacheFile?: string;
  virshProgram?: string;
  /** The name of this host in the lab file's `hosts:`, recorded as each VM's host (default: the URI). */
  hostName?: string;
  /** The lab's other hosts by name: where `migrate` may send this host's VMs. */
  peers?: ReadonlyArray<{ name: string; uri: string }>;
  /** Migrations from this host at the same time (default 2). */
  migrationConcurrency?: number;
}

/** One libvirt host's facts (`hostFacts`). Memory counts page cache as free, as the kernel gives it back. */
export interface LibvirtHostFacts {
  host: string;
  uri: string;
  libvirtVersion?: string;
  hypervisorVersion?: string;
  totalMemoryBytes: number;
  freeMemoryBytes: number;
  /** Free bytes where the VMs' disks go (the lab's disk directory or storage pool). */
  freeDiskBytes?: number;
  domains: number;
  running: number;
}

/** `virsh nodememstats`: "free   :  6873380 KiB" lines, in bytes. */
export function parseNodeMemory(text: string): { total: number; free: number; buffers: number; cached: number } {
  const value = (key: string) => {
    const match = new RegExp(`^\\s*${key}\\s*:\\s*(\\d+)\\s*KiB`, 'mi').exec(text);
    return match ? Number(match[1]) * 1024 : 0;
  };
  return { total: value('total'), free: value('free'), buffers: value('buffers'), cached: value('cached') };
}

/** `virsh version`: "Using library: libvirt 9.0.0", "Running hypervisor: QEMU 7.2.0". */
export function parseVersions(text: string): { libvirtVersion?: string; hypervisorVersion?: string } {
  const library = /Using library:\s*libvirt\s+(\S+)/i.exec(text)?.[1];
  const hypervisor = /Running hypervisor:\s*(.+)$/im.exec(text)?.[1]?.trim();
  return { ...(library ? { libvirtVersion: library } : {}), ...(hypervisor ? { hypervisorVersion: hypervisor } : {}) };
}

const VIRSH_STATE: Record<string, VmState> = {
  running: 'running',
  idle: 'running',
  paused: 'running',
  'in shutdown': 'running',
  'shut off': 'stopped',
  crashed: 'failed',
  pmsuspended: 'stopped',
};

/** QEMU's OUI, libvirt's own default for generated MACs. */
export const QEMU_MAC_PREFIX = '52:54:00';

export class LibvirtProvider implements Provider {
  readonly name = 'libvirt';
  /** Every VM with a seed gets it as a read-only `cidata` disk. */
  readonly seeds = true;
  /** Planned MACs: QEMU's 52:54:00 (what libvirt gives its NICs). */
  static readonly macPrefix = QEMU_MAC_PREFIX;
  readonly uri: string;
  /** What VM records name as their host: the `hosts:` entry's name, or the URI. */
  readonly host: string;
  readonly virsh: Virsh;
  readonly store: DiskStore;
  private readonly goldens = new Map<string, GoldenInfo>();
  private acceleratorChoice: AcceleratorChoice | undefined;
  private readonly adapterReader: AdapterReader;

  constructor(private readonly options: LibvirtProviderOptions) {
    this.uri = options.uri ?? DEFAULT_URI;
    this.host = options.hostName ?? this.uri;
    // Messages and records keep the URI as written; virsh gets it with the shared-connection wrapper.
    this.virsh = new Virsh(this.uri, options.virshProgram, withSshMux(this.uri));
    this.adapterReader = new AdapterReader(this.virsh, this.uri);
    this.store =
      isLocalUri(this.uri) && !options.pool
        ? new LocalStore(options.diskDir)
        : new PoolStore(this.virsh, options.pool ?? DEFAULT_POOL, options.diskDir);
  }

  /** The VM's own disk, as the libvirt host sees it. */
  diskPath(name: string): Promise<string> {
    return this.store.diskPath(name);
  }

  /**
   * A clone's frozen base, `NAME.base.qcow2` in the lab's disk directory: on this machine, as
   * qemu-img writes it (a remote libvirt refuses the copy itself). Removed with the clone.
   */
  cloneBasePath(_source: VmRecord, name: string): string {
    return pathInside(this.options.diskDir, `${name}.base.qcow2`, 'clone base');
  }

  private xmlPath(name: string): string {
    return pathInside(this.options.diskDir, `${name}.xml`, 'domain XML file');
  }

  /**
   * Removes a VM's own files and nothing else. The state file is hand-editable, so the paths it
   * claims prove nothing: labctl removes only the paths it derives itself from the VM's (validated)
   * name inside the lab's own directory or pool, and only when they carry its marks: the disk the
   * domain's labctl metadata names, or (domain already gone) a qcow2 image, the only format labctl
   * makes. A path in state or metadata that is anything else is left alone and named in a warning.
   */
  private async removeOwnFiles(vm: VmRecord, meta: LabctlMetadata | undefined, events: EventSink): Promise<string[]> {
    const left: string[] = [];
    const resources = (vm.resources ?? {}) as { disk?: unknown; consoleLog?: unknown; xml?: unknown };
    const ownDisk = await this.store.diskPath(vm.name);
    const ownConsole = await this.store.consolePath(vm.name);
    const ownXml = this.xmlPath(vm.name);
    const ownSeed = await this.store.seedPath(vm.name);
    const leftAlone = (file: unknown, why: string) => {
      left.push(`${JSON.stringify(String(file))} (${why})`);
      events({
        subject: vm.name,
        phase: 'destroy',
        status: 'warning',
        message: `left alone: ${JSON.stringify(String(file))} (${why})`,
      });
    };
    for (const [claimed, own, what] of [
      [resources.disk, ownDisk, 'disk'],
      [meta?.disk, ownDisk, 'disk'],
      [resources.consoleLog, ownConsole, 'console log'],
      [resources.xml, ownXml, 'domain XML'],
    ] as const) {
      if (claimed !== undefined && claimed !== own)
        leftAlone(
          claimed,
          `not ${vm.name}'s own ${what} ${own}; labctl removes only the files it names itself inside the lab`,
        );
    }
    if (meta ? meta.disk === ownDisk : await this.store.isOwnDisk(ownDisk)) await this.store.remove(ownDisk);
    else if (meta) leftAlone(ownDisk, `the domain's labctl metadata names ${meta.disk} as its disk`);
    await this.store.remove(ownConsole);
    await this.store.remove(ownSeed);
    // A clone's base: derived from its name, and only ever a qcow2 labctl wrote (never a golden image).
    if (this.store.kind === 'local') {
      const base = this.cloneBasePath(vm, vm.name);
      if (await this.store.isOwnDisk(base)) await this.store.remove(base);
    }
    await rm(ownXml, { force: true });
    return left;
  }

  /**
   * The DHCP reservation the VM's record names, removed only when the network still holds exactly
   * that MAC and address (the MAC is labctl's, derived from lab and name).
   */
  private async removeOwnReservation(vm: VmRecord, events: EventSink): Promise<void> {
    const claimed = (vm.resources as { reservation?: { network?: unknown; ip?: unknown } } | undefined)?.reservation;
    if (!claimed || typeof claimed.network !== 'string' || typeof claimed.ip !== 'string' || !vm.mac) return;
    if (await removeReservation(this.virsh, claimed.network, { mac: vm.mac, ip: claimed.ip }))
      events({ subject: vm.name, phase: 'destroy', status: 'done', message: `DHCP reservation ${claimed.ip} removed` });
  }

  /** KVM or TCG, decided once per provider (see accelerator.ts), with the reason. */
  async accelerator(kernel?: string): Promise<AcceleratorChoice> {
    if (!this.acceleratorChoice) {
      const forced =
        this.options.accelerator && this.options.accelerator !== 'auto' ? this.options.accelerator : undefined;
      this.acceleratorChoice = await chooseAccelerator(this.virsh, {
        ...(kernel ? { kernel } : {}),
        workDir: this.options.diskDir,
        ...(this.options.acceleratorCacheFile ? { cacheFile: this.options.acceleratorCacheFile } : {}),
        ...(forced ? { forced } : {}),
        remote: !isLocalUri(this.uri),
        console: (name) => this.store.probeConsole(name),
      });
    }
    return this.acceleratorChoice;
  }

  private async golden(path: string): Promise<GoldenInfo> {
    let info = this.goldens.get(path);
    if (!info) {
      info = await this.store.inspectGolden(path);
      this.goldens.set(path, info);
    }
    return info;
  }

  /** One VM per call (virsh defines one domain at a time), every VM on this provider's URI. */
  async preflight(plan: Plan, options: PreflightOptions = {}): Promise<PreflightResult> {
    const host: PreflightHost = {
      lab: this.options.lab,
      uri: this.uri,
      diskDir: this.options.diskDir,
      virsh: this.virsh,
      store: this.store,
      golden: (path) => this.golden(path),
      accelerator: (kernel) => this.accelerator(kernel),
      metadata: (name) => this.metadata(name),
    };
    const checks = await libvirtChecks(host, plan, options);
    if (!checks.some((check) => check.id === 'libvirt.connect' && check.level === 'error'))
      checks.push(
        ...(await addressChecks(this.virsh, plan.vms, {
          local: isLocalUri(this.uri),
          exists: async (name) => (await this.virsh.domainState(name).catch(() => undefined)) !== undefined,
        })),
      );
    return { checks, placed: placeInBatches(plan, 1) };
  }

  private async metadata(name: string): Promise<LabctlMetadata | undefined> {
    try {
      return parseLabctlMetadata(await this.virsh.text(['metadata', name, LABCTL_XMLNS]));
    } catch {
      return undefined;
    }
  }

  async create(vms: VmPlan[], events: EventSink): Promise<Array<VmResult<VmRecord>>> {
    await mkdir(this.options.diskDir, { recursive: true, mode: 0o700 });
    const choice = await this.accelerator(vms.map((vm) => libvirtOptions(vm)).find((vm) => vm.kernel)?.kernel);
    const results: Array<VmResult<VmRecord>> = [];
    for (const vm of vms) {
      try {
        results.push({ name: vm.name, ok: true, facts: await this.createOne(vm, choice.accelerator, events) });
      } catch (err) {
        events({ subject: vm.name, phase: 'define', status: 'failed', message: describeError(err) });
        results.push({ name: vm.name, ok: false, error: vmFailure(err, 'LIBVIRT_CREATE_FAILED') });
      }
    }
    return results;
  }

  private async createOne(vm: VmPlan, accelerator: Accelerator, events: EventSink): Promise<VmRecord> {
    const options = libvirtOptions(vm);
    const golden = await this.golden(vm.golden);
    const planned = await this.store.diskPath(vm.name);
    const xmlFile = this.xmlPath(vm.name);
    if (planned === golden.path)
      throw new LibvirtError('DISK_IS_GOLDEN', `refusing to use the golden image ${planned} as ${vm.name}'s own disk`);
    events({
      subject: vm.name,
      phase: 'disk',
      status: 'start',
      message: vm.clone === 'full' ? 'full copy' : 'overlay',
    });
    // A disk without a domain is left over from an interrupted run of this lab: ours to replace.
    const disk = await this.store.createDisk(vm.name, golden, vm.clone === 'full' ? 'full' : 'linked');
    let consoleLog: string;
    try {
      consoleLog = await this.store.prepareConsole(vm.name);
    } catch (err) {
      await this.store.remove(disk).catch(() => {});
      throw err;
    }
    events({
      subject: vm.name,
      phase: 'disk',
      status: 'done',
      message: `${vm.clone === 'full' ? 'a full copy of' : 'overlay on'} ${basename(vm.golden)}`,
    });
    const undo = async (...paths: string[]) => {
      for (const path of paths) await this.store.remove(path).catch(() => {});
    };
    let seed: string | undefined;
    let reservation: { network: string; mac: string; ip: string; name: string } | undefined;
    try {
      if (vm.seed) {
        seed = await this.store.writeSeed(vm.name, isoImage(vm.seed.files, SEED_LABEL));
        events({
          subject: vm.name,
          phase: 'seed',
          status: 'done',
          message: `cidata, host key pinned (${vm.seed.instanceId})`,
        });
      }
      if (vm.address?.assign === 'reservation') {
        const network = networkSource(vm.network).name;
        reservation = { network, mac: vm.mac, ip: vm.address.address, name: vm.name };
        const outcome = await addReservation(this.virsh, network, reservation);
        events({
          subject: vm.name,
          phase: 'address',
          status: 'done',
          message: `DHCP reservation ${vm.address.address} (${outcome})`,
        });
      }
    } catch (err) {
      await undo(disk, consoleLog, ...(seed ? [seed] : []));
      throw err;
    }
    const xml = domainXml({
      name: vm.name,
      domainType: accelerator === 'kvm' ? 'kvm' : 'qemu',
      memoryMiB: vm.memoryMiB,
      cpus: vm.cpus,
      firmware: options.firmware,
      disk,
      diskFormat: 'qcow2',
      mac: vm.mac,
      network: vm.network,
      ...(options.kernel ? { kernel: options.kernel } : {}),
      ...(options.initrd ? { initrd: options.initrd } : {}),
      ...(options.cmdline !== undefined ? { cmdline: options.cmdline } : {}),
      consoleLog,
      ...(seed ? { seed } : {}),
      ...(vm.seed ? { instanceId: vm.seed.instanceId } : {}),
      metadata: { lab: this.options.lab, group: vm.group, disk, golden: golden.path },
    });
    await writeFile(xmlFile, xml, { mode: 0o600 });
    events({ subject: vm.name, phase: 'define', status: 'start' });
    try {
      await this.virsh.run(['define', xmlFile]);
    } catch (err) {
      // Undo only what this step made: the overlay, console log, seed and reservation (never a domain that already existed).
      await undo(disk, consoleLog, ...(seed ? [seed] : []));
      if (reservation) await removeReservation(this.virsh, reservation.network, reservation).catch(() => {});
      throw err;
    }
    events({ subject: vm.name, phase: 'define', status: 'done', message: accelerator === 'kvm' ? 'KVM' : 'TCG' });
    return {
      name: vm.name,
      group: vm.group,
      provider: this.name,
      host: this.host,
      mac: vm.mac,
      addresses: [],
      ssh: plannedSsh(vm.ssh),
      state: 'created',
      ...(vm.vars ? { vars: vm.vars as VmRecord['vars'] } : {}),
      resources: {
        disk,
        consoleLog,
        xml: xmlFile,
        golden: golden.path,
        network: vm.network,
        accelerator,
        clone: vm.clone,
        memoryMiB: vm.memoryMiB,
        ...(seed ? { seed } : {}),
        ...(reservation ? { reservation } : {}),
      },
    };
  }

  async start(vms: VmRecord[], events: EventSink): Promise<Array<VmResult<StartFacts>>> {
    const settled = await mapLimit(vms, 4, async (vm): Promise<StartFacts> => {
      const state = await this.virsh.domainState(vm.name);
      if (state === undefined)
        throw new LibvirtError('DOMAIN_MISSING', `domain ${vm.name} does not exist at ${this.uri}`);
      if (state === 'running') {
        events({ subject: vm.name, phase: 'start', status: 'skipped', message: 'already running' });
        return { state: 'running', started: false };
      }
      events({ subject: vm.name, phase: 'start', status: 'start' });
      await this.virsh.run(['start', vm.name], { timeoutMs: 120_000 });
      events({ subject: vm.name, phase: 'start', status: 'done' });
      return { state: 'running', started: true };
    });
    return settled.map((result, i): VmResult<StartFacts> => {
      const name = vms[i]!.name;
      if (result.ok) return { name, ok: true, facts: result.value };
      events({ subject: name, phase: 'start', status: 'failed', message: describeError(result.error) });
      return { name, ok: false, error: vmFailure(result.error, 'LIBVIRT_START_FAILED') };
    });
  }

  /** Guest shutdowns run side by side: each waits for its guest, not for the others. */
  async stop(vms: VmRecord[], options: StopOptions, events: EventSink): Promise<Array<VmResult<StopFacts>>> {
    return this.eachDomain(
      vms,
      8,
      'stop',
      'LIBVIRT_STOP_FAILED',
      (vm) => stopDomain(this.virsh, vm, options, events),
      events,
    );
  }

  /** Snapshots (see day2.ts): internal, inside the VM's own overlay; the golden image is never written. */
  async snapshot(
    vms: VmRecord[],
    request: SnapshotRequest,
    events: EventSink,
  ): Promise<Array<VmResult<SnapshotFacts>>> {
    return snapshotDomains({ virsh: this.virsh, store: this.store }, vms, request, events);
  }

  /** qemu-img on this machine (a local libvirt): see export-disk.ts. */
  async exportDisk(vm: VmRecord, request: DiskExportRequest, events: EventSink): Promise<VmResult<DiskExportFacts>> {
    const [result] = await this.eachDomain(
      [vm],
      1,
      'copy',
      'LIBVIRT_EXPORT_FAILED',
      (one) => exportDomainDisk({ virsh: this.virsh, store: this.store }, one, request, events),
      events,
    );
    return result!;
  }

  /** A stopped VM as a bundle or an OVA (see bundle.ts). */
  async exportVm(
    vm: VmRecord,
    request: { dir: string; format: 'bundle' | 'ova' },
    events: EventSink,
  ): Promise<VmResult<VmExportFacts>> {
    const [result] = await this.eachDomain(
      [vm],
      1,
      'export',
      'LIBVIRT_EXPORT_FAILED',
      (one) => exportBundle({ lab: this.options.lab, virsh: this.virsh, store: this.store }, one, request, events),
      events,
    );
    return result!;
  }

  /**
   * A VM of this lab from a verified bundle: its disk and seed copied into the lab's directory, a
   * domain defined from the bundle's description (with this host's accelerator), left stopped. Its
   * identity (name, MAC, seed, host keys) is the bundle's.
   */
  async importVm(
    bundle: { dir: string; description: VmBundleDescription },
    events: EventSink,
  ): Promise<VmResult<VmRecord>> {
    const d = bundle.description;
    const [result] = await this.eachDomain(
      [{ name: d.name } as VmRecord],
      1,
      'import',
      'LIBVIRT_IMPORT_FAILED',
      async () => {
        if (this.store.kind !== 'local')
          throw new LibvirtError(
            'IMPORT_REMOTE_HOST',
            `importing into the remote libvirt host ${this.uri} is not built yet`,
          );
        if ((await this.virsh.domainState(d.name)) !== undefined)
          throw new LibvirtError('DOMAIN_EXISTS', `a domain named ${d.name} already exists at ${this.uri}`, {
            hint: 'Destroy or rename it first; labctl never replaces a domain it did not make for this lab.',
          });
        await mkdir(this.options.diskDir, { recursive: true, mode: 0o700 });
        const kernel = typeof d.options.kernel === 'string' ? d.options.kernel : undefined;
        const choice = await this.accelerator(kernel);
        const disk = await this.store.diskPath(d.name);
        const source = join(bundle.dir, d.files.disk);
        events({ subject: d.name, phase: 'disk', status: 'start', message: `copying ${source}` });
        // A disk without a domain is left over from an interrupted import of this lab: ours to replace.
        await this.store.remove(disk);
        await copyFile(source, disk);
        await chmod(disk, 0o600);
        let seed: string | undefined;
        if (d.files.seed) {
          seed = await this.store.seedPath(d.name);
          await this.store.remove(seed);
          await copyFile(join(bundle.dir, d.files.seed), seed);
          await chmod(seed, 0o600);
        }
        const consoleLog = await this.store.prepareConsole(d.name);
        const xmlFile = this.xmlPath(d.name);
        const firmware = d.options.firmware === 'uefi' ? 'uefi' : 'bios';
        await writeFile(
          xmlFile,
          domainXml({
            name: d.name,
            domainType: choice.accelerator === 'kvm' ? 'kvm' : 'qemu',
            memoryMiB: d.memoryMiB,
            cpus: d.cpus,
            firmware,
            disk,
            diskFormat: 'qcow2',
            mac: d.mac,
            network: d.network,
            ...(kernel ? { kernel } : {}),
            ...(typeof d.options.initrd === 'string' ? { initrd: d.options.initrd } : {}),
            ...(typeof d.options.cmdline === 'string' ? { cmdline: d.options.cmdline } : {}),
            consoleLog,
            ...(seed ? { seed } : {}),
            ...(d.instanceId ? { instanceId: d.instanceId } : {}),
            // The bundle's disk is where this one came from: recorded as its golden, never written.
            metadata: { lab: this.options.lab, group: d.group, disk, golden: source },
          }),
          { mode: 0o600 },
        );
        try {
          await this.virsh.run(['define', xmlFile]);
        } catch (err) {
          for (const path of [disk, consoleLog, ...(seed ? [seed] : [])]) await this.store.remove(path).catch(() => {});
          throw err;
        }
        events({ subject: d.name, phase: 'import', status: 'done', message: 'defined, stopped' });
        const record: VmRecord = {
          name: d.name,
          group: d.group,
          provider: this.name,
          host: this.host,
          mac: d.mac,
          addresses: [],
          ssh: { ...d.ssh, hostKeys: d.ssh.hostKeys },
          state: 'created',
          ...(d.instanceId ? { instanceId: d.instanceId } : {}),
          ...(d.assignedAddress ? { assignedAddress: d.assignedAddress } : {}),
          ...(d.assign ? { assign: d.assign } : {}),
          ...(d.vars ? { vars: d.vars as VmRecord['vars'] } : {}),
          resources: {
            disk,
            consoleLog,
            xml: xmlFile,
            golden: source,
            network: d.network,
            accelerator: choice.accelerator,
            clone: 'full',
            memoryMiB: d.memoryMiB,
            ...(seed ? { seed } : {}),
          },
        };
        return record;
      },
      events,
    );
    return result!;
  }

  /** One operation per domain, `limit` at a time, as one result per VM (virsh acts on one domain per call). */
  private async eachDomain<F>(
    vms: VmRecord[],
    limit: number,
    phase: string,
    code: string,
    fn: (vm: VmRecord) => Promise<F>,
    events: EventSink,
  ): Promise<Array<VmResult<F>>> {
    const settled = await mapLimit(vms, limit, fn);
    return settled.map((result, i): VmResult<F> => {
      const name = vms[i]!.name;
      if (result.ok) return { name, ok: true, facts: result.value };
      events({ subject: name, phase, status: 'failed', message: describeError(result.error) });
      return { name, ok: false, error: vmFailure(result.error, code) };
    });
  }

  /** Addresses as libvirt sees them (see adapters.ts). */
  adapters(vms: VmRecord[]): Promise<AdapterReport[]> {
    return this.adapterReader.read(vms);
  }

  /**
   * This host as `labctl hosts` and placement see it: versions, memory, free space of the disk
   * store, and how many domains it runs (any lab). Throws the connect error when libvirt is down.
   */
  async hostFacts(): Promise<LibvirtHostFacts> {
    let version: string;
    let memory: string;
    let domains: Map<string, string>;
    try {
      [version, memory, domains] = await Promise.all([
        this.virsh.text(['version']),
        this.virsh.text(['nodememstats']),
        this.virsh.domainStates(),
      ]);
    } catch (err) {
      throw connectError(this.uri, err);
    }
    const stats = parseNodeMemory(memory);
    const freeDiskBytes = await this.store.freeBytes().catch(() => undefined);
    return {
      host: this.host,
      uri: this.uri,
      ...parseVersions(version),
      totalMemoryBytes: stats.total,
      freeMemoryBytes: stats.free + stats.buffers + stats.cached,
      ...(freeDiskBytes !== undefined ? { freeDiskBytes } : {}),
      domains: domains.size,
      running: [...domains.values()].filter((state) => state === 'running').length,
    };
  }

  async hostReport(): Promise<HostReport> {
    try {
      const facts = await this.hostFacts();
      return {
        name: this.host,
        connection: this.uri,
        reachable: true,
        versions: {
          ...(facts.libvirtVersion ? { libvirt: facts.libvirtVersion } : {}),
          ...(facts.hypervisorVersion ? { hypervisor: facts.hypervisorVersion } : {}),
        },
        totalMemoryBytes: facts.totalMemoryBytes,
        freeMemoryBytes: facts.freeMemoryBytes,
        ...(facts.freeDiskBytes !== undefined ? { freeDiskBytes: facts.freeDiskBytes } : {}),
        vms: facts.domains,
        running: facts.running,
      };
    } catch (err) {
      const hint = (err as { hint?: string }).hint;
      return {
        name: this.host,
        connection: this.uri,
        reachable: false,
        error: describeError(err),
        ...(hint ? { hint } : {}),
      };
    }
  }

  /**
   * Moves domains to another host of the lab with `virsh migrate --persistent --undefinesource`:
   * live when the VM runs (memory copied while it keeps running), offline (the definition only)
   * when it is stopped. The disks stay where they are: both hosts must see them at the same path.
   */
  async migrate(vms: VmRecord[], request: MigrateRequest, events: EventSink): Promise<Array<VmResult<MigrateFacts>>> {
    const peer = this.options.peers?.find((host) => host.name === request.to);
    if (!peer)
      return vms.map((vm) =>
        failed(vm.name, {
          code: 'HOST_UNKNOWN',
          message: `${request.to} is not a host of this lab`,
          hint: `Hosts: ${(this.options.peers ?? []).map((host) => host.name).join(', ') || 'none (add hosts: to labctl.yaml)'}.`,
        }),
      );
    const outcomes = await mapLimit(vms, this.options.migrationConcurrency ?? 2, async (vm) => {
      if (peer.name === this.host) return alreadyThere(this.virsh, vm.name, this.host);
      if (!request.copyStorage)
        return migrateDomain(this.virsh, vm.name, { from: this.host, to: peer, request, events });
      return this.migrateWithStorage(vm, peer, request, events);
    });
    return outcomes.map((outcome, index) =>
      outcome.ok ? outcome.value : failed(vms[index]!.name, vmFailure(outcome.error, 'MIGRATE_FAILED')),
    );
  }

  /**
   * A move to a host that does not share the disks (`--copy-storage`): QEMU copies the VM's disk
   * while it runs (`--copy-storage-all`, into a volume the destination's libvirt makes in the pool of
   * the same name and path); labctl first copies what QEMU does not (the read-only seed image) and
   * makes the console log there, and afterwards removes the VM's own volumes here. Both hosts keep
   * the disks in a storage pool (`pool:` of the host) at the same path.
   */
  private async migrateWithStorage(
    vm: VmRecord,
    peer: { name: string; uri: string },
    request: MigrateRequest,
    events: EventSink,
  ): Promise<VmResult<MigrateFacts>> {
    if (!(this.store instanceof PoolStore))
      throw new LibvirtError(
        'COPY_STORAGE_NEEDS_POOL',
        `--copy-storage moves disks between storage pools, and ${this.host} keeps ${vm.name}'s disk in a directory`,
        {
          hint: 'Give both hosts a pool: in hosts: (the same pool name and path on both), or put the disks on storage both hosts share.',
          exitCode: 2,
        },
      );
    const there = new PoolStore(new Virsh(peer.uri, this.options.virshProgram), this.store.pool, this.options.diskDir);
    const [herePath, therePath] = await Promise.all([this.store.location(), there.location()]);
    if (herePath !== therePath)
      throw new LibvirtError(
        'COPY_STORAGE_PATHS',
        `storage pool ${this.store.pool} is at ${herePath} on ${this.host} and at ${therePath} on ${peer.name}`,
        {
          hint: 'QEMU copies a disk to the same path on the destination: give the pool the same target path on both hosts.',
          exitCode: 2,
        },
      );
    const resources = (vm.resources ?? {}) as { seed?: unknown; disk?: unknown; consoleLog?: unknown };
    const own = [resources.disk, resources.seed, resources.consoleLog].filter(
      (path): path is string => typeof path === 'string' && posix.dirname(path) === herePath,
    );
    const made: string[] = [];
    try {
      if (typeof resources.seed === 'string')
        made.push(await there.writeSeed(vm.name, await this.store.readSeed(vm.name)));
      made.push(await there.prepareConsole(vm.name));
      const result = await migrateDomain(this.virsh, vm.name, { from: this.host, to: peer, request, events });
      // The domain runs there from its own copies now: the volumes it left here are the VM's own.
      if (result.ok && result.facts.moved) for (const path of own) await this.store.remove(path).catch(() => {});
      return result;
    } catch (err) {
      for (const path of made) await there.remove(path).catch(() => {});
      throw err;
    }
  }

  async list(lab: string): Promise<VmRecord[]> {
    let out: string;
    try {
      out = await this.virsh.text(['list', '--all']);
    } catch (err) {
      throw connectError(this.uri, err);
    }
    const domains = [...parseDomainList(out)].map(([name, state]) => ({ name, state }));
    const found = await mapLimit(domains, 8, async (domain) => ({ domain, meta: await this.metadata(domain.name) }));
    const records: VmRecord[] = [];
    for (const result of found) {
      if (!result.ok || !result.value.meta || result.value.meta.lab !== lab) continue;
      const { domain, meta } = result.value;
      records.push({
        name: domain.name,
        group: meta.group,
        provider: this.name,
        host: this.host,
        addresses: [],
        ssh: { hostKeys: [] },
        state: VIRSH_STATE[domain.state] ?? 'unknown',
        resources: {
          disk: meta.disk,
          golden: meta.golden,
          consoleLog: await this.store.consolePath(domain.name),
          xml: this.xmlPath(domain.name),
        },
      });
    }
    return records;
  }

  /** Several domains at once (stopping a busy VM can take seconds while libvirt waits for qemu). */
  async destroy(vms: VmRecord[], options: DestroyOptions, events: EventSink): Promise<Array<VmResult<DestroyFacts>>> {
    const settled = await mapLimit(vms, 4, (vm) => this.destroyOne(vm, options, events));
    return settled.map((result, i): VmResult<DestroyFacts> => {
      const name = vms[i]!.name;
      if (result.ok) return { name, ok: true, facts: result.value };
      events({ subject: name, phase: 'destroy', status: 'failed', message: describeError(result.error) });
      return { name, ok: false, error: vmFailure(result.error, 'LIBVIRT_DESTROY_FAILED') };
    });
  }

  private async destroyOne(vm: VmRecord, options: DestroyOptions, events: EventSink): Promise<DestroyFacts> {
    events({ subject: vm.name, phase: 'destroy', status: 'start' });
    const meta = await this.metadata(vm.name);
    const exists = (await this.virsh.domainState(vm.name)) !== undefined;
    if (exists && meta?.lab !== this.options.lab) {
      throw new LibvirtError(
        'NOT_OURS',
        `domain ${vm.name} was not made by labctl for lab "${this.options.lab}"; left alone`,
      );
    }
    if (exists) {
      await this.virsh.run(['destroy', vm.name], { timeoutMs: 60_000 }).catch((err) => {
        if (!isNotRunning(err) && !isNoDomain(err)) throw err;
      });
      // Its snapshots are internal (inside the overlay removed below): only their metadata goes here.
      await this.virsh
        .run(['undefine', '--nvram', '--snapshots-metadata', vm.name], { timeoutMs: 60_000 })
        .catch(async (err) => {
          if (isNoDomain(err)) return;
          // Domains without NVRAM on older libvirt refuse --nvram.
          await this.virsh.run(['undefine', '--snapshots-metadata', vm.name], { timeoutMs: 60_000 }).catch((again) => {
            if (!isNoDomain(again)) throw again;
          });
        });
    }
    const leftAlone = options.keepDisks ? [] : await this.removeOwnFiles(vm, meta, events);
    await this.removeOwnReservation(vm, events);
    events({
      subject: vm.name,
      phase: 'destroy',
      status: 'done',
      message: exists ? undefined : 'domain was already gone',
    });
    return { absent: !exists, leftAlone };
  }
}
