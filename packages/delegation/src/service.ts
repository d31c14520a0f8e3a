/**
 * The delegation commands as library calls: connect, read once, (maybe) write, report. Each
 * returns a plain, JSON-ready report with the number of directory operations it cost.
 */
import type { EventSink } from '@labctl/core/events';
import {
  type DelegationPlan,
  executePlan,
  type HostOutcome,
  hex,
  type MeshInput,
  type PlanMode,
  planDelegation,
  verifyDelegation,
} from './delegation.js';
import { type ConnectOptions, connectDirectory, type Directory, type OperationCounts } from './directory.js';
import { type HostGap, parseHostNames } from './mesh.js';
import type { DelegationSettings } from './options.js';

export interface ConnectionSettings {
  url: string;
  bindUser: string;
  password: string;
  caFile?: string | undefined;
  insecure?: boolean | undefined;
}

interface ReportBase {
  domain: string;
  baseDn: string;
  services: string[];
  hosts: string[];
  /** Names given more than once (ignored after the first). */
  duplicates: string[];
  /** Hosts with no computer object under the base DN. */
  missing: string[];
  /** Hosts that more than one computer object answers to. */
  ambiguous: string[];
  /** Hosts without a `Microsoft Virtual System Migration Service/*` SPN: the Hyper-V role was not seen. */
  withoutMigrationSpn: string[];
  operations: OperationCounts;
}

export interface PlannedHost {
  host: string;
  dn: string;
  add: string[];
  remove: string[];
  userAccountControl: { from: string; to: string } | null;
}

export interface PlanReport extends ReportBase {
  changes: PlannedHost[];
  /** Hosts already as wanted. */
  unchanged: string[];
}

type ChangedOutcome = Extract<HostOutcome, { status: 'changed' }>;
export type ReportedOutcome =
  | Exclude<HostOutcome, ChangedOutcome>
  | (Omit<ChangedOutcome, 'userAccountControl'> & { userAccountControl: { from: string; to: string } | null });

export interface ExecuteReport extends ReportBase {
  ok: boolean;
  outcomes: ReportedOutcome[];
  changed: number;
  unchanged: number;
  failed: number;
}

export interface VerifyReport extends ReportBase {
  ok: boolean;
  gaps: HostGap[];
}

export function meshInput(settings: DelegationSettings): MeshInput {
  return { hosts: settings.hosts, domain: settings.domain, baseDn: settings.baseDn, services: settings.services };
}

async function withDirectory<T>(
  connection: ConnectionSettings,
  work: (directory: Directory) => Promise<T>,
): Promise<T> {
  const options: ConnectOptions = { url: connection.url, bindUser: connection.bindUser, password: connection.password };
  if (connection.caFile !== undefined) options.caFile = connection.caFile;
  if (connection.insecure !== undefined) options.insecure = connection.insecure;
  const directory = await connectDirectory(options);
  try {
    return await work(directory);
  } finally {
    await directory.close();
  }
}

function base(
  settings: DelegationSettings,
  plan: Pick<DelegationPlan, 'read'>,
  operations: OperationCounts,
): ReportBase {
  return {
    domain: settings.domain,
    baseDn: settings.baseDn,
    services: settings.services,
    hosts: settings.hosts.map((host) => host.short),
    duplicates: settings.duplicates,
    missing: plan.read.missing,
    ambiguous: plan.read.ambiguous,
    withoutMigrationSpn: plan.read.withoutMigrationSpn,
    operations: { ...operations },
  };
}

const flagsText = (uac: { from: number; to: number } | null) => (uac ? { from: hex(uac.from), to: hex(uac.to) } : null);

/** What apply (or remove) would do; nothing written. One search. */
export async function planReport(
  settings: DelegationSettings,
  connection: ConnectionSettings,
  mode: PlanMode = { kind: 'apply' },
): Promise<PlanReport> {
  return withDirectory(connection, async (directory) => {
    const plan = await planDelegation(directory, meshInput(settings), mode);
    const active = plan.changes.filter((c) => c.add.length || c.remove.length || c.userAccountControl);
    return {
      ...base(settings, plan, directory.operations),
      changes: active.map((c) => ({
        host: c.host,
        dn: c.dn,
        add: c.add,
        remove: c.remove,
        userAccountControl: flagsText(c.userAccountControl),
      })),
      unchanged: plan.changes.filter((c) => !active.includes(c)).map((c) => c.host),
    };
  });
}

