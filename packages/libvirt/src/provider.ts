import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Check } from '@labctl/core/checks';
import { mapLimit } from '@labctl/core/concurrency';
import { describeError, LabctlError } from '@labctl/core/errors';
import type { EventSink } from '@labctl/core/events';
import { pathInside } from '@labctl/core/names';
import { QEMU_MAC_PREFIX } from '@labctl/core/plan';
import { type AdapterReport, type DestroyFacts, type DestroyOptions, type Plan, type PreflightOptions, type PreflightResult, placeInBatches, type Provider, type StartFacts, type VmPlan, type VmResult, vmFailure } from '@labctl/core/provider';
import type { VmRecord, VmState } from '@labctl/core/state';
import { type Accelerator, type AcceleratorChoice, chooseAccelerator } from './accelerator.js';
import type { GoldenInfo } from './disks.js';
import { run } from './exec.js';
import { parseDhcpLeases, parseDomainList, parseDomifaddr, parseLeaseSeconds, parseNeighbours } from './parse.js';
import { type DiskStore, LocalStore, PoolStore } from './storage.js';
import { isNoDomain, isNotRunning, Virsh } from './virsh.js';
import { domainXml, LABCTL_XMLNS, type LabctlMetadata, networkSource, parseLabctlMetadata } from './xml.js';

/**
 * The KVM/libvirt provider: `virsh` with generated domain XML, a qcow2 overlay per VM on the golden
 * image, identity through the kernel command line and the SMBIOS serial, labctl's own `<metadata>`
 * in every domain so `list` finds exactly this lab's VMs, even after a crash.
 */
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
}

export class LibvirtError extends LabctlError {}

