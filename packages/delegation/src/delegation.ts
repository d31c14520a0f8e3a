/**
 * plan / apply / verify / remove against the directory. One subtree search reads every host's
 * object; apply and remove then send at most one modify per host that needs a change, carrying
 * only the missing (or labctl's own) values and the userAccountControl swap as compare-and-swap
 * (delete the value read + add the new one in the same modify). If the object changed in
 * between, the server rejects the whole modify; that host is re-read and retried.
 */
import { mapLimit } from '@labctl/core/concurrency';
import { describeError } from '@labctl/core/errors';
import { type EventSink, silentSink } from '@labctl/core/events';
import { type Directory, directoryError, entryValues, change as ldapChange, ldapResultCode } from './directory.js';
import { escapeFilterValue } from './ldap-escape.js';
import {
  ALLOWED_TO_DELEGATE_TO,
  type ComputerObject,
  diffForApply,
  diffForRemove,
  gapOf,
  type HostChange,
  type HostGap,
  type HostName,
  hasMigrationSpn,
  isNoop,
  type TargetNames,
  targetNames,
  wantedValues,
} from './mesh.js';

export interface MeshInput {
  hosts: readonly HostName[];
  /** DNS domain, for FQDNs of hosts whose object has no dNSHostName. */
  domain: string;
  baseDn: string;
  services: readonly string[];
}

/** What one subtree search found. */
export interface MeshRead {
  objects: Map<string, ComputerObject>;
  /** Requested hosts with no computer object under the base DN. */
  missing: string[];
  /** Requested hosts that more than one object answers to (not touched). */
  ambiguous: string[];
  /** Found hosts with no `Microsoft Virtual System Migration Service/*` SPN (Hyper-V role not seen). */
  withoutMigrationSpn: string[];
  /** Values each found host should hold, by short name. */
  wanted: Map<string, string[]>;
}

const ATTRIBUTES = [
  'sAMAccountName',
  'dNSHostName',
  'servicePrincipalName',
  ALLOWED_TO_DELEGATE_TO,
  'userAccountControl',
];

function toComputerObject(entry: { dn: string } & Record<string, unknown>): ComputerObject {
  const e = entry as Parameters<typeof entryValues>[0];
  const sam = entryValues(e, 'sAMAccountName')[0] ?? '';
  return {
    short: sam.replace(/\$$/, '').toUpperCase(),
    dn: entry.dn,
    dnsHostName: entryValues(e, 'dNSHostName')[0],
    servicePrincipalNames: entryValues(e, 'servicePrincipalName'),
    allowedToDelegateTo: entryValues(e, ALLOWED_TO_DELEGATE_TO),
    userAccountControl: Number(entryValues(e, 'userAccountControl')[0] ?? 0),
  };
}

/** One search for all hosts: `(&(objectClass=computer)(|(sAMAccountName=HV01$)...))`. */
export async function readMesh(directory: Directory, input: MeshInput): Promise<MeshRead> {
  const terms = input.hosts.map((host) => `(sAMAccountName=${escapeFilterValue(`${host.short}$`)})`).join('');
  const entries =
    input.hosts.length === 0
      ? []
      : await directory.search(input.baseDn, {
          scope: 'sub',
          filter: `(&(objectClass=computer)(|${terms}))`,
          attributes: ATTRIBUTES,
        });
  const found = new Map<string, ComputerObject[]>();
  for (const entry of entries) {
    const object = toComputerObject(entry);
    found.set(object.short, [...(found.get(object.short) ?? []), object]);
  }
  const objects = new Map<string, ComputerObject>();
  const missing: string[] = [];
  const ambiguous: string[] = [];
  for (const host of input.hosts) {
    const matches = found.get(host.short) ?? [];
    if (matches.length === 0) missing.push(host.short);
    else if (matches.length > 1) ambiguous.push(host.short);
    else objects.set(host.short, matches[0]!);
  }
  const targets: TargetNames[] = [...objects.values()].map((object) =>
    targetNames(object.short, input.domain, object.dnsHostName),
  );
  const wanted = new Map<string, string[]>();
  for (const short of objects.keys()) wanted.set(short, wantedValues(short, targets, input.services));
  const withoutMigrationSpn = [...objects.values()]
    .filter((object) => !hasMigrationSpn(object))
    .map((object) => object.short);
  return { objects, missing, ambiguous, withoutMigrationSpn, wanted };
}

export interface DelegationPlan {
  read: MeshRead;
  changes: HostChange[];
}

export type PlanMode = { kind: 'apply' } | { kind: 'remove'; resetFlags: boolean };

function diff(mode: PlanMode, object: ComputerObject, wanted: readonly string[]): HostChange {
  return mode.kind === 'apply' ? diffForApply(object, wanted) : diffForRemove(object, wanted, mode.resetFlags);
}

/** Read once and compute every host's change (no-op hosts included, with empty lists). Nothing is written. */
export async function planDelegation(
  directory: Directory,
  input: MeshInput,
  mode: PlanMode = { kind: 'apply' },
): Promise<DelegationPlan> {
  const read = await readMesh(directory, input);
  const changes = [...read.objects.values()].map((object) => diff(mode, object, read.wanted.get(object.short) ?? []));
  return { read, changes };
}

