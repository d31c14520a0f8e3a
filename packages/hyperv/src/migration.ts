/**
 * Live migration with Kerberos on the Hyper-V hosts of a delegation mesh (`labctl delegation
 * apply --configure-hosts`): one `configure_migration` script run per host, over the same SSH
 * transport and `hosts:` list the Hyper-V provider uses. The delegation host list holds AD names
 * (hv01, hv02.lab.example); each is mapped to its entry in `hosts:` before anything is contacted,
 * and a name without an entry is a usage error (exit 2). Hosts are independent: one that cannot be
 * reached or fails is reported, the others are done, and a re-run finishes (the script changes
 * only what is not already set).
 */
import { mapLimit } from '@labctl/core/concurrency';
import { describeError, isLabctlError, UsageError } from '@labctl/core/errors';
import { type EventSink, silentSink } from '@labctl/core/events';
import type { LabSpec, LoadedLabFile } from '@labctl/core/spec';
import { PowerShellSession, type ScriptRunLog } from '@labctl/remote/powershell';
import { connectTarget, scriptRunLogger } from './connect.js';
import { objectArray, stringArray } from './parse.js';
import type { ClosableRunner } from './provider.js';
import { SCRIPTS } from './scripts/index.js';
import { hyperVHosts, parseHyperVSettings } from './settings.js';

/** What each setting is changed with (for people; the script calls the cmdlets itself). */
export const MIGRATION_COMMANDS = {
  migrationEnabled: 'Enable-VMMigration',
  authenticationType: 'Set-VMHost -VirtualMachineMigrationAuthenticationType Kerberos',
} as const;
export type MigrationSetting = keyof typeof MIGRATION_COMMANDS;

/** One delegation host and where to reach it. */
export interface MigrationTarget {
  /** The AD short name, upper case (HV01): the delegation report's key. */
  host: string;
  /** Its entry in `hosts:` of labctl.yaml. */
  labHost: string;
  /** SSH target: user@host[:port], or `local` (PowerShell on this machine). */
  target: string;
  proxyJump?: string;
}

/**
 * Maps the delegation hosts (AD names) to `hosts:` entries: an entry whose name equals the given
 * name or whose first DNS label equals the AD short name (case-insensitive). Refuses (exit 2) when
 * a host has no entry or more than one.
 */
export function migrationTargets(
  spec: LabSpec,
  hosts: ReadonlyArray<{ given: string; short: string }>,
): MigrationTarget[] {
  const entries = hyperVHosts(spec);
  const missing: string[] = [];
  const ambiguous: string[] = [];
  const targets: MigrationTarget[] = [];
  for (const host of hosts) {
    const exact = entries.filter((entry) => entry.name.toLowerCase() === host.given.toLowerCase());
    const matches =
      exact.length > 0
        ? exact
        : entries.filter((entry) => (entry.name.split('.')[0] ?? '').toUpperCase() === host.short);
    if (matches.length === 0) missing.push(host.given);
    else if (matches.length > 1) ambiguous.push(`${host.given} (${matches.map((entry) => entry.name).join(', ')})`);
    else
      targets.push({
        host: host.short,
        labHost: matches[0]!.name,
        target: matches[0]!.target,
        ...(matches[0]!.proxyJump ? { proxyJump: matches[0]!.proxyJump } : {}),
      });
  }
  if (missing.length > 0) {
    throw new UsageError(
      'MIGRATION_HOST_UNKNOWN',
      `--configure-hosts: not in hosts: of labctl.yaml: ${missing.join(', ')}`,
      {
        hint: `Add each Hyper-V host with its SSH address, e.g. hosts: [{ name: ${missing[0]}, address: admin@${missing[0]}.lab.example }]; nothing was changed.`,
      },
    );
  }
  if (ambiguous.length > 0) {
    throw new UsageError(
      'MIGRATION_HOST_AMBIGUOUS',
      `--configure-hosts: more than one entry in hosts: answers to ${ambiguous.join('; ')}`,
      {
        hint: 'Give the hosts: entry the exact name used for the delegation; nothing was changed.',
      },
    );
  }
  return targets;
}

/** The live-migration settings of a host, as the script read them. */
export interface MigrationSettings {
  computerName: string;
  fqdn: string;
  migrationEnabled: boolean;
  /** CredSSP or Kerberos. */
  authenticationType: string;
  useAnyNetwork: boolean;
  /** Subnets from Get-VMMigrationNetwork; null when they could not be read. */
  migrationNetworks: string[] | null;
  maximumMigrations: number;
}