/** Local URIs: the neighbour table of this machine is the hypervisor's (the bridge lives here). */
export function isLocalUri(uri: string): boolean {
  return /^[a-z0-9+]+:\/\/\/(system|session)/.test(uri) && !uri.includes('+ssh') && !uri.includes('+tcp') && !uri.includes('+tls');
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

export class LibvirtProvider implements Provider {
  readonly name = 'libvirt';
  /** Planned MACs: QEMU's 52:54:00 (what libvirt gives its NICs). */
  static readonly macPrefix = QEMU_MAC_PREFIX;
  readonly uri: string;
  readonly virsh: Virsh;
  readonly store: DiskStore;
  private readonly goldens = new Map<string, GoldenInfo>();
  private acceleratorChoice: AcceleratorChoice | undefined;
  private readonly agentUnavailable = new Set<string>();

  constructor(private readonly options: LibvirtProviderOptions) {
    this.uri = options.uri ?? DEFAULT_URI;
    this.virsh = new Virsh(this.uri, options.virshProgram);
    this.store =
      isLocalUri(this.uri) && !options.pool
        ? new LocalStore(options.diskDir)
        : new PoolStore(this.virsh, options.pool ?? DEFAULT_POOL, options.diskDir);
  }

  /** The VM's own disk, as the libvirt host sees it. */
  diskPath(name: string): Promise<string> {
    return this.store.diskPath(name);
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
    const leftAlone = (file: unknown, why: string) => {
      left.push(`${JSON.stringify(String(file))} (${why})`);
      events({ subject: vm.name, phase: 'destroy', status: 'warning', message: `left alone: ${JSON.stringify(String(file))} (${why})` });
    };
    for (const [claimed, own, what] of [
      [resources.disk, ownDisk, 'disk'],
      [meta?.disk, ownDisk, 'disk'],
      [resources.consoleLog, ownConsole, 'console log'],
      [resources.xml, ownXml, 'domain XML'],
    ] as const) {
      if (claimed !== undefined && claimed !== own) leftAlone(claimed, `not ${vm.name}'s own ${what} ${own}; labctl removes only the files it names itself inside the lab`);
    }
    if (meta ? meta.disk === ownDisk : await this.store.isOwnDisk(ownDisk)) await this.store.remove(ownDisk);
    else if (meta) leftAlone(ownDisk, `the domain's labctl metadata names ${meta.disk} as its disk`);
    await this.store.remove(ownConsole);
    await rm(ownXml, { force: true });
    return left;
  }

  /** KVM or TCG, decided once per provider (see accelerator.ts), with the reason. */
  async accelerator(kernel?: string): Promise<AcceleratorChoice> {
    if (!this.acceleratorChoice) {
      const forced = this.options.accelerator && this.options.accelerator !== 'auto' ? this.options.accelerator : undefined;
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
    return { checks: await this.checks(plan, options), placed: placeInBatches(plan, 1) };
  }

  private async checks(plan: Plan, options: PreflightOptions): Promise<Check[]> {
    const checks: Check[] = [];
    try {
      await this.virsh.run(['uri'], { timeoutMs: 30_000 });
      checks.push({ id: 'libvirt.connect', level: 'ok', message: `connected to ${this.uri}` });
    } catch (err) {
      checks.push({
        id: 'libvirt.connect',
        level: 'error',
        message: `cannot connect to libvirt at ${this.uri}: ${describeError(err)}`,
        hint: connectHint(this.uri, err),
      });
      return checks;
    }
    checks.push(...remoteUriChecks(this.uri));
    if (!options.dryRun) await mkdir(this.options.diskDir, { recursive: true, mode: 0o700 });
    checks.push(...(await this.store.preflight(options)));

    for (const golden of new Set(plan.vms.map((vm) => vm.golden))) {
      try {
        const info = await this.golden(golden);
        checks.push({ id: 'golden.readable', level: 'ok', subject: golden, message: `golden image ${golden} (${info.format}, ${info.virtualSize} bytes)` });
        if (info.writable) {
          checks.push({
            id: 'golden.readonly',
            level: 'warning',
            subject: golden,
            message: `golden image ${golden} is writable on disk; VMs only ever read it (qcow2 overlays), but other tools could change it under them`,
            hint: `chmod a-w ${golden}`,
          });
        }
      } catch (err) {
        checks.push({ id: 'golden.readable', level: 'error', subject: golden, message: describeError(err), hint: (err as LabctlError).hint });
      }
    }
    for (const file of new Set(plan.vms.flatMap((vm) => [vm.kernel, vm.initrd].filter((f): f is string => Boolean(f))))) {
      const check = await this.store.checkBootFile(file);
      if (check) checks.push(check);
    }
    for (const network of new Set(plan.vms.map((vm) => vm.network))) checks.push(await this.checkNetwork(network));
    if (plan.vms.some((vm) => vm.firmware === 'uefi')) checks.push(await this.checkUefi());
    checks.push(...(await this.checkNames(plan)));

    // The accelerator probe boots a VM: only worth it when nothing else has refused the plan, and
    // never in a dry run (which changes nothing).
    if (checks.some((check) => check.level === 'error') || options.dryRun) return checks;
    const choice = await this.accelerator(plan.vms.find((vm) => vm.kernel)?.kernel);
    checks.push({
      id: 'libvirt.accelerator',
      level: 'ok',
      message: choice.accelerator === 'kvm' ? `accelerator: KVM (${choice.reason})` : `accelerator: TCG, software emulation (${choice.reason})`,
    });
    return checks;
  }

  private async checkNetwork(network: string): Promise<Check> {
    const source = networkSource(network);
    if (source.type === 'bridge') {
      if (!isLocalUri(this.uri) || existsSync(`/sys/class/net/${basename(source.name)}`)) {
        return { id: 'network.exists', level: 'ok', subject: network, message: `bridge ${source.name}` };
      }
      return { id: 'network.exists', level: 'error', subject: network, message: `bridge ${source.name} does not exist on this host`, hint: 'ip link show type bridge' };
    }
    try {
      const info = await this.virsh.text(['net-info', source.name]);
      if (!/^Active:\s+yes/m.test(info)) {
        return { id: 'network.exists', level: 'error', subject: network, message: `libvirt network ${source.name} is not active`, hint: `virsh -c ${this.uri} net-start ${source.name}` };
      }
      return { id: 'network.exists', level: 'ok', subject: network, message: `libvirt network ${source.name} is active` };
    } catch {
      let known = '';
      try {
        known = (await this.virsh.text(['net-list', '--all', '--name'])).split('\n').filter(Boolean).join(', ');
      } catch {}
      return {
        id: 'network.exists',
        level: 'error',
        subject: network,
        message: `libvirt network "${source.name}" does not exist at ${this.uri}`,
        hint: `Networks there: ${known || 'none'}. Use --network NAME, or bridge:NAME for a host bridge.`,
      };
    }
  }

  private async checkUefi(): Promise<Check> {
    try {
      const caps = await this.virsh.text(['domcapabilities', '--machine', 'q35', '--arch', 'x86_64']);
      if (/<value>efi<\/value>/.test(caps) || /OVMF|edk2/i.test(caps)) return { id: 'firmware.uefi', level: 'ok', message: 'UEFI firmware (OVMF) available' };
    } catch {}
    return { id: 'firmware.uefi', level: 'error', message: 'firmware: uefi asked for, but libvirt has no UEFI firmware', hint: 'Install ovmf (Debian) or use firmware: bios.' };
  }

  private async checkNames(plan: Plan): Promise<Check[]> {
    const existing = new Set(await this.virsh.domainNames());
    const checks: Check[] = [];
    for (const vm of plan.vms) {
      if (!existing.has(vm.name)) continue;
      const meta = await this.metadata(vm.name);
      if (meta?.lab === plan.lab) continue;
      checks.push({
        id: 'name.collision',
        level: 'error',
        subject: vm.name,
        message: meta
          ? `a domain named ${vm.name} already exists and belongs to labctl lab "${meta.lab}"`
          : `a domain named ${vm.name} already exists and was not made by labctl`,
        hint: 'labctl never touches domains it did not make. Choose other names (--name PATTERN, --group) or remove that domain yourself.',
      });
    }
    return checks;
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
    const choice = await this.accelerator(vms.find((vm) => vm.kernel)?.kernel);
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
    const golden = await this.golden(vm.golden);
    const planned = await this.store.diskPath(vm.name);
    const xmlFile = this.xmlPath(vm.name);
    if (planned === golden.path) throw new LibvirtError('DISK_IS_GOLDEN', `refusing to use the golden image ${planned} as ${vm.name}'s own disk`);
    events({ subject: vm.name, phase: 'disk', status: 'start', message: vm.clone === 'full' ? 'full copy' : 'overlay' });
    // A disk without a domain is left over from an interrupted run of this lab: ours to replace.
    const disk = await this.store.createDisk(vm.name, golden, vm.clone === 'full' ? 'full' : 'linked');
    let consoleLog: string;
    try {
      consoleLog = await this.store.prepareConsole(vm.name);
    } catch (err) {
      await this.store.remove(disk).catch(() => {});
      throw err;
    }
    events({ subject: vm.name, phase: 'disk', status: 'done', message: disk });
    const xml = domainXml({
      name: vm.name,
      domainType: accelerator === 'kvm' ? 'kvm' : 'qemu',
      memoryMiB: vm.memoryMiB,
      cpus: vm.cpus,
      firmware: vm.firmware,
      disk,
      diskFormat: 'qcow2',
      mac: vm.mac,
      network: vm.network,
      ...(vm.kernel ? { kernel: vm.kernel } : {}),
      ...(vm.initrd ? { initrd: vm.initrd } : {}),
      ...(vm.cmdline !== undefined ? { cmdline: vm.cmdline } : {}),
      consoleLog,
      metadata: { lab: this.options.lab, group: vm.group, disk, golden: golden.path },
    });
    await writeFile(xmlFile, xml, { mode: 0o600 });
    events({ subject: vm.name, phase: 'define', status: 'start' });
    try {
      await this.virsh.run(['define', xmlFile]);
    } catch (err) {
      // Undo only what this step made: the overlay and console log (never a domain that already existed).
      await this.store.remove(disk).catch(() => {});
      await this.store.remove(consoleLog).catch(() => {});
      throw err;
    }
    events({ subject: vm.name, phase: 'define', status: 'done', message: accelerator === 'kvm' ? 'KVM' : 'TCG' });
    return {
      name: vm.name,
      group: vm.group,
      provider: this.name,
      host: this.uri,
      mac: vm.mac,
      addresses: [],
      ssh: { user: vm.ssh.user, port: vm.ssh.port, hostKeys: [], ...(vm.ssh.keyFile ? { keyFile: vm.ssh.keyFile } : {}) },
      state: 'created',
      ...(vm.vars ? { vars: vm.vars as VmRecord['vars'] } : {}),
      resources: { disk, consoleLog, xml: xmlFile, golden: golden.path, network: vm.network, accelerator, clone: vm.clone },
    };
  }

  async start(vms: VmRecord[], events: EventSink): Promise<Array<VmResult<StartFacts>>> {
    const settled = await mapLimit(vms, 4, async (vm): Promise<StartFacts> => {
      const state = await this.virsh.domainState(vm.name);
      if (state === undefined) throw new LibvirtError('DOMAIN_MISSING', `domain ${vm.name} does not exist at ${this.uri}`);
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

  /**
   * Addresses as libvirt sees them: DHCP leases of the VM's network (with their age, so stale
   * leases can be told apart), else the guest agent, else this host's neighbour table.
   */
  async adapters(vms: VmRecord[]): Promise<AdapterReport[]> {
    const reports: AdapterReport[] = [];
    const leasesByNetwork = new Map<string, { leases: ReturnType<typeof parseDhcpLeases>; leaseSeconds: number } | undefined>();
    let neighbours: ReturnType<typeof parseNeighbours> | undefined;
    // One `virsh list` per poll round, not one domstate per VM: discovery polls while the guests boot
    // and every virsh start takes CPU from them (over qemu+ssh, also an SSH connection).
    const running = new Map<string, string | undefined>();
    // A libvirt that cannot be reached is an error, never "no domain": the VMs may be fine.
    let all: Map<string, string>;
    try {
      all = await this.virsh.domainStates();
    } catch (err) {
      throw connectError(this.uri, err);
    }
    for (const vm of vms) running.set(vm.name, all.get(vm.name));
    for (const vm of vms) {
      const state = running.get(vm.name);
      if (state === undefined) {
        reports.push({ vm: vm.name, addresses: [], source: 'libvirt', problem: `no domain ${vm.name} at ${this.uri}` });
        continue;
      }
      if (state !== 'running') {
        reports.push({ vm: vm.name, addresses: [], source: 'libvirt', problem: `domain is ${state}` });
        continue;
      }
      const mac = vm.mac?.toLowerCase();
      const network = String((vm.resources as { network?: string } | undefined)?.network ?? '');
      const source = network ? networkSource(network) : undefined;
      if (source?.type === 'network') {
        if (!leasesByNetwork.has(source.name)) leasesByNetwork.set(source.name, await this.networkLeases(source.name));
        const net = leasesByNetwork.get(source.name);
        const mine = net?.leases.filter((lease) => lease.mac === mac) ?? [];
        if (mine.length > 0) {
          for (const lease of mine) {
            const obtainedAt = Number.isFinite(net!.leaseSeconds) ? lease.expiresAt - net!.leaseSeconds * 1000 : undefined;
            reports.push({ vm: vm.name, mac: lease.mac, addresses: [lease.address], source: 'lease', ...(obtainedAt !== undefined ? { obtainedAt } : {}) });
          }
          continue;
        }
      }
      if (!this.agentUnavailable.has(vm.name)) {
        try {
          const agent = parseDomifaddr(await this.virsh.text(['domifaddr', vm.name, '--source', 'agent'], { timeoutMs: 10_000 }));
          const adapter = agent.find((a) => a.mac === mac);
          if (adapter) {
            reports.push({ vm: vm.name, adapter: adapter.adapter, mac: adapter.mac, addresses: adapter.addresses, source: 'agent' });
            continue;
          }
        } catch {
          // No guest agent in this guest: do not ask again on every poll.
          this.agentUnavailable.add(vm.name);
        }
      }
      if (isLocalUri(this.uri)) {
        neighbours ??= await run('ip', ['neigh', 'show'], { timeoutMs: 10_000 })
          .then((r) => parseNeighbours(r.stdout))
          .catch(() => []);
        const seen = neighbours.filter((entry) => entry.mac === mac);
        if (seen.length > 0) {
          reports.push({ vm: vm.name, mac, addresses: seen.map((entry) => entry.address), source: 'arp' });
          continue;
        }
      }
      reports.push({ vm: vm.name, mac, addresses: [], source: 'lease' });
    }
    return reports;
  }

  private async networkLeases(network: string) {
    try {
      const [leases, xml] = await Promise.all([this.virsh.text(['net-dhcp-leases', network]), this.virsh.text(['net-dumpxml', network])]);
      return { leases: parseDhcpLeases(leases), leaseSeconds: parseLeaseSeconds(xml) };
    } catch {
      return undefined;
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
        host: this.uri,
        addresses: [],
        ssh: { hostKeys: [] },
        state: VIRSH_STATE[domain.state] ?? 'unknown',
        resources: { disk: meta.disk, golden: meta.golden, consoleLog: await this.store.consolePath(domain.name), xml: this.xmlPath(domain.name) },
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
      throw new LibvirtError('NOT_OURS', `domain ${vm.name} was not made by labctl for lab "${this.options.lab}"; left alone`);
    }
    if (exists) {
      await this.virsh.run(['destroy', vm.name], { timeoutMs: 60_000 }).catch((err) => {
        if (!isNotRunning(err) && !isNoDomain(err)) throw err;
      });
      await this.virsh.run(['undefine', '--nvram', vm.name], { timeoutMs: 60_000 }).catch(async (err) => {
        if (isNoDomain(err)) return;
        // Domains without NVRAM on older libvirt refuse --nvram.
        await this.virsh.run(['undefine', vm.name], { timeoutMs: 60_000 }).catch((again) => {
          if (!isNoDomain(again)) throw again;
        });
      });
    }
    const leftAlone = options.keepDisks ? [] : await this.removeOwnFiles(vm, meta, events);
    events({ subject: vm.name, phase: 'destroy', status: 'done', message: exists ? undefined : 'domain was already gone' });
    return { absent: !exists, leftAlone };
  }
}

/**
 * What a remote URI says about host-key checking. labctl passes URIs to virsh as given and never adds
 * `no_verify`; these checks only say what the URI the user wrote will do.
 */
export function remoteUriChecks(uri: string): Check[] {
  if (isLocalUri(uri)) return [];
  const query = new URLSearchParams(/\?(.*)$/.exec(uri)?.[1] ?? '');
  const checks: Check[] = [];
  if (/^(1|yes|true)$/i.test(query.get('no_verify') ?? '')) {
    checks.push({
      id: 'libvirt.hostkey',
      level: 'warning',
      message: `${uri.replace(/\?.*$/, '')}: no_verify is set in the URI, so the libvirt host's SSH key is not checked`,
      hint: 'Remove no_verify from the URI and pin the host key (~/.ssh/known_hosts for qemu+ssh, known_hosts= for qemu+libssh).',
    });
  }
  const transport = /^[a-z0-9]+\+([a-z0-9]+):/i.exec(uri)?.[1]?.toLowerCase();
  if (transport === 'ssh' && query.has('known_hosts')) {
    checks.push({
      id: 'libvirt.hostkey',
      level: 'warning',
      message: 'known_hosts= in a qemu+ssh:// URI is not used: the ssh transport runs OpenSSH, which checks ~/.ssh/known_hosts (and ssh_config)',
      hint: 'Pin the host key in ~/.ssh/known_hosts, or use qemu+libssh://... where known_hosts= is honoured.',
    });
  }
  return checks;
}

const CONNECT_HINT = 'Is libvirtd running (and virtlogd)? Check the URI (--uri, uri: in labctl.yaml) and your rights (group libvirt).';

function connectHint(uri: string, err: unknown): string {
  const text = `${(err as Error)?.message ?? ''} ${JSON.stringify((err as { details?: unknown })?.details ?? '')}`;
  if (/host key verification failed|HOST IDENTIFICATION HAS CHANGED|HOST KEY VERIFICATION FAILED|was not accepted/i.test(text)) {
    return /^[a-z0-9]+\+libssh2?:/i.test(uri)
      ? "The libvirt host's SSH key is not the one pinned in the URI's known_hosts= file. Check the host's key (ssh-keyscan, compare fingerprints) before you change that file."
      : "The libvirt host's SSH key is not the one pinned in ~/.ssh/known_hosts (OpenSSH runs the qemu+ssh transport). Check the host's key before you change that file; labctl never turns the check off.";
  }
  if (/nc: not found|nc: command not found|netcat/i.test(text)) return 'The libvirt host needs nc (netcat-openbsd) for a ?socket= URI, or virt-ssh-helper.';
  return CONNECT_HINT;
}

/**
 * A failure to reach libvirt at all: "cannot connect to <uri>: <cause>" with a hint. Exit 1: the
 * input may be right and the daemon down; nothing was changed either way.
 */
function connectError(uri: string, err: unknown): unknown {
  const text = `${(err as Error)?.message ?? ''} ${JSON.stringify((err as { details?: unknown })?.details ?? '')}`;
  if (!/failed to connect to the hypervisor|failed to connect socket|no connection driver|cannot recv data|End of file while reading data/i.test(text)) return err;
  const reason = (err as Error).message.replace(/^virsh \S+: /, '');
  return new LibvirtError('LIBVIRT_CONNECT', `cannot connect to libvirt at ${uri.replace(/\?.*$/, '')}: ${reason}`, {
    hint: connectHint(uri, err),
    cause: err,
    details: { uri, ...((err as { details?: Record<string, unknown> }).details ?? {}) },
  });
}
