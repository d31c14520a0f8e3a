import { describeError } from '@labctl/core/errors';
import type { EventSink } from '@labctl/core/events';
import type { MigrateFacts, MigrateRequest, VmResult } from '@labctl/core/provider';
import type { VmState } from '@labctl/core/state';
import { LibvirtError } from './connect.js';
import { Virsh } from './virsh.js';

/** A migration may copy gigabytes of memory over a slow link; libvirt itself gives up on a dead peer. */
const MIGRATE_TIMEOUT_MS = 60 * 60 * 1000;

const STATE: Record<string, VmState> = { running: 'running', paused: 'running', 'shut off': 'stopped' };

/**
 * One domain to another host of the lab: `virsh migrate --persistent --undefinesource`, live for a
 * running VM, offline (the definition only) for a stopped one. Converges: a domain already on the
 * destination and gone from here (a killed earlier run) is reported there, not moved again.
 */
export async function migrateDomain(
  source: Virsh,
  name: string,
  move: { from: string; to: { name: string; uri: string }; request: MigrateRequest; events: EventSink },
): Promise<VmResult<MigrateFacts>> {
  const started = Date.now();
  const destination = new Virsh(move.to.uri);
  const here = await source.domainState(name);
  if (here === undefined) {
    const there = await destination.domainState(name).catch(() => undefined);
    if (there === undefined)
      throw new LibvirtError('DOMAIN_MISSING', `no domain ${name} on ${move.from} or ${move.to.name}`, {
        hint: 'Run `labctl list` to see where the lab’s VMs are.',
      });
    return {
      name,
      ok: true,
      facts: { host: move.to.name, from: move.from, moved: false, state: STATE[there] ?? 'unknown', durationMs: 0 },
    };
  }
  const running = here === 'running' || here === 'paused';
  const mode = move.request.mode ?? (running ? 'live' : 'offline');
  if (mode === 'offline' && running)
    throw new LibvirtError('MIGRATE_RUNNING', `${name} is running: offline migration moves a stopped VM`, {
      hint: 'Stop it first (labctl stop), or migrate it live (--live).',
      exitCode: 2,
    });
  if (mode === 'live' && !running)
    throw new LibvirtError('MIGRATE_NOT_RUNNING', `${name} is ${here}: live migration moves a running VM`, {
      hint: 'Start it first, or move its definition with --offline.',
      exitCode: 2,
    });
  move.events({
    subject: name,
    phase: 'migrate',
    status: 'start',
    message: `${move.from} -> ${move.to.name} (${mode})`,
  });
  const args = [
    'migrate',
    mode === 'live' ? '--live' : '--offline',
    '--persistent',
    '--undefinesource',
    ...(move.request.tunnelled ? ['--p2p', '--tunnelled'] : []),
    ...(move.request.unsafe ? ['--unsafe'] : []),
    ...(move.request.copyStorage ? ['--copy-storage-all'] : []),
    name,
    move.to.uri,
  ];
  try {
    await source.run(args, { timeoutMs: MIGRATE_TIMEOUT_MS });
  } catch (err) {
    throw migrateError(name, move.to.name, err);
  }
  const state = await destination.domainState(name).catch(() => undefined);
  const durationMs = Date.now() - started;
  move.events({
    subject: name,
    phase: 'migrate',
    status: 'done',
    message: `on ${move.to.name} (${mode}, ${(durationMs / 1000).toFixed(1)} s)`,
  });
  return {
    name,
    ok: true,
    facts: {
      host: move.to.name,
      from: move.from,
      moved: true,
      mode,
      state: STATE[state ?? ''] ?? 'unknown',
      durationMs,
    },
  };
}

/** A VM asked to move to the host it is on: nothing to do, once libvirt confirms it is there. */
export async function alreadyThere(virsh: Virsh, name: string, host: string): Promise<VmResult<MigrateFacts>> {
  const state = await virsh.domainState(name);
  if (state === undefined)
    throw new LibvirtError('DOMAIN_MISSING', `no domain ${name} on ${host}`, {
      hint: 'Run `labctl list` to see where the lab’s VMs are.',
    });
  return { name, ok: true, facts: { host, from: host, moved: false, state: STATE[state] ?? 'unknown', durationMs: 0 } };
}

/** libvirt's refusal, with what fixes it. */
function migrateError(name: string, to: string, err: unknown): LibvirtError {
  const text = `${describeError(err)} ${JSON.stringify((err as { details?: unknown }).details ?? '')}`;
  let hint = 'See the hypervisor’s words below; `virsh migrate` with the same options shows the same.';
  if (/unsafe migration|without shared storage|cache other than none/i.test(text))
    hint =
      'libvirt cannot tell that the disks are on storage both hosts share. Put them on shared storage (NFS, a cluster file system) at the same path on both hosts; pass --unsafe only when they are shared in a way libvirt cannot see.';
  else if (/same host/i.test(text))
    hint = 'Both hosts report the same host UUID: give each libvirtd its own host_uuid (libvirtd.conf).';
  else if (/no such file|cannot access storage|No such file or directory/i.test(text))
    hint = `${to} does not see ${name}’s disks at the same path: migrate needs storage both hosts share.`;
  else if (/unable to connect to server at '[^']*:\d+'/i.test(text) && !/tunnel/i.test(text))
    hint = `The source host's QEMU could not reach ${to}'s migration port. Let the hosts reach each other on ports 49152-49215, set migration_host (the address to use) in ${to}'s qemu.conf, or pass --tunnelled.`;
  else if (/failed to connect|unable to connect|cannot recv data|host key/i.test(text))
    hint = `The source host must reach ${to}’s URI itself with --tunnelled (peer to peer): check its SSH keys and known_hosts for that host.`;
  return new LibvirtError(
    'MIGRATE_FAILED',
    `${name} could not be moved to ${to}: ${describeError(err).replace(/^virsh migrate: /, '')}`,
    {
      hint,
      cause: err,
      details: (err as { details?: Record<string, unknown> }).details ?? {},
    },
  );
}