/** apply or remove: one search, then one modify per host that needs a change. */
export async function executeReport(
  settings: DelegationSettings,
  connection: ConnectionSettings,
  mode: PlanMode,
  options: { events?: EventSink; concurrency?: number } = {},
): Promise<ExecuteReport> {
  return withDirectory(connection, async (directory) => {
    const plan = await planDelegation(directory, meshInput(settings), mode);
    const outcomes = await executePlan(directory, plan, mode, options);
    const count = (status: HostOutcome['status']) => outcomes.filter((outcome) => outcome.status === status).length;
    const failed = count('failed');
    return {
      ...base(settings, plan, directory.operations),
      ok: failed === 0 && plan.read.missing.length === 0 && plan.read.ambiguous.length === 0,
      outcomes: outcomes.map((outcome) =>
        outcome.status === 'changed'
          ? { ...outcome, userAccountControl: flagsText(outcome.userAccountControl) }
          : outcome,
      ),
      changed: count('changed'),
      unchanged: count('unchanged'),
      failed,
    };
  });
}

/** One search: every pair present, protocol transition set, unconstrained clear. */
export async function verifyReport(
  settings: DelegationSettings,
  connection: ConnectionSettings,
): Promise<VerifyReport> {
  return withDirectory(connection, async (directory) => {
    const result = await verifyDelegation(directory, meshInput(settings));
    return { ...base(settings, result, directory.operations), ok: result.ok, gaps: result.gaps };
  });
}

/** What the directory lacks for one migration, with the command that fixes it (for `labctl migrate`). */
export interface DelegationFinding {
  subject: string;
  problem: string;
  fix: string;
}

/**
 * What the directory lacks for live migrations from `source` to `destination` (AD names, short or
 * FQDN), each with its fix, in one search: the source's computer object must hold every service
 * value for the destination (short and FQDN), be trusted to authenticate for delegation (protocol
 * transition, userAccountControl 0x1000000) and not for unconstrained delegation (0x80000).
 */
export async function migrationDelegationFindings(
  settings: Omit<DelegationSettings, 'hosts' | 'duplicates'>,
  connection: ConnectionSettings,
  source: string,
  destination: string,
): Promise<DelegationFinding[]> {
  const pair = parseHostNames([source, destination]);
  const [from, to] = pair.hosts.map((host) => host.short);
  const fix = `labctl delegation apply --hosts ${from},${to} (with the lab's other hosts)`;
  return withDirectory(connection, async (directory) => {
    const result = await verifyDelegation(directory, meshInput({ ...settings, ...pair }));
    const findings: DelegationFinding[] = [];
    for (const host of result.missing)
      findings.push({
        subject: host,
        problem: `${host} has no computer object under ${settings.baseDn}`,
        fix: 'Join the host to the domain, or set delegation.baseDn to where its object is',
      });
    for (const host of result.ambiguous)
      findings.push({
        subject: host,
        problem: `more than one computer object is called ${host}`,
        fix: 'Remove the stale object, or narrow delegation.baseDn',
      });
    const gap = result.gaps.find((item) => item.host === from);
    if (gap?.missingValues.length)
      findings.push({
        subject: from!,
        problem: `${from} may not delegate to ${gap.missingValues.join(', ')} (msDS-AllowedToDelegateTo)`,
        fix,
      });
    if (gap && !gap.protocolTransition)
      findings.push({
        subject: from!,
        problem: `${from} is not trusted to authenticate for delegation (userAccountControl lacks 0x1000000, "use any authentication protocol")`,
        fix,
      });
    if (gap?.unconstrained)
      findings.push({
        subject: from!,
        problem: `${from} is trusted for unconstrained delegation (userAccountControl 0x80000)`,
        fix,
      });
    return findings;
  });
}

/**
 * Hosts whose LDAP part is not done, and why: the host-side step (migration with Kerberos) must not
 * switch them to Kerberos on their own, since their migrations would then fail where CredSSP worked.
 */
export function hostsToSkip(report: ExecuteReport): Map<string, string> {
  const skip = new Map<string, string>();
  for (const host of report.missing) skip.set(host, 'not in the directory, so no delegation; left as it is');
  for (const host of report.ambiguous) skip.set(host, 'more than one computer object, so no delegation; left as it is');
  for (const outcome of report.outcomes) {
    if (outcome.status === 'failed') skip.set(outcome.host, `its delegation failed (${outcome.error}); left as it is`);
  }
  return skip;
}

/**
 * `apply` with an optional host-side step: the delegation over LDAP first, then `configureHosts`
 * (injected, the way discovery is injected into the create flow) for the hosts whose delegation is in
 * place only; the others are handed to it as skipped, with the reason.
 */
export async function applyDelegation<H>(
  settings: DelegationSettings,
  connection: ConnectionSettings,
  options: { events?: EventSink; configureHosts?: (skip: Map<string, string>) => Promise<H> },
): Promise<{ report: ExecuteReport; hosts?: H }> {
  const report = await executeReport(
    settings,
    connection,
    { kind: 'apply' },
    options.events ? { events: options.events } : {},
  );
  if (!options.configureHosts) return { report };
  return { report, hosts: await options.configureHosts(hostsToSkip(report)) };
}
