import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { loadProfile } from '@labctl/template/catalog';
import { type PrepResult, prepTemplate, StepFailedError } from '@labctl/template/prep';
import { Flags } from '@oclif/core';
import { LabctlCommand } from '../../base-command.js';
import { renderTable } from '../../render.js';
import { profileFlag, stepFlags } from './steps.js';

/** Ask for the sudo password on the terminal without echoing it; undefined when there is no terminal. */
function promptHidden(question: string): Promise<string | undefined> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return Promise.resolve(undefined);
  const muted = new Writable({ write: (_chunk, _encoding, done) => done() });
  process.stderr.write(question);
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  return new Promise((resolve) => {
    rl.question('', (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
  });
}

export default class TemplatePrep extends LabctlCommand<typeof TemplatePrep> {
  static override summary =
    'Prepare a running machine as a golden template over SSH (CentOS "sysprep" steps, idempotent).';
  static override description =
    'Detects the distribution from /etc/os-release (refused unless the profile is for it, or --force), then runs each step: ' +
    'its check, and only when that says "not done" its apply and the check again. Ends with a recap per step: ok / changed / skipped / failed; ' +
    'a second run reports zero changes. The host key must be in known_hosts (or use --accept-new-host-key). A non-root user needs --sudo; ' +
    "sudo's password comes from LABCTL_SUDO_PASSWORD or a prompt and is sent on stdin (sudo -S), never on a command line. " +
    'Steps: see `labctl template steps` and docs/template-steps.md.';
  static override examples = [
    {
      description: 'A fresh CentOS 7 minimal install',
      command: '<%= config.bin %> <%= command.id %> --target root@10.0.0.5',
    },
    {
      description: 'What would change, as an admin user with sudo',
      command: '<%= config.bin %> <%= command.id %> --target admin@tmpl:2222 --sudo --dry-run',
    },
    {
      description: 'Offline template, then seal and power off',
      command: '<%= config.bin %> <%= command.id %> --target root@10.0.0.5 --skip yum-update,yum-clean --seal',
    },
  ];
  static override flags = {
    target: Flags.string({
      char: 't',
      summary: 'The machine: user@host[:port] or an alias from ~/.ssh/config.',
      required: true,
    }),
    profile: profileFlag,
    ...stepFlags,
    'dry-run': Flags.boolean({ summary: 'Run only the checks and list what would change.' }),
    seal: Flags.boolean({
      summary: 'Add the final seal step: scrub keys, identity, logs and history, then power off.',
    }),
    sudo: Flags.boolean({ summary: 'Use sudo when the SSH user is not root.' }),
    'keep-going': Flags.boolean({ summary: 'Continue with the next steps after a failed one.' }),
    force: Flags.boolean({ summary: 'Run on a distribution the profile is not for.' }),
    'known-hosts': Flags.string({
      summary: 'known_hosts file with the pinned host key.',
      description: 'Default: UserKnownHostsFile from ~/.ssh/config, else ~/.ssh/known_hosts.',
      env: 'LABCTL_KNOWN_HOSTS',
    }),
    'accept-new-host-key': Flags.boolean({
      summary: "Record an unknown host's key in the known_hosts file (a changed key is still refused).",
    }),
    identity: Flags.string({
      char: 'i',
      summary: 'Private key file(s) to log in with (default: ssh config, ssh-agent, ~/.ssh/id_*).',
      multiple: true,
    }),
  };

  async run(): Promise<PrepResult> {
    const flags = this.flags;
    const profile = loadProfile(flags.profile);
    const result = await prepTemplate({
      target: flags.target,
      profile,
      selection: {
        ...(flags.step ? { steps: flags.step } : {}),
        ...(flags.skip ? { skip: flags.skip } : {}),
        seal: flags.seal,
      },
      ssh: {
        hostKeyPolicy: flags['accept-new-host-key'] ? 'accept-new' : 'strict',
        ...(flags['known-hosts'] ? { knownHostsFile: flags['known-hosts'] } : {}),
        ...(flags.identity ? { identityFiles: flags.identity } : {}),
      },
      dryRun: flags['dry-run'],
      sudo: flags.sudo,
      keepGoing: flags['keep-going'],
      force: flags.force,
      sudoPassword: () => process.env.LABCTL_SUDO_PASSWORD || promptHidden(`[sudo] password for ${flags.target}: `),
      events: this.progressSink(),
    });
    if (result.hostKey.recorded)
      this.note(`recorded ${result.target}'s host key ${result.hostKey.type} ${result.hostKey.fingerprint}`);
    this.log(
      renderTable(result.steps, [
        { header: 'step', get: (s) => s.id },
        { header: 'status', get: (s) => (s.dryRun && s.status === 'changed' ? 'would change' : s.status) },
        {
          header: 'detail',
          get: (s) =>
            s.failure
              ? `${s.failure.part} exited ${s.failure.exitCode}: ${lastLine(s.failure.stderr)}`
              : (s.reason ?? s.description),
        },
      ]),
    );
    const { ok, changed, skipped, failed } = result.recap;
    this.log(
      `${result.target} (${result.distribution.prettyName}): ok=${ok} changed=${changed} skipped=${skipped} failed=${failed}${result.dryRun ? ' (dry run: nothing was changed)' : ''}`,
    );
    const failedStep = result.steps.find((s) => s.status === 'failed');
    if (failedStep?.failure) {
      throw new StepFailedError(
        'TEMPLATE_STEP_FAILED',
        `step ${failedStep.id} failed on ${result.target}: ${failedStep.failure.part} exited ${failedStep.failure.exitCode}: ${lastLine(failedStep.failure.stderr)}`,
        {
          hint: `The ${failedStep.failure.part} was:\n${failedStep.failure.command}\nstderr:\n${failedStep.failure.stderr.trim()}`,
          details: { recap: result.recap, steps: result.steps },
        },
      );
    }
    return result;
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? '';
}
