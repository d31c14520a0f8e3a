import { LabctlError, UsageError } from '@labctl/core/errors';
import { type EventSink, silentSink } from '@labctl/core/events';
import {
  connect,
  type ExecResult,
  formatTarget,
  type SshConnection,
  type SshConnectOptions,
  type SshTarget,
  shellQuote,
} from '@labctl/remote/ssh';
import { type Profile, type Selection, type Step, selectSteps } from './catalog.js';
import { stepScript } from './script.js';

/**
 * `labctl template prep`: connect (pinned host key), detect the distribution, get root (directly,
 * sudo without password, or sudo -S with the password on stdin, never in argv), then per step run
 * the check and, when it says "not done", the apply and the check again. Ansible-like recap.
 */
export type StepStatus = 'ok' | 'changed' | 'skipped' | 'failed';

export interface StepResult {
  id: string;
  description: string;
  status: StepStatus;
  /** With --dry-run, `changed` means "would change": only the check ran. */
  dryRun: boolean;
  durationMs: number;
  /** For failed steps: which part failed, its exit code and stderr. */
  failure?: { part: 'check' | 'apply' | 'verify'; exitCode: number | null; stderr: string; command: string };
  reason?: string;
}

export interface Distribution {
  id: string;
  versionId: string;
  prettyName: string;
}

export interface PrepResult {
  target: string;
  profile: string;
  distribution: Distribution;
  privilege: 'root' | 'sudo' | 'sudo-password';
  dryRun: boolean;
  hostKey: { type: string; fingerprint: string; recorded: boolean };
  steps: StepResult[];
  recap: Record<StepStatus, number>;
}

export interface PrepOptions {
  target: string | SshTarget;
  ssh: SshConnectOptions;
  profile: Profile;
  selection?: Selection;
  dryRun?: boolean;
  /** Allow a non-root user to gain root through sudo. */
  sudo?: boolean;
  /** Asked only when sudo wants a password. */
  sudoPassword?: () => Promise<string | undefined> | string | undefined;
  keepGoing?: boolean;
  /** Run on a distribution the profile is not for. */
  force?: boolean;
  stepTimeoutMs?: number;
  events?: EventSink;
  signal?: AbortSignal;
}

export class StepFailedError extends LabctlError {}

