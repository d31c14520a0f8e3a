import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '@labctl/core/errors';
import type { EventSink } from '@labctl/core/events';
import {
  nextSnapshotName,
  type SnapshotFacts,
  type SnapshotInfo,
  type SnapshotRequest,
  type StopFacts,
  type StopOptions,
  type VmResult,
  vmFailure,
} from '@labctl/core/provider';
import { LibvirtError } from './connect.js';
import type { DiskStore } from './storage.js';
import { isNoDomain, isNotRunning, type Virsh } from './virsh.js';

/**
 * Day-2 operations on one libvirt domain: stop with a deadline, and snapshots.
 *
 * Snapshots are libvirt's internal ones (`virsh snapshot-create-as` without `--disk-only`): they
 * live inside the VM's own qcow2 overlay, so the golden image below it is never written, deleting
 * one in the middle of the stack is qcow2's own bookkeeping (no merge of files), and `destroy`
 * removes them with the overlay. A running VM's snapshot holds its memory too, and reverting to it
 * resumes the VM where it was; a stopped VM's holds the disk only. The read-only seed disk is raw
 * and never changes, so it is left out of every snapshot. QEMU saves memory like a migration, which
 * its VHD/VHDX drivers block: a running VM on a .vhd/.vhdx golden image is snapshotted stopped.
 */
export interface DomainRef {
  name: string;
}

const POLL_MS = 1000;

export async function stopDomain(
  virsh: Virsh,
  vm: DomainRef,
  options: StopOptions,
  events: EventSink,
): Promise<StopFacts> {
  const state = await virsh.domainState(vm.name);
  if (state === undefined) throw new LibvirtError('DOMAIN_MISSING', `domain ${vm.name} does not exist at ${virsh.uri}`);
  if (state === 'shut off') {
    events({ subject: vm.name, phase: 'stop', status: 'skipped', message: 'already stopped' });
    return { state: 'stopped', stopped: false, forced: false };
  }
  const powerOff = async (why: string): Promise<StopFacts> => {
    events({ subject: vm.name, phase: 'stop', status: 'start', message: why });
    await virsh.run(['destroy', vm.name], { timeoutMs: 60_000 }).catch((err) => {
      if (!isNotRunning(err)) throw err;
    });
    events({ subject: vm.name, phase: 'stop', status: 'done', message: 'powered off' });
    return { state: 'stopped', stopped: true, forced: true };
  };
  if (options.force) return powerOff('power off (--force)');
  events({
    subject: vm.name,
    phase: 'stop',
    status: 'start',
    message: `guest shutdown (ACPI), up to ${options.timeoutS} s`,
  });
  await virsh.run(['shutdown', '--mode', 'acpi', vm.name], { timeoutMs: 60_000 }).catch((err) => {
    if (!isNotRunning(err)) throw err;
  });
  const deadline = Date.now() + options.timeoutS * 1000;
  while (Date.now() < deadline) {
    if ((await virsh.domainState(vm.name)) === 'shut off') {
      events({ subject: vm.name, phase: 'stop', status: 'done', message: 'shut down by the guest' });
      return { state: 'stopped', stopped: true, forced: false };
    }
    await sleep(POLL_MS);
  }
  if (options.forceAfterTimeout) return powerOff(`the guest did not shut down in ${options.timeoutS} s: power off`);
  throw new LibvirtError('STOP_TIMEOUT', `${vm.name} did not shut down within ${options.timeoutS} s`, {
    hint: 'The guest ignored the ACPI shutdown (no acpid?) or is still busy. Wait longer (--timeout), or power it off: labctl stop --force.',
  });
}

/** `virsh -q snapshot-list --parent`: "name  YYYY-MM-DD HH:MM:SS +ZZZZ  state  [parent]". */
export function parseSnapshotList(out: string): SnapshotInfo[] {
  const snapshots: SnapshotInfo[] = [];
  for (const line of out.split('\n')) {
    const match =
      /^\s*(\S+)\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4})\s+(disk-snapshot|running|shutoff|paused|\S+)\s*(\S*)\s*$/.exec(
        line,
      );
    if (!match) continue;
    const [, name, created, vmState, parent] = match;
    const [date, time, zone] = created!.split(' ');
    const iso = new Date(`${date}T${time}${zone!.slice(0, 3)}:${zone!.slice(3)}`);
    snapshots.push({
      name: name!,
      ...(Number.isNaN(iso.getTime()) ? {} : { created: iso.toISOString() }),
      vmState: vmState!,
      ...(parent ? { parent } : {}),
    });
  }
  return stackOrder(snapshots);
}