export interface MigrationStep {
  setting: MigrationSetting;
  command: string;
  from: boolean | string;
  to: boolean | string;
  /** changed: done now; unchanged: already so; needed: a read-only run found it missing; failed: the cmdlet failed. */
  status: 'changed' | 'unchanged' | 'needed' | 'failed';
  error?: string;
  code?: string;
}

export interface HostMigrationOutcome {
  host: string;
  labHost: string;
  target: string;
  /**
   * changed / unchanged (apply); needs-change / unchanged (read-only); failed: not reached, or a
   * step failed; skipped: not attempted (its delegation is not in place).
   */
  status: 'changed' | 'unchanged' | 'needs-change' | 'failed' | 'skipped';
  settings?: MigrationSettings;
  steps: MigrationStep[];
  warnings: string[];
  error?: string;
  code?: string;
}

/** The authentication type's name whatever the host printed: 5.1 numbers, 7 names. */
export function migrationAuthName(value: unknown): string {
  if (value === 0 || value === '0') return 'CredSSP';
  if (value === 1 || value === '1') return 'Kerberos';
  return typeof value === 'string' ? value : String(value);
}

/** configure_migration's and move_vms' settings as the host printed them. */
export interface RawSettings {
  computerName?: unknown;
  fqdn?: unknown;
  migrationEnabled?: unknown;
  authenticationType?: unknown;
  useAnyNetwork?: unknown;
  migrationNetworks?: unknown;
  maximumMigrations?: unknown;
}

interface RawStep {
  setting: MigrationSetting;
  from: unknown;
  to: unknown;
  needed: unknown;
  changed: unknown;
  ok: unknown;
  error?: { message?: string; fqid?: string } | null;
}

interface RawResult {
  applied: boolean;
  before: RawSettings;
  after: RawSettings;
  steps: unknown;
}

export function settingsOf(raw: RawSettings): MigrationSettings {
  return {
    computerName: String(raw.computerName ?? ''),
    fqdn: String(raw.fqdn ?? ''),
    migrationEnabled: raw.migrationEnabled === true || raw.migrationEnabled === 'True',
    authenticationType: migrationAuthName(raw.authenticationType),
    useAnyNetwork: raw.useAnyNetwork === true || raw.useAnyNetwork === 'True',
    migrationNetworks:
      raw.migrationNetworks === null || raw.migrationNetworks === undefined ? null : stringArray(raw.migrationNetworks),
    maximumMigrations: Number(raw.maximumMigrations ?? 0),
  };
}

function stepOf(raw: RawStep, applied: boolean): MigrationStep {
  const setting = raw.setting;
  const step: MigrationStep = {
    setting,
    command: MIGRATION_COMMANDS[setting] ?? String(setting),
    from: setting === 'authenticationType' ? migrationAuthName(raw.from) : (raw.from as boolean),
    to: setting === 'authenticationType' ? migrationAuthName(raw.to) : (raw.to as boolean),
    status: raw.needed !== true ? 'unchanged' : !applied ? 'needed' : raw.ok !== true ? 'failed' : 'changed',
  };
  if (raw.ok !== true && raw.error) {
    step.status = 'failed';
    step.error = String(raw.error.message ?? 'failed');
    if (raw.error.fqid) step.code = String(raw.error.fqid);
  }
  return step;
}

/** What a host reports that the user should know, beyond changed/unchanged. */
function warningsFor(target: MigrationTarget, settings: MigrationSettings): string[] {
  const warnings: string[] = [];
  const name = settings.computerName.toUpperCase();
  if (name && name !== target.host) {
    warnings.push(
      `${target.labHost} (${target.target}) answers as computer ${settings.computerName}, not ${target.host}: check hosts: in labctl.yaml`,
    );
  }
  if (
    settings.migrationEnabled &&
    !settings.useAnyNetwork &&
    settings.migrationNetworks !== null &&
    settings.migrationNetworks.length === 0
  ) {
    warnings.push(
      `${target.host}: no migration network and UseAnyNetworkForMigration is off, so incoming live migrations have no network: Add-VMMigrationNetwork <subnet> or Set-VMHost -UseAnyNetworkForMigration $true`,
    );
  }
  return warnings;
}