export function parseOsRelease(text: string): Distribution {
  const values: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (match?.[1]) values[match[1]] = (match[2] ?? '').replace(/^(["'])(.*)\1$/, '$2');
  }
  return {
    id: values.ID ?? 'unknown',
    versionId: values.VERSION_ID ?? '',
    prettyName: values.PRETTY_NAME ?? values.NAME ?? 'unknown',
  };
}

/** `centos:7` matches ID=centos VERSION_ID=7 or 7.9.2009; `ubuntu:*` any Ubuntu. */
export function distributionSupported(profile: Profile, distribution: Distribution): boolean {
  return profile.distributions.some((entry) => {
    const [id, version = '*'] = entry.split(':');
    if (id !== distribution.id) return false;
    return version === '*' || version === distribution.versionId || version === distribution.versionId.split('.')[0];
  });
}

/** Runs shell text as root on the target, the way the privilege check found. */
class RootRunner {
  constructor(
    private readonly ssh: SshConnection,
    private readonly mode: PrepResult['privilege'],
    private readonly password: string | undefined,
    private readonly timeoutMs: number,
    private readonly signal: AbortSignal | undefined,
  ) {}

  run(script: string): Promise<ExecResult> {
    const bash = `bash -c ${shellQuote(script)}`;
    const options = { timeoutMs: this.timeoutMs, ...(this.signal ? { signal: this.signal } : {}) };
    if (this.mode === 'root') return this.ssh.exec(bash, options);
    if (this.mode === 'sudo') return this.ssh.exec(`sudo -n -- ${bash}`, options);
    return this.ssh.exec(`sudo -S -p '' -- ${bash}`, { ...options, stdin: `${this.password}\n` });
  }
}

async function gainRoot(
  ssh: SshConnection,
  options: PrepOptions,
  where: string,
): Promise<{ mode: PrepResult['privilege']; password?: string }> {
  const uid = await ssh.exec('id -u');
  if (uid.stdout.trim() === '0') return { mode: 'root' };
  if (!options.sudo) {
    throw new UsageError('TEMPLATE_NOT_ROOT', `${where} is not root, and template prep needs root`, {
      hint: 'Pass --sudo to use sudo (password from LABCTL_SUDO_PASSWORD or a prompt), or connect as root.',
    });
  }
  if ((await ssh.exec('sudo -n true')).code === 0) return { mode: 'sudo' };
  const password = await options.sudoPassword?.();
  if (password === undefined || password === '') {
    throw new UsageError('TEMPLATE_SUDO_PASSWORD', `sudo on ${where} wants a password and none was given`, {
      hint: 'Set LABCTL_SUDO_PASSWORD, or run on a terminal to be prompted.',
    });
  }
  const probe = await ssh.exec("sudo -S -p '' true", { stdin: `${password}\n`, timeoutMs: 30_000 });
  if (probe.code !== 0) {
    throw new LabctlError('TEMPLATE_SUDO_REFUSED', `sudo on ${where} refused the password`, {
      hint: 'Check LABCTL_SUDO_PASSWORD, and that the user may run commands as root (sudoers).',
      details: { stderr: probe.stderr.trim().slice(0, 500) },
    });
  }
  return { mode: 'sudo-password', password };
}

export async function prepTemplate(options: PrepOptions): Promise<PrepResult> {
  const events = options.events ?? silentSink;
  const steps = selectSteps(options.profile, options.selection);
  const ssh = await connect(options.target, { ...options.ssh, ...(options.signal ? { signal: options.signal } : {}) });
  const where = formatTarget(ssh.target);
  try {
    const osRelease = await ssh.exec('cat /etc/os-release');
    const distribution = parseOsRelease(osRelease.code === 0 ? osRelease.stdout : '');
    if (!distributionSupported(options.profile, distribution) && !options.force) {
      throw new UsageError(
        'TEMPLATE_UNSUPPORTED_DISTRO',
        `${where} runs ${distribution.prettyName} (${distribution.id} ${distribution.versionId}); profile ${options.profile.name} is for ${options.profile.distributions.join(', ') || 'no distribution'}`,
        { hint: 'Pick the matching --profile, or pass --force to run the steps anyway.', details: { distribution } },
      );
    }
    const root = await gainRoot(ssh, options, where);
    const runner = new RootRunner(ssh, root.mode, root.password, options.stepTimeoutMs ?? 30 * 60_000, options.signal);
    const results: StepResult[] = [];
    let stopped = false;
    for (const step of steps) {
      if (stopped) {
        results.push({
          id: step.id,
          description: step.description,
          status: 'skipped',
          dryRun: !!options.dryRun,
          durationMs: 0,
          reason: 'not run: an earlier step failed',
        });
        continue;
      }
      events({ subject: where, phase: step.id, status: 'start' });
      const result = await runStep(runner, options.profile, step, !!options.dryRun);
      results.push(result);
      const message = result.failure
        ? `${result.failure.part} exited ${result.failure.exitCode}: ${result.failure.stderr.trim().split('\n').at(-1) ?? ''}`
        : result.status;
      events({ subject: where, phase: step.id, status: result.status === 'failed' ? 'failed' : 'done', message });
      if (result.status === 'failed' && !options.keepGoing) stopped = true;
    }
    const recap: Record<StepStatus, number> = { ok: 0, changed: 0, skipped: 0, failed: 0 };
    for (const result of results) recap[result.status]++;
    for (const step of options.profile.steps) if (!steps.includes(step)) recap.skipped++;
    return {
      target: where,
      profile: options.profile.name,
      distribution,
      privilege: root.mode,
      dryRun: !!options.dryRun,
      hostKey: ssh.hostKey,
      steps: results,
      recap,
    };
  } finally {
    await ssh.close();
  }
}

async function runStep(runner: RootRunner, profile: Profile, step: Step, dryRun: boolean): Promise<StepResult> {
  const started = Date.now();
  const base = { id: step.id, description: step.description, dryRun };
  const done = (status: StepStatus, extra: Partial<StepResult> = {}): StepResult => ({
    ...base,
    status,
    durationMs: Date.now() - started,
    ...extra,
  });
  const failed = (part: 'check' | 'apply' | 'verify', result: ExecResult, command: string) =>
    done('failed', { failure: { part, exitCode: result.code, stderr: result.stderr, command } });

  const check = await runner.run(stepScript(profile, step, 'check'));
  if (check.code === 0) return done('ok');
  if (check.code !== 1) return failed('check', check, step.check);
  if (dryRun) return done('changed', { reason: 'would change' });
  const apply = await runner.run(stepScript(profile, step, 'apply'));
  if (apply.code !== 0) return failed('apply', apply, step.apply);
  if (!step.verify) return done('changed');
  const verify = await runner.run(stepScript(profile, step, 'check'));
  if (verify.code !== 0) {
    return failed(
      'verify',
      { ...verify, stderr: verify.stderr || 'the apply succeeded but the check still says the step is not done' },
      step.check,
    );
  }
  return done('changed');
}
