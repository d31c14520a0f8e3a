import { classifyAddress, rankAddresses } from '@labctl/core/address';
import { Semaphore, sleep } from '@labctl/core/concurrency';
import { type EventSink, silentSink } from '@labctl/core/events';
import { type AdapterReport, type Provider, type VmFailure, vmFailure } from '@labctl/core/provider';
import type { VmRecord } from '@labctl/core/state';
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import { type ProbeResult, type SshProbe, sshHandshakeProbe } from './ssh-probe.js';

// ssh2 is CommonJS: its named exports are read from the default export at run time.
const { utils } = ssh2;

/**
 * IP discovery, provider-neutral. Per VM: poll the provider's adapter reports -> keep usable
 * addresses of the VM's own MAC that are not stale leases -> SSH handshake on them (host key
 * recorded, or checked when already pinned) -> reachable. Polls back off, every wait has a deadline,
 * and on timeout each VM says what was seen and what to check.
 */
export type DiscoveryStatus = 'reachable' | 'addressed' | 'timeout' | 'failed';

/** What was last seen for a VM, in the order a VM normally goes through. */
export type Seen =
  | 'not-polled'
  | 'no-domain'
  | 'no-adapter'
  | 'no-lease'
  | 'stale-lease'
  | 'unusable-address'
  | 'ssh-closed'
  | 'ssh-key-mismatch'
  | 'login-denied'
  | 'hypervisor-error'
  | 'reachable';

export interface VmDiscovery {
  name: string;
  status: DiscoveryStatus;
  /** Usable addresses, best first. */
  addresses: string[];
  /** The address SSH answered on. */
  sshAddress?: string;
  /** Host keys as OpenSSH lines; the pinned ones, or the one recorded now. */
  hostKeys: string[];
  seen: Seen;
  /** One line: what was seen. */
  detail: string;
  /** What to check next (on timeout or failure). */
  hint?: string;
  /** The hypervisor could not be asked: its error, typed. */
  failure?: VmFailure;
}