export type HostOutcome =
  | { host: string; status: 'unchanged' }
  | {
      host: string;
      status: 'changed';
      added: string[];
      removed: string[];
      userAccountControl: { from: number; to: number } | null;
      attempts: number;
    }
  | { host: string; status: 'failed'; error: string; code: string; attempts: number };

export interface ExecuteOptions {
  /** Modifies in flight on the one connection. */
  concurrency?: number;
  /** Attempts per host when the object changed between read and write. */
  maxAttempts?: number;
  events?: EventSink;
}

// Results that mean "the object is not what we read": a value we add appeared, one we delete (or
// the old userAccountControl) is gone. The whole modify was rejected; re-read and try again.
const CONFLICT_CODES = new Set([16 /* noSuchAttribute */, 20 /* attributeOrValueExists */]);

async function readOne(directory: Directory, dn: string): Promise<ComputerObject> {
  const [entry] = await directory.search(dn, { scope: 'base', attributes: ATTRIBUTES });
  if (!entry) throw new Error(`${dn} disappeared`);
  return toComputerObject(entry);
}

function modifyRequest(hostChange: HostChange) {
  const changes = [];
  if (hostChange.remove.length > 0) changes.push(ldapChange('delete', ALLOWED_TO_DELEGATE_TO, hostChange.remove));
  if (hostChange.add.length > 0) changes.push(ldapChange('add', ALLOWED_TO_DELEGATE_TO, hostChange.add));
  if (hostChange.userAccountControl) {
    // Compare-and-swap: the delete only matches the exact value read, so a concurrent change fails the modify.
    changes.push(ldapChange('delete', 'userAccountControl', [String(hostChange.userAccountControl.from)]));
    changes.push(ldapChange('add', 'userAccountControl', [String(hostChange.userAccountControl.to)]));
  }
  return changes;
}

/** Send each host's change (one modify per host), retrying a host whose object changed since it was read. */
export async function executePlan(
  directory: Directory,
  plan: DelegationPlan,
  mode: PlanMode,
  options: ExecuteOptions = {},
): Promise<HostOutcome[]> {
  const events = options.events ?? silentSink;
  const maxAttempts = options.maxAttempts ?? 5;
  const phase = mode.kind;
  const settled = await mapLimit(plan.changes, options.concurrency ?? 8, async (initial): Promise<HostOutcome> => {
    let current = initial;
    for (let attempt = 1; ; attempt++) {
      if (isNoop(current)) {
        events({
          subject: current.host,
          phase,
          status: 'skipped',
          message: attempt === 1 ? 'nothing to change' : 'done by someone else',
        });
        return { host: current.host, status: 'unchanged' };
      }
      try {
        await directory.modify(current.dn, modifyRequest(current));
        events({ subject: current.host, phase, status: 'done', message: summary(current) });
        return {
          host: current.host,
          status: 'changed',
          added: current.add,
          removed: current.remove,
          userAccountControl: current.userAccountControl,
          attempts: attempt,
        };
      } catch (error) {
        const code = ldapResultCode(error);
        if (code !== undefined && CONFLICT_CODES.has(code) && attempt < maxAttempts) {
          events({ subject: current.host, phase, status: 'progress', message: 'changed since read; reading it again' });
          current = diff(mode, await readOne(directory, current.dn), plan.read.wanted.get(current.host) ?? []);
          continue;
        }
        const failure = directoryError(error, `modify ${current.dn}`);
        events({ subject: current.host, phase, status: 'failed', message: failure.message });
        return { host: current.host, status: 'failed', error: failure.message, code: failure.code, attempts: attempt };
      }
    }
  });
  return settled.map((result, i) =>
    result.ok
      ? result.value
      : {
          host: plan.changes[i]!.host,
          status: 'failed',
          error: describeError(result.error),
          code: 'LDAP_FAILED',
          attempts: 1,
        },
  );
}

function summary(hostChange: HostChange): string {
  const parts: string[] = [];
  if (hostChange.add.length) parts.push(`+${hostChange.add.length} value(s)`);
  if (hostChange.remove.length) parts.push(`-${hostChange.remove.length} value(s)`);
  if (hostChange.userAccountControl)
    parts.push(
      `userAccountControl ${hex(hostChange.userAccountControl.from)} -> ${hex(hostChange.userAccountControl.to)}`,
    );
  return parts.join(', ');
}

export function hex(value: number): string {
  return `0x${value.toString(16)}`;
}

export interface VerifyResult {
  ok: boolean;
  gaps: HostGap[];
  missing: string[];
  ambiguous: string[];
}

/** One search; every pair present, protocol transition on, unconstrained off. */
export async function verifyDelegation(
  directory: Directory,
  input: MeshInput,
): Promise<VerifyResult & { read: MeshRead }> {
  const read = await readMesh(directory, input);
  const gaps: HostGap[] = [];
  for (const object of read.objects.values()) {
    const gap = gapOf(object, read.wanted.get(object.short) ?? []);
    if (gap) gaps.push(gap);
  }
  return {
    ok: gaps.length === 0 && read.missing.length === 0 && read.ambiguous.length === 0,
    gaps,
    missing: read.missing,
    ambiguous: read.ambiguous,
    read,
  };
}
