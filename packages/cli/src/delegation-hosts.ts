/**
 * `--configure-hosts` of `labctl delegation plan|apply|verify`: the Hyper-V side of live migration
 * with Kerberos (Enable-VMMigration, Set-VMHost -VirtualMachineMigrationAuthenticationType Kerberos)
 * on each host of the mesh, through the Hyper-V transport. The LDAP part runs first; a host whose
 * delegation is not in place is skipped, never switched to Kerberos on its own (its migrations
 * would fail where CredSSP worked).
 */
import { LabctlError } from '@labctl/core/errors';
import type { EventSink } from '@labctl/core/events';
import type { LoadedLabFile } from '@labctl/core/spec';
import type { DelegationSettings } from '@labctl/delegation/options';
import type { ExecuteReport } from '@labctl/delegation/service';
import { debugRequested } from '@labctl/hyperv/factory';
import {
  configureMigration,
  type HostMigrationOutcome,
  type MigrationConnector,
  type MigrationTarget,
  migrationConnector,
  migrationTargets,
  skippedOutcome,
} from '@labctl/hyperv/migration';
import { Flags } from '@oclif/core';
import { renderTable } from './render.js';

export const configureHostsFlag = {
  'configure-hosts': Flags.boolean({
    summary: 'Also the Hyper-V side: live migration on, Kerberos authentication (over SSH, hosts: of labctl.yaml).',
    description:
      'Each host of the mesh is looked up by name in hosts: of labctl.yaml (its SSH address; the hyperv: section gives ' +
      'known_hosts, identity and shell). apply runs Enable-VMMigration and Set-VMHost ' +
      '-VirtualMachineMigrationAuthenticationType Kerberos where they are not already so, after the LDAP part, and skips ' +
      'hosts whose delegation failed; plan and verify only read. One PowerShell run per host.',
    default: false,
  }),
};

export interface MigrationReport {
  /** PowerShell script runs (one per host reached). */
  scriptRuns: number;
  changed: number;
  unchanged: number;
  needsChange: number;
  failed: number;
  skipped: number;
  outcomes: HostMigrationOutcome[];
}

export interface HostsSetup {
  targets: MigrationTarget[];
  connector: MigrationConnector;
}

/** Everything that can be refused is checked here, before LDAP or SSH: unknown hosts, a bad hyperv: section. */
export function hostsSetup(lab: LoadedLabFile, labDir: string, settings: DelegationSettings): HostsSetup {
  const targets = migrationTargets(lab.spec, settings.hosts);
  return { targets, connector: migrationConnector(lab, labDir, debugRequested()) };
}

export async function runHosts(
  setup: HostsSetup,
  mode: 'apply' | 'read',
  events: EventSink,
  skip: Map<string, string> = new Map(),
): Promise<MigrationReport> {
  const run = setup.targets.filter((target) => !skip.has(target.host));
  let scriptRuns = 0;
  const done = await configureMigration(run, {
    mode,
    connect: setup.connector.connect,
    ...(setup.connector.flavor ? { flavor: setup.connector.flavor } : {}),
    log: (entry) => {
      scriptRuns++;
      setup.connector.log(entry);
    },
    debug: setup.connector.debug,
    events,
  });
  const byHost = new Map(done.map((outcome) => [outcome.host, outcome]));
  const outcomes = setup.targets.map(
    (target) => byHost.get(target.host) ?? skippedOutcome(target, skip.get(target.host) ?? 'skipped'),
  );
  const count = (status: HostMigrationOutcome['status']) =>
    outcomes.filter((outcome) => outcome.status === status).length;
  return {
    scriptRuns,
    changed: count('changed'),
    unchanged: count('unchanged'),
    needsChange: count('needs-change'),
    failed: count('failed'),
    skipped: count('skipped'),
    outcomes,
  };
}

function details(outcome: HostMigrationOutcome): string {
  if (outcome.status === 'failed' || outcome.status === 'skipped') {
    const done = outcome.steps.filter((step) => step.status === 'changed').map((step) => `done: ${step.command}`);
    return [...done, outcome.error ?? ''].filter(Boolean).join('; ');
  }
  const settings = outcome.settings;
  const now = settings ? `migration ${settings.migrationEnabled ? 'on' : 'OFF'}, ${settings.authenticationType}` : '';
  if (outcome.status === 'unchanged') return `already so: ${now}`;
  const steps = outcome.steps.filter((step) => step.status === 'changed' || step.status === 'needed');
  return `${outcome.status === 'changed' ? 'ran' : 'would run'}: ${steps.map((step) => step.command).join('; ')}`;
}

/** The hosts table, the warnings the hosts gave, and the run count. */
export function describeHosts(report: MigrationReport): { notes: string[]; text: string } {
  const table = renderTable(report.outcomes, [
    { header: 'host', get: (outcome) => outcome.host },
    { header: 'ssh', get: (outcome) => outcome.target },
    { header: 'migration', get: (outcome) => outcome.status },
    { header: 'details', get: details },
  ]);
  return {
    notes: report.outcomes.flatMap((outcome) => outcome.warnings),
    text: `\nHyper-V hosts (live migration with Kerberos):\n${table}\nhost script runs: ${report.scriptRuns}`,
  };
}

/**
 * apply: exit 1 when a host failed or was skipped, or the LDAP part already failed (`prior`); the
 * error carries the whole report, Hyper-V hosts included.
 */
export function hostsFailure(
  report: ExecuteReport & { migration: MigrationReport },
  prior: LabctlError | undefined,
): LabctlError | undefined {
  const migration = report.migration;
  const problems = [];
  if (migration.failed) problems.push(`${migration.failed} Hyper-V host(s) failed`);
  if (migration.skipped) problems.push(`${migration.skipped} Hyper-V host(s) skipped`);
  if (problems.length === 0 && !prior) return undefined;
  const message = prior
    ? `${prior.message}${problems.length ? `; ${problems.join('; ')}` : ''}`
    : `not every host is done (${problems.join('; ')})`;
  return new LabctlError('DELEGATION_INCOMPLETE', message, {
    hint: 'Fix what the tables say and run the same command again; hosts already done are left as they are.',
    details: { ...report },
  });
}