/** Oldest first: parents before children, then by creation time (libvirt lists by name). */
function stackOrder(snapshots: SnapshotInfo[]): SnapshotInfo[] {
  const depth = new Map<string, number>();
  const byName = new Map(snapshots.map((snapshot) => [snapshot.name, snapshot]));
  const depthOf = (snapshot: SnapshotInfo, seen = new Set<string>()): number => {
    const known = depth.get(snapshot.name);
    if (known !== undefined) return known;
    const parent = snapshot.parent ? byName.get(snapshot.parent) : undefined;
    const value = parent && !seen.has(parent.name) ? depthOf(parent, seen.add(snapshot.name)) + 1 : 0;
    depth.set(snapshot.name, value);
    return value;
  };
  return [...snapshots].sort(
    (a, b) =>
      (a.created ?? '').localeCompare(b.created ?? '') || depthOf(a) - depthOf(b) || a.name.localeCompare(b.name),
  );
}

export async function listSnapshots(virsh: Virsh, vm: DomainRef): Promise<SnapshotInfo[]> {
  return parseSnapshotList(await virsh.text(['snapshot-list', vm.name, '--parent'], { timeoutMs: 60_000 }));
}

export interface SnapshotHost {
  virsh: Virsh;
  store: DiskStore;
}

/** One snapshot operation on one domain; the stack afterwards is read back from libvirt. */
export async function snapshotDomain(
  host: SnapshotHost,
  vm: DomainRef,
  request: SnapshotRequest,
  events: EventSink,
): Promise<SnapshotFacts> {
  const { virsh } = host;
  // Two virsh calls per VM: the stack (which also proves the domain exists), then the change; the
  // stack afterwards follows from the change, as libvirt keeps it.
  let before: SnapshotInfo[];
  try {
    before = await listSnapshots(virsh, vm);
  } catch (err) {
    if (isNoDomain(err)) throw new LibvirtError('DOMAIN_MISSING', `domain ${vm.name} does not exist at ${virsh.uri}`);
    throw err;
  }
  const phase = `snapshot ${request.action}`;
  if (request.action === 'list') return { snapshots: before };
  if (request.action === 'save') {
    const name = request.name ?? nextSnapshotName(before);
    if (before.some((snapshot) => snapshot.name === name))
      throw new LibvirtError('SNAPSHOT_EXISTS', `${vm.name} already has a snapshot named ${name}`, {
        hint: 'Pick another --name, or delete the old one first: labctl snapshot delete.',
      });
    if (request.minFreeBytes !== undefined) {
      const free = await host.store.freeBytes();
      if (free < request.minFreeBytes)
        throw new LibvirtError(
          'SNAPSHOT_NO_SPACE',
          `only ${gib(free)} free where ${vm.name}'s disk lives; a snapshot needs at least ${gib(request.minFreeBytes)} there`,
          {
            hint: 'A VM whose disk cannot grow is paused or crashes. Free space, delete old snapshots (labctl snapshot delete), or lower --min-free.',
          },
        );
    }
    events({ subject: vm.name, phase, status: 'start', message: name });
    await virsh
      .run(['snapshot-create-as', vm.name, '--name', name, '--atomic'], { timeoutMs: 600_000 })
      .catch((err) => {
        // QEMU saves a running VM's memory like a migration, which its VHD/VHDX drivers block.
        if (/does not support live migration/.test(describeError(err)))
          throw new LibvirtError(
            'SNAPSHOT_NEEDS_STOP',
            `${vm.name} runs on a VHD/VHDX golden image: QEMU cannot save a running VM's memory on that chain`,
            {
              hint: `Stop it first (labctl stop ${vm.name}): a stopped VM's snapshot holds its disk. For snapshots of running VMs, convert the golden image to qcow2 (qemu-img convert -O qcow2 golden.vhd golden.qcow2).`,
              cause: err,
            },
          );
        throw err;
      });
    events({ subject: vm.name, phase, status: 'done', message: name });
    // libvirt makes the new snapshot a child of the current one, the newest unless a revert moved it.
    const parent = before.at(-1)?.name;
    return {
      snapshot: name,
      snapshots: [...before, { name, created: new Date().toISOString(), ...(parent ? { parent } : {}) }],
    };
  }
  const target = request.name ?? before.at(-1)?.name;
  const entry = before.find((snapshot) => snapshot.name === target);
  if (!target || !entry)
    throw new LibvirtError(
      'SNAPSHOT_MISSING',
      target ? `${vm.name} has no snapshot named ${target}` : `${vm.name} has no snapshots`,
      { hint: `labctl snapshot list ${vm.name} shows its snapshots.` },
    );
  events({ subject: vm.name, phase, status: 'start', message: target });
  if (request.action === 'revert') {
    await virsh.run(['snapshot-revert', vm.name, target], { timeoutMs: 600_000 });
    events({ subject: vm.name, phase, status: 'done', message: target });
    // A snapshot of a running VM resumes it running; any other leaves it off.
    return { snapshot: target, snapshots: before, state: entry.vmState === 'running' ? 'running' : 'stopped' };
  }
  await virsh.run(['snapshot-delete', vm.name, target], { timeoutMs: 600_000 });
  events({ subject: vm.name, phase, status: 'done', message: target });
  // Its children move up to its parent, as libvirt re-parents them.
  return {
    snapshot: target,
    snapshots: before
      .filter((snapshot) => snapshot.name !== target)
      .map((snapshot) =>
        snapshot.parent === target
          ? { ...stripParent(snapshot), ...(entry.parent ? { parent: entry.parent } : {}) }
          : snapshot,
      ),
  };
}

