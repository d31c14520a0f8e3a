import { delegationScript } from '@labctl/delegation/script';
import { Flags } from '@oclif/core';
import { LabctlCommand } from '../../base-command.js';
import { delegationSettings, meshFlags } from './index.js';

export interface ScriptResult {
  mode: 'apply' | 'remove';
  hosts: string[];
  script: string;
}

export default class DelegationScript extends LabctlCommand<typeof DelegationScript> {
  static override summary =
    'Print an idempotent PowerShell script (ActiveDirectory module) that does what `delegation apply` does.';
  static override description =
    'For admins who prefer to run it themselves on a domain-joined Windows machine with RSAT. The hosts, domain and services ' +
    "are the defaults of the script's param() block, quoted as literals; running it twice changes nothing. Nothing is contacted.";
  static override examples = [
    {
      description: 'Write the script for three hosts',
      command: '<%= config.bin %> <%= command.id %> --hosts hv01,hv02,hv03 --domain lab.example > kcd.ps1',
    },
    {
      description: 'The removal script',
      command: '<%= config.bin %> <%= command.id %> --hosts hv01,hv02 --domain lab.example --remove',
    },
    {
      description:
        'The removal script that also undoes the protocol-transition flag (like delegation remove --reset-flags)',
      command:
        '<%= config.bin %> <%= command.id %> --hosts hv01,hv02 --domain lab.example --remove --reset-flags > kcd-remove.ps1',
    },
  ];
  static override flags = {
    ...meshFlags,
    // No defaults on these two: oclif counts a flag with a default as given (dependsOn).
    remove: Flags.boolean({ summary: 'Print the script that removes the values instead.' }),
    'reset-flags': Flags.boolean({
      summary:
        'With --remove: the script also turns "trusted to authenticate for delegation" off, as `delegation remove --reset-flags` does.',
      dependsOn: ['remove'],
    }),
  };

  async run(): Promise<ScriptResult> {
    const settings = await delegationSettings(this.flags, await this.labFile(), false);
    for (const name of settings.duplicates) this.note(`given more than once (ignored): ${name}`);
    const mode = this.flags.remove ? 'remove' : 'apply';
    const script = delegationScript({
      hosts: settings.hosts,
      domain: settings.domain,
      services: settings.services,
      mode,
      resetFlags: this.flags['reset-flags'] === true,
    });
    this.log(script);
    return { mode, hosts: settings.hosts.map((host) => host.short), script };
  }
}