export interface MigrationRunOptions {
  /** apply: change what is missing; read: change nothing (plan, verify). */
  mode: 'apply' | 'read';
  /** Opens the connection to one host (closed after its run). */
  connect(target: MigrationTarget): Promise<ClosableRunner>;
  flavor?: 'powershell' | 'pwsh';
  log?: (entry: ScriptRunLog) => void;
  debug?: boolean;
  /** Hosts worked on at once (default 8). */
  concurrency?: number;
  timeoutMs?: number;
  events?: EventSink;
}

/** One `configure_migration` run per host, at most `concurrency` at once; never throws for one host. */
export async function configureMigration(
  targets: readonly MigrationTarget[],
  options: MigrationRunOptions,
): Promise<HostMigrationOutcome[]> {
  const events = options.events ?? silentSink;
  const apply = options.mode === 'apply';
  const phase = apply ? 'migration' : 'migration-read';
  const settled = await mapLimit(targets, options.concurrency ?? 8, async (target): Promise<HostMigrationOutcome> => {
    events({ subject: target.host, phase, status: 'start', message: target.target });
    const runner = await options.connect(target);
    try {
      const session = new PowerShellSession(runner, {
        host: target.labHost,
        ...(options.flavor ? { flavor: options.flavor } : {}),
        ...(options.log ? { log: options.log } : {}),
        ...(options.debug ? { debug: true } : {}),
      });
      const raw = await session.run<RawResult>(
        SCRIPTS.configure_migration,
        { apply },
        { timeoutMs: options.timeoutMs ?? 120_000 },
      );
      const settings = settingsOf(raw.after ?? raw.before);
      const steps = objectArray<RawStep>(raw.steps).map((step) => stepOf(step, raw.applied === true));
      const failed = steps.filter((step) => step.status === 'failed');
      const status: HostMigrationOutcome['status'] =
        failed.length > 0
          ? 'failed'
          : steps.some((step) => step.status === 'changed')
            ? 'changed'
            : steps.some((step) => step.status === 'needed')
              ? 'needs-change'
              : 'unchanged';
      const outcome: HostMigrationOutcome = {
        ...target,
        status,
        settings,
        steps,
        warnings: warningsFor(target, settings),
      };
      if (failed.length > 0) {
        outcome.error = failed.map((step) => `${step.command}: ${step.error}`).join('; ');
        outcome.code = 'MIGRATION_STEP_FAILED';
      }
      events({
        subject: target.host,
        phase,
        status: failed.length > 0 ? 'failed' : 'done',
        message: outcome.error ?? status,
      });
      return outcome;
    } finally {
      await runner.close?.();
    }
  });
  return settled.map((result, index) => {
    if (result.ok) return result.value;
    const target = targets[index]!;
    const error = describeError(result.error);
    events({ subject: target.host, phase, status: 'failed', message: error });
    return {
      ...target,
      status: 'failed',
      steps: [],
      warnings: [],
      error,
      code: isLabctlError(result.error) ? result.error.code : 'MIGRATION_FAILED',
    };
  });
}

/** Hosts that will not be touched, with why (e.g. their delegation failed), in the outcome shape. */
export function skippedOutcome(target: MigrationTarget, reason: string): HostMigrationOutcome {
  return { ...target, status: 'skipped', steps: [], warnings: [], error: reason, code: 'MIGRATION_SKIPPED' };
}

export interface MigrationConnector {
  connect(target: MigrationTarget): Promise<ClosableRunner>;
  flavor?: 'powershell' | 'pwsh';
  log: (entry: ScriptRunLog) => void;
  debug: boolean;
}

/**
 * Reaches the hosts as the Hyper-V provider does (hyperv: section of labctl.yaml: known_hosts with
 * pinned keys, identity file, shell; `address: local` without SSH), every run appended to `.labctl/powershell.log`. The
 * `hyperv:` section is checked here, so a bad one is a usage error before anything is contacted.
 */
export function migrationConnector(lab: LoadedLabFile, labDir: string, debug = false): MigrationConnector {
  const settings = parseHyperVSettings(lab.spec.hyperv, lab.resolvePath);
  const log = scriptRunLogger(labDir, debug);
  return {
    ...(settings.shell ? { flavor: settings.shell } : {}),
    log,
    debug,
    connect: (target) => connectTarget(target.target, settings, target.proxyJump),
  };
}