function stripParent(snapshot: SnapshotInfo): SnapshotInfo {
  const { parent: _parent, ...rest } = snapshot;
  return rest;
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/**
 * The same operation on a whole batch in three virsh processes whatever its size: one reads every
 * VM's state and stack, one makes every change, one reads them back to confirm each. virsh runs
 * `;`-separated commands in order and goes on after a failing one; an `echo` of a random marker
 * between them frames each command's output (names are validated words: nothing to quote). A VM
 * whose change cannot be confirmed is done again alone by snapshotDomain, which reports its exact
 * error (a failure, so the common path stays three processes).
 */
export async function snapshotDomains(
  host: SnapshotHost,
  vms: readonly DomainRef[],
  request: SnapshotRequest,
  events: EventSink,
): Promise<Array<VmResult<SnapshotFacts>>> {
  const { virsh } = host;
  const marker = `@@labctl-${randomBytes(6).toString('hex')}@@`;
  const framed = async (commands: string[]): Promise<string[]> => {
    const out = await virsh.text([commands.map((command) => `${command}; echo ${marker}`).join('; ')], {
      timeoutMs: 600_000 + commands.length * 60_000,
    });
    return out.split(marker).map((segment) => segment.trim());
  };
  const read = async (names: readonly string[]) => {
    const segments = await framed(
      names.flatMap((name) => [
        `domstate ${name}`,
        `snapshot-list ${name} --parent`,
        `snapshot-current ${name} --name`,
      ]),
    );
    return new Map(
      names.map((name, i) => [
        name,
        {
          exists: (segments[3 * i] ?? '') !== '',
          state: (segments[3 * i] ?? '') === 'shut off' ? ('stopped' as const) : ('running' as const),
          stack: parseSnapshotList(segments[3 * i + 1] ?? ''),
          current: segments[3 * i + 2] ?? '',
        },
      ]),
    );
  };
  const results = new Map<string, VmResult<SnapshotFacts>>();
  const fail = (name: string, err: unknown, code = 'LIBVIRT_SNAPSHOT_FAILED') => {
    const error = vmFailure(err, code);
    events({ subject: name, phase: `snapshot ${request.action}`, status: 'failed', message: error.message });
    results.set(name, { name, ok: false, error });
  };
  const before = await read(vms.map((vm) => vm.name));
  const free =
    request.action === 'save' && request.minFreeBytes !== undefined ? await host.store.freeBytes() : undefined;
  const planned: Array<{ name: string; target: string; command: string; facts: SnapshotFacts }> = [];
  for (const vm of vms) {
    const seen = before.get(vm.name)!;
    const stack = seen.stack;
    if (!seen.exists) {
      fail(vm.name, new LibvirtError('DOMAIN_MISSING', `domain ${vm.name} does not exist at ${virsh.uri}`));
      continue;
    }
    if (request.action === 'list') {
      results.set(vm.name, { name: vm.name, ok: true, facts: { snapshots: stack } });
      continue;
    }
    if (request.action === 'save') {
      const name = request.name ?? nextSnapshotName(stack);
      if (stack.some((snapshot) => snapshot.name === name)) {
        fail(
          vm.name,
          new LibvirtError('SNAPSHOT_EXISTS', `${vm.name} already has a snapshot named ${name}`, {
            hint: 'Pick another --name, or delete the old one first: labctl snapshot delete.',
          }),
        );
        continue;
      }
      if (free !== undefined && request.minFreeBytes !== undefined && free < request.minFreeBytes) {
        fail(
          vm.name,
          new LibvirtError(
            'SNAPSHOT_NO_SPACE',
            `only ${gib(free)} free where ${vm.name}'s disk lives; a snapshot needs at least ${gib(request.minFreeBytes)} there`,
            {
              hint: 'A VM whose disk cannot grow is paused or crashes. Free space, delete old snapshots (labctl snapshot delete), or lower --min-free.',
            },
          ),
        );
        continue;
      }
      const parent = seen.current || stack.at(-1)?.name;
      planned.push({
        name: vm.name,
        target: name,
        command: `snapshot-create-as ${vm.name} --name ${name} --atomic`,
        facts: {
          snapshot: name,
          snapshots: [...stack, { name, created: new Date().toISOString(), ...(parent ? { parent } : {}) }],
          // A snapshot leaves the VM as it was.
          state: seen.state,
        },
      });
      continue;
    }
    const target = request.name ?? stack.at(-1)?.name;
    const entry = stack.find((snapshot) => snapshot.name === target);
    if (!target || !entry) {
      fail(
        vm.name,
        new LibvirtError(
          'SNAPSHOT_MISSING',
          target ? `${vm.name} has no snapshot named ${target}` : `${vm.name} has no snapshots`,
          { hint: `labctl snapshot list ${vm.name} shows its snapshots.` },
        ),
      );
      continue;
    }
    planned.push(
      request.action === 'revert'
        ? {
            name: vm.name,
            target,
            command: `snapshot-revert ${vm.name} ${target}`,
            facts: { snapshot: target, snapshots: stack, state: entry.vmState === 'running' ? 'running' : 'stopped' },
          }
        : {
            name: vm.name,
            target,
            command: `snapshot-delete ${vm.name} ${target}`,
            facts: {
              snapshot: target,
              snapshots: stack
                .filter((snapshot) => snapshot.name !== target)
                .map((snapshot) =>
                  snapshot.parent === target
                    ? { ...stripParent(snapshot), ...(entry.parent ? { parent: entry.parent } : {}) }
                    : snapshot,
                ),
            },
          },
    );
  }
  if (planned.length > 0) {
    const phase = `snapshot ${request.action}`;
    for (const change of planned) events({ subject: change.name, phase, status: 'start', message: change.target });
    await framed(planned.map((change) => change.command)).catch(() => undefined);
    const after = await read(planned.map((change) => change.name));
    for (const change of planned) {
      const seen = after.get(change.name)!;
      const done =
        request.action === 'save'
          ? seen.stack.some((snapshot) => snapshot.name === change.target)
          : request.action === 'delete'
            ? !seen.stack.some((snapshot) => snapshot.name === change.target)
            : seen.current === change.target;
      if (done) {
        events({ subject: change.name, phase, status: 'done', message: change.target });
        results.set(change.name, { name: change.name, ok: true, facts: change.facts });
        continue;
      }
      // Not confirmed: done again alone, for its own error (or a success after all).
      try {
        const facts = await snapshotDomain(host, { name: change.name }, { ...request, name: change.target }, events);
        results.set(change.name, { name: change.name, ok: true, facts });
      } catch (err) {
        fail(change.name, err);
      }
    }
  }
  return vms.map((vm) => results.get(vm.name)!);
}
