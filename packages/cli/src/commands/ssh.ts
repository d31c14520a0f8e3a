import { spawn } from 'node:child_process';
import { UsageError } from '@labctl/core/errors';
import { checkName } from '@labctl/core/names';
import { shellWord, sshArgv, sshTargets } from '@labctl/inventory/ssh';
import { Args, Flags } from '@oclif/core';
import { LabctlCommand } from '../base-command.js';
import { prose } from '../render.js';

export interface SshResult {
  name: string;
  /** The ssh command line (argv). */
  argv: string[];
  /** The remote command's exit status (absent with --print). */
  exitCode?: number;
}

export default class Ssh extends LabctlCommand<typeof Ssh> {
  static override needsLab = true;
  static override summary = 'Open an SSH session to a VM (or run a command there), checking its pinned host key.';
  static override description = prose([
    "Runs OpenSSH with the lab's address, user, port and key for the VM, and its host keys from .labctl/known_hosts",
    "under the VM's name (HostKeyAlias), with StrictHostKeyChecking=yes: a VM that shows another key is refused, never",
    'accepted. Words after -- are the remote command; labctl exits with its status (255: ssh itself failed).',
    '--print prints the ssh command line instead (for scripts, scp -o …, or rsync -e).',
  ]);
  static override examples = [
    { description: 'A shell on a VM', command: '<%= config.bin %> <%= command.id %> web-01' },
    { description: 'One command', command: '<%= config.bin %> <%= command.id %> web-01 -- uptime' },
    { description: 'The command line, for scp', command: '<%= config.bin %> <%= command.id %> web-01 --print' },
  ];
  static override strict = false;
  static override args = { name: Args.string({ description: 'The VM.', required: true }) };
  static override flags = {
    print: Flags.boolean({ summary: 'Print the ssh command line instead of running it.' }),
  };

  async run(): Promise<SshResult> {
    const name = checkName('vm', this.args.name, 'ssh');
    const dashes = this.argv.indexOf('--');
    const command = dashes >= 0 ? this.argv.slice(dashes + 1) : [];
    const found = await sshTargets({ labDir: this.labDir });
    const target = found.targets.find((item) => item.name === name);
    if (!target) {
      const skipped = found.skipped.find((item) => item.name === name);
      throw new UsageError(
        'SSH_NO_TARGET',
        skipped ? `cannot reach ${name}: ${skipped.reason}` : `no VM named ${name} in this lab`,
        {
          hint: skipped
            ? 'Start it (labctl start) or find its address (labctl ip --wait).'
            : "labctl list shows the lab's VMs.",
        },
      );
    }
    const argv = ['ssh', ...sshArgv(target, found.knownHostsFile, command)];
    if (this.flags.print || this.jsonEnabled()) {
      this.log(argv.map(shellWord).join(' '));
      return { name, argv };
    }
    const exitCode = await new Promise<number>((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' });
      child.on('error', (err) =>
        reject(
          new UsageError('SSH_MISSING', `could not run ssh: ${err.message}`, {
            hint: "Install OpenSSH's client (openssh-client).",
          }),
        ),
      );
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + 1 : 255)));
    });
    process.exitCode = exitCode;
    return { name, argv, exitCode };
  }
}