export interface DiscoveryOptions {
  /** Overall deadline for all VMs. */
  timeoutMs: number;
  /** Also wait for an SSH handshake (and record the host key). Default true. */
  ssh?: boolean;
  signal?: AbortSignal;
  events?: EventSink;
  probe?: SshProbe;
  /** Concurrent SSH handshakes per provider host (sshd's MaxStartups is 10 by default). */
  handshakesPerHost?: number;
  /** One handshake attempt's own deadline. */
  probeTimeoutMs?: number;
  /**
   * Log in with the VM's `ssh.keyFile` as its `ssh.user` after the handshake (default true): a VM that
   * answers with the pinned key but refuses the lab's key is not ready. Skipped for a VM without a
   * readable, unencrypted key file.
   */
  login?: boolean;
  /** First poll interval; grows by half each round up to `maxIntervalMs`. */
  intervalMs?: number;
  maxIntervalMs?: number;
  /** When each VM was (last) started, epoch ms: leases handed out before that are stale. */
  startedAt?: (vm: VmRecord) => number | undefined;
  now?: () => number;
  wait?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Bytes in a console log on this machine, or undefined when it is not here (a remote host's). */
function consoleSize(file: string): number | undefined {
  try {
    return statSync(file).size;
  } catch {
    return undefined;
  }
}

/** A private key ssh2 can use as it is (no passphrase), or undefined: then the login stage is skipped. */
async function readLoginKey(file: string): Promise<Buffer | undefined> {
  try {
    const data = await readFile(file);
    return utils.parseKey(data) instanceof Error ? undefined : data;
  } catch {
    return undefined;
  }
}

/** Lease timestamps have a resolution of one second and clocks differ a little. */
const STALE_SLACK_MS = 3_000;

interface Tracker {
  vm: VmRecord;
  result: VmDiscovery;
  probing: boolean;
  done: boolean;
}

/** When labctl last started the VM: the record's `startedAt` (older states kept it in `resources`). */
export function startedAtFromResources(vm: VmRecord): number | undefined {
  const value = vm.startedAt ?? (vm.resources as { startedAt?: unknown } | undefined)?.startedAt;
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    const parsed = Date.parse(value);
    return Number.isNaN(parsed) ? undefined : parsed;
  }
  return undefined;
}

/** Usable addresses of one VM from its adapter reports, or why there are none. */
export function evaluateReports(
  vm: VmRecord,
  reports: readonly AdapterReport[],
  startedAt: number | undefined,
): { addresses: string[]; seen: Seen; detail: string } {
  const mine = reports.filter((report) => report.vm === vm.name);
  const problem = mine.find((report) => report.problem)?.problem;
  if (mine.length === 0 || (problem && mine.every((report) => report.problem))) {
    const noDomain = problem !== undefined && /no domain|not exist|not found/i.test(problem);
    return {
      addresses: [],
      seen: noDomain ? 'no-domain' : 'no-adapter',
      detail: problem ?? 'the hypervisor reports no network adapter',
    };
  }
  const vmMac = vm.mac?.toLowerCase();
  const candidates: string[] = [];
  const stale: string[] = [];
  for (const report of mine) {
    if (vmMac && report.mac && report.mac.toLowerCase() !== vmMac) continue;
    if (startedAt !== undefined && report.obtainedAt !== undefined && report.obtainedAt < startedAt - STALE_SLACK_MS) {
      stale.push(...report.addresses);
      continue;
    }
    candidates.push(...report.addresses);
  }
  const usable = rankAddresses(candidates);
  if (usable.length > 0) return { addresses: usable, seen: 'no-lease', detail: `address ${usable.join(', ')}` };
  if (candidates.length > 0) {
    const reasons = candidates.map((address) => `${address} (${classifyAddress(address).reason})`);
    return { addresses: [], seen: 'unusable-address', detail: `only unusable addresses: ${reasons.join(', ')}` };
  }
  if (stale.length > 0) {
    return {
      addresses: [],
      seen: 'stale-lease',
      detail: `only a stale lease from before this VM started (${stale.join(', ')}), ignored`,
    };
  }
  const sources = [...new Set(mine.map((report) => report.source))].join('/');
  return { addresses: [], seen: 'no-lease', detail: `adapter ${vmMac ?? '?'} has no address yet (${sources})` };
}

/** What to check, per kind of "seen", for the timeout explanation. */
export function hintFor(seen: Seen, vm: VmRecord): string {
  const consoleLog = (vm.resources as { consoleLog?: string } | undefined)?.consoleLog;
  const booted = consoleLog ? consoleSize(consoleLog) : undefined;
  // The "booted" stage, where labctl can see it (a console log on this machine).
  const console =
    booted === 0
      ? ` Its console log ${consoleLog} is empty: the VM has not printed anything yet (firmware, boot loader, Secure Boot?).`
      : consoleLog
        ? ` Its console output is in ${consoleLog}.`
        : '';
  switch (seen) {
    case 'no-domain':
      return 'The VM does not exist on the hypervisor any more: run `labctl create` again to re-create it.';
    case 'no-adapter':
      return `Is the VM running and does it have a network adapter? Check it on the hypervisor.${console}`;
    case 'no-lease':
    case 'stale-lease':
      return `No DHCP lease: did the guest boot, and does it run a DHCP client on that adapter? Is a DHCP server on the network (libvirt network with <dhcp>)?${console}`;
    case 'unusable-address':
      return 'The guest only has self-assigned/link-local addresses: its DHCP request got no answer. Check the DHCP server of that network.';
    case 'ssh-closed':
      if (vm.assignedAddress)
        return `${vm.name} should be at ${vm.assignedAddress} (${vm.assign === 'reservation' ? 'DHCP reservation' : 'static, from its seed'}) but SSH does not answer there. Did it boot? Does the image apply the cidata seed (cloud-init, or labctl's firstboot-seed step)? A Secure Boot template that refuses the loader also stops it here.${console}`;
      return `The VM has an address but SSH does not answer: is sshd enabled in the golden image, and is port ${vm.ssh?.port ?? 22} open?${console}`;
    case 'login-denied':
      return `The VM answers SSH with its pinned host key but does not let ${vm.ssh?.user ?? 'root'} in with ${vm.ssh?.keyFile ?? 'the lab key'}: is that key's .pub in the VM's authorized_keys (the seed puts it there; does the image apply the seed)? Is the user right (ssh.user in labctl.yaml)?`;
    case 'hypervisor-error':
      return 'labctl could not ask the hypervisor; see the error. Is it running and reachable (the URI, the host)?';
    case 'ssh-key-mismatch':
      if (vm.instanceId)
        return 'The VM presents a host key other than the one labctl made for it and put in its seed: the image did not apply the seed (no cloud-init or firstboot-seed), or another machine answers at this address. labctl refuses it; nothing was trusted.';
      return 'The SSH host key differs from the one recorded at creation: the address may now belong to another machine. Check before trusting it; if the VM was really re-built, `labctl destroy NAME` and create it again.';
    default:
      return 'Run `labctl ip --wait` again with a longer --timeout.';
  }
}

export async function discover(
  provider: Provider,
  vms: readonly VmRecord[],
  options: DiscoveryOptions,
): Promise<VmDiscovery[]> {
  const now = options.now ?? Date.now;
  const wait = options.wait ?? sleep;
  const events = options.events ?? silentSink;
  const wantSsh = options.ssh ?? true;
  const probe = options.probe ?? sshHandshakeProbe;
  const probeTimeoutMs = options.probeTimeoutMs ?? 5_000;
  const maxInterval = options.maxIntervalMs ?? 3_000;
  const startedAt = options.startedAt ?? startedAtFromResources;
  const deadline = now() + options.timeoutMs;
  const keys = new Map<string, Promise<Buffer | undefined>>();
  const loginFor = async (vm: VmRecord): Promise<{ user: string; privateKey: Buffer } | undefined> => {
    const file = vm.ssh?.keyFile;
    if (options.login === false || !file) return undefined;
    if (!keys.has(file)) keys.set(file, readLoginKey(file));
    const privateKey = await keys.get(file);
    return privateKey ? { user: vm.ssh?.user ?? 'root', privateKey } : undefined;
  };
  const semaphores = new Map<string, Semaphore>();
  const semaphoreFor = (host: string) => {
    let semaphore = semaphores.get(host);
    if (!semaphore) {
      semaphore = new Semaphore(options.handshakesPerHost ?? 10);
      semaphores.set(host, semaphore);
    }
    return semaphore;
  };

  const trackers: Tracker[] = vms.map((vm) => ({
    vm,
    probing: false,
    done: false,
    result: {
      name: vm.name,
      status: 'timeout',
      addresses: [],
      hostKeys: [...(vm.ssh?.hostKeys ?? [])],
      seen: 'not-polled',
      detail: 'not polled yet',
    },
  }));
  const probes = new Set<Promise<void>>();

  const runProbe = async (tracker: Tracker, addresses: string[]): Promise<void> => {
    const { vm, result } = tracker;
    const login = await loginFor(vm);
    let last: ProbeResult | undefined;
    for (const address of addresses) {
      const remaining = deadline - now();
      if (remaining <= 0 || options.signal?.aborted) break;
      last = await semaphoreFor(vm.host ?? 'local').run(() =>
        probe(
          {
            address,
            port: vm.ssh?.port ?? 22,
            pinnedKeys: vm.ssh?.hostKeys ?? [],
            ...(login ? { login } : {}),
            ...(vm.ssh?.proxyJump ? { proxyJump: vm.ssh.proxyJump } : {}),
          },
          Math.min(probeTimeoutMs, remaining),
        ),
      );
      if (last.ok && last.login === 'denied') {
        result.status = 'failed';
        result.seen = 'login-denied';
        result.sshAddress = address;
        result.addresses = [address, ...addresses.filter((a) => a !== address)];
        if (!result.hostKeys.some((key) => key === last!.hostKey)) result.hostKeys = [...result.hostKeys, last.hostKey];
        result.detail = `SSH answered on ${address} with the pinned host key, but ${vm.ssh?.user ?? 'root'} cannot log in with ${vm.ssh?.keyFile}`;
        result.hint = hintFor('login-denied', vm);
        tracker.done = true;
        events({ subject: vm.name, phase: 'ssh', status: 'failed', message: result.detail });
        return;
      }
      if (last.ok) {
        result.status = 'reachable';
        result.seen = 'reachable';
        result.sshAddress = address;
        result.addresses = [address, ...addresses.filter((a) => a !== address)];
        if (!result.hostKeys.some((key) => key === last!.hostKey)) result.hostKeys = [...result.hostKeys, last.hostKey];
        result.detail = `SSH answered on ${address}${last.login === 'ok' ? `, ${vm.ssh?.user ?? 'root'} logged in with the lab key` : ''}`;
        tracker.done = true;
        events({ subject: vm.name, phase: 'ssh', status: 'done', message: address });
        return;
      }
      if (last.reason === 'key-mismatch') {
        result.status = 'failed';
        result.seen = 'ssh-key-mismatch';
        result.detail = `${address}: ${last.message}`;
        result.hint = hintFor('ssh-key-mismatch', vm);
        tracker.done = true;
        events({ subject: vm.name, phase: 'ssh', status: 'failed', message: result.detail });
        return;
      }
    }
    if (last && !last.ok) {
      result.seen = 'ssh-closed';
      result.detail = `address ${addresses.join(', ')}, but SSH ${last.reason === 'refused' ? 'refuses connections' : `did not answer (${last.message})`}`;
    }
  };

  let interval = options.intervalMs ?? 500;
  let firstRound = true;
  while (true) {
    // An address given before boot (static in the seed, or a DHCP reservation) needs no lease: SSH is
    // tried there at once, with the key labctl made for the VM.
    for (const tracker of trackers.filter((t) => !t.done && !t.probing && t.vm.assignedAddress)) {
      const address = tracker.vm.assignedAddress!;
      if (tracker.result.addresses.length === 0)
        events({
          subject: tracker.vm.name,
          phase: 'address',
          status: 'done',
          message: `${address} (${tracker.vm.assign ?? 'static'})`,
        });
      tracker.result.addresses = [address];
      if (!wantSsh) {
        tracker.result.status = 'addressed';
        tracker.result.detail = `address ${address} (${tracker.vm.assign ?? 'static'}, given before boot)`;
        tracker.done = true;
        continue;
      }
      if (tracker.result.seen === 'not-polled') {
        tracker.result.seen = 'ssh-closed';
        tracker.result.detail = `address ${address} (${tracker.vm.assign ?? 'static'}): no SSH answer yet`;
      }
      tracker.probing = true;
      const running = runProbe(tracker, [address]).finally(() => {
        tracker.probing = false;
        probes.delete(running);
      });
      probes.add(running);
    }
    const pending = trackers.filter((t) => !t.done && !t.probing && !t.vm.assignedAddress);
    if (pending.length > 0) {
      let reports: AdapterReport[] | undefined;
      try {
        reports = await provider.adapters(pending.map((t) => t.vm));
      } catch (err) {
        // Maybe transient: keep polling until the deadline. A VM that never got an answer ends as
        // "failed" with the hypervisor's error (a connection failure is not "no domain").
        for (const t of pending) {
          if (t.result.seen === 'not-polled' || t.result.seen === 'hypervisor-error') {
            t.result.seen = 'hypervisor-error';
            t.result.failure = vmFailure(err, 'HYPERVISOR_ERROR');
          }
          t.result.detail = `the hypervisor did not answer: ${(err as Error).message}`;
        }
      }
      for (const tracker of reports ? pending : []) {
        const evaluated = evaluateReports(tracker.vm, reports ?? [], startedAt(tracker.vm));
        if (evaluated.addresses.length === 0) {
          // Keep the more advanced explanation from an SSH attempt while the lease is still there.
          tracker.result.seen = evaluated.seen;
          tracker.result.detail = evaluated.detail;
          continue;
        }
        const changed = evaluated.addresses.join() !== tracker.result.addresses.join();
        tracker.result.addresses = evaluated.addresses;
        if (changed)
          events({
            subject: tracker.vm.name,
            phase: 'address',
            status: 'done',
            message: evaluated.addresses.join(', '),
          });
        if (!wantSsh) {
          tracker.result.status = 'addressed';
          tracker.result.seen = 'no-lease';
          tracker.result.detail = evaluated.detail;
          tracker.done = true;
          continue;
        }
        if (tracker.result.seen !== 'ssh-closed') {
          tracker.result.seen = 'no-lease';
          tracker.result.detail = evaluated.detail;
        }
        tracker.probing = true;
        const running = runProbe(tracker, evaluated.addresses).finally(() => {
          tracker.probing = false;
          probes.delete(running);
        });
        probes.add(running);
      }
    }
    if (trackers.every((t) => t.done)) break;
    if (firstRound && options.timeoutMs <= 0) break;
    firstRound = false;
    const remaining = deadline - now();
    if (remaining <= 0 || options.signal?.aborted) break;
    // Wait for the next poll, or earlier when a probe finishes (so a failed probe is retried promptly).
    await Promise.race([
      wait(Math.min(interval, remaining), options.signal).catch(() => {}),
      ...(probes.size > 0 ? [Promise.race(probes)] : []),
    ]);
    interval = Math.min(maxInterval, Math.round(interval * 1.5));
  }
  await Promise.allSettled([...probes]);
  for (const tracker of trackers) {
    if (tracker.done) continue;
    tracker.result.status = tracker.result.seen === 'hypervisor-error' ? 'failed' : 'timeout';
    if (tracker.result.seen === 'not-polled') tracker.result.detail = 'never polled: the deadline was already over';
    tracker.result.hint = tracker.result.failure?.hint ?? hintFor(tracker.result.seen, tracker.vm);
    events({
      subject: tracker.vm.name,
      phase: wantSsh ? 'ssh' : 'address',
      status: 'failed',
      message: tracker.result.detail,
    });
  }
  return trackers.map((t) => t.result);
}
