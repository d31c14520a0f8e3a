import { UsageError } from '@labctl/core/errors';
import type { EventSink } from '@labctl/core/events';
import type { AddressesSummary } from '@labctl/core/flows/addresses';
import { type OperationSummary, operationExitCode } from '@labctl/core/flows/operate';
import type { MigrateFacts, MigrateRequest } from '@labctl/core/provider';
import type { LoadedLabFile } from '@labctl/core/spec';
import type { StateStore, VmRecord } from '@labctl/core/state';
import { Flags } from '@oclif/core';
import { operationHints, waitForSsh } from './operations.js';
import { DEFAULT_PROVIDER, makeProvider } from './providers.js';

/** Flags `migrate` and `evacuate` share: how the VMs move, and waiting for SSH on the new host. */
export const migrationFlags = {
  live: Flags.boolean({
    summary: 'Only live migration: a VM that is stopped is refused.',
    exclusive: ['offline'],
  }),
  offline: Flags.boolean({
    summary: 'Only offline migration (the definition moves): a running VM is refused.',
    exclusive: ['live'],
  }),
  tunnelled: Flags.boolean({
    summary: "libvirt: send the migration through libvirt's own connection (peer to peer, no migration ports).",
    description: 'The source host then connects to the destination URI itself: it needs the SSH keys for it.',
  }),
  unsafe: Flags.boolean({
    summary: 'libvirt: migrate although libvirt cannot tell the disks are on shared storage.',
    description: 'Only for storage both hosts share in a way libvirt does not recognise (a bind mount, one machine).',
  }),
  'copy-storage': Flags.boolean({
    summary: 'Move the disks too, to a host that does not share them.',
    description:
      'libvirt: QEMU copies each disk while the VM runs (--copy-storage-all) into the same storage pool and path on the destination (pool: of both hosts); labctl copies the seed image and removes the old volumes. Hyper-V moves storage by itself when the disks are not on a share.',
  }),
  wait: Flags.boolean({ summary: 'Wait until moved running VMs answer SSH again.', default: true, allowNo: true }),
  timeout: Flags.integer({ summary: 'Seconds to wait for SSH after the move (default 300).', min: 1, max: 604_800 }),
};

export const MIGRATION_VALUE_FLAGS = ['--to', '--timeout'];

export function migrateRequest(flags: {
  live: boolean;
  offline: boolean;
  tunnelled: boolean;
  unsafe: boolean;
  'copy-storage': boolean;
}): Omit<MigrateRequest, 'to'> {
  return {
    ...(flags['copy-storage'] ? { copyStorage: true } : {}),
    ...(flags.live ? { mode: 'live' as const } : flags.offline ? { mode: 'offline' as const } : {}),
    ...(flags.tunnelled ? { tunnelled: true } : {}),
    ...(flags.unsafe ? { unsafe: true } : {}),
  };
}

export function migrateDetail(facts: MigrateFacts): string {
  if (!facts.moved) return `already on ${facts.host}`;
  return `${facts.from} -> ${facts.host} (${facts.mode ?? 'moved'}, ${(facts.durationMs / 1000).toFixed(1)} s)`;
}

/** What a move changes in a VM's record: its host and state, and disk paths that moved with it. */
export function migratedRecord(vm: VmRecord, facts: MigrateFacts): Partial<VmRecord> {
  return {
    host: facts.host,
    state: facts.state,
    ...(facts.resources ? { resources: { ...vm.resources, ...facts.resources } } : {}),
  };
}

/**
 * After a move: the hints of failed VMs, then discovery again for the moved VMs that run (addresses
 * and pinned keys checked on the new host), and the exit status of the whole command.
 */
export async function finishMigration(
  summary: OperationSummary<MigrateFacts>,
  options: {
    lab: LoadedLabFile;
    labDir: string;
    store: StateStore;
    wait: boolean;
    timeoutS: number;
    events: EventSink;
    log: (line: string) => void;
  },
): Promise<{ ssh?: AddressesSummary; exitCode: number }> {
  for (const hint of operationHints(summary)) options.log(hint);
  const moved = summary.vms
    .filter((vm) => vm.ok && vm.facts.moved && vm.facts.state === 'running')
    .map((vm) => vm.name);
  const ssh =
    !options.wait || moved.length === 0 || summary.interrupted || summary.dryRun
      ? undefined
      : await waitForSsh({ ...options, names: moved });
  for (const vm of ssh?.vms ?? [])
    if (vm.status !== 'reachable') options.log(`  ${vm.name}: ${vm.status}${vm.hint ? `: ${vm.hint}` : ''}`);
  const exitCode = operationExitCode(summary) || (ssh?.vms.some((vm) => vm.status !== 'reachable') ? 1 : 0);
  return { ...(ssh ? { ssh } : {}), exitCode };
}

/** Refuses (exit 2) before anything runs when the lab's provider does not migrate VMs. */
export function requireMigration(lab: LoadedLabFile, labDir: string, host: string): void {
  const name = lab.spec.provider ?? DEFAULT_PROVIDER;
  if (!makeProvider(name, { lab, labDir, connection: host }).migrate)
    throw new UsageError('MIGRATE_UNSUPPORTED', `labctl does not migrate ${name} VMs yet`, {
      hint: 'Migration is built for libvirt hosts; on Hyper-V, Move-VM does it by hand for now.',
    });
}
