import { sshConfigText, sshTargets } from '@labctl/inventory/ssh';
import type { SkippedVm } from '@labctl/inventory/model';
import { LabctlCommand } from '../base-command.js';
import { prose } from '../render.js';

export interface SshConfigResult {
  lab: string;
  config: string;
  hosts: string[];
  skipped: SkippedVm[];
  knownHostsFile: string;
}

export default class SshConfig extends LabctlCommand<typeof SshConfig> {
  static override needsLab = true;
  static override summary = "Print OpenSSH Host blocks for the lab's VMs, to Include from ~/.ssh/config.";
  static override description = prose([
    'One Host block per reachable VM: its address, user, port and key, and its pinned host keys in .labctl/known_hosts',
    "under the VM's name (HostKeyAlias, StrictHostKeyChecking yes). Then plain `ssh web-01`, scp, rsync and VS Code's",
    'Remote-SSH reach the VMs as labctl does. Re-run after VMs change address.',
  ]);
  static override examples = [
    {
      description: 'Write it and include it',
      command:
        "<%= config.bin %> <%= command.id %> > ~/.ssh/lab.conf && echo 'Include ~/.ssh/lab.conf' >> ~/.ssh/config",
    },
  ];

  async run(): Promise<SshConfigResult> {
    const lab = await this.labFile();
    const found = await sshTargets({ labDir: this.labDir });
    const config = sshConfigText(lab.lab, found.targets, found.knownHostsFile);
    if (!this.jsonEnabled()) process.stdout.write(config);
    for (const skipped of found.skipped) this.note(`${skipped.name} left out: ${skipped.reason}`);
    return {
      lab: lab.lab,
      config,
      hosts: found.targets.map((target) => target.name),
      skipped: found.skipped,
      knownHostsFile: found.knownHostsFile,
    };
  }
}
