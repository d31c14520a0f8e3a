import { type ExecuteReport, executeReport } from '@labctl/delegation/service';
import { Flags } from '@oclif/core';
import { LabctlCommand } from '../../base-command.js';
import { connectionFlags, connectionSettings, delegationSettings, describeExecuteReport, meshFlags } from './index.js';

export default class DelegationRemove extends LabctlCommand<typeof DelegationRemove> {
  static override summary = 'Remove exactly the delegation values labctl would add for these hosts.';
  static override description =
    "Deletes, from each host's msDS-AllowedToDelegateTo, the values `delegation apply` adds for the same hosts and services " +
    '(in whatever casing they are stored) and nothing else. With --reset-flags it also turns "trusted to authenticate for ' +
    'delegation" off; unconstrained delegation is never turned back on. One search, one modify per host that has something to remove.';
  static override examples = [
    {
      description: 'Undo the mesh for three hosts',
      command:
        '<%= config.bin %> <%= command.id %> --hosts hv01,hv02,hv03 --domain lab.example --ldap-url ldaps://dc01.lab.example --bind-user admin@lab.example',
    },
    {
      description: 'Also clear the protocol-transition bit',
      command: '<%= config.bin %> <%= command.id %> --hosts hv01,hv02 --reset-flags --json',
    },
  ];
  static override flags = {
    ...meshFlags,
    ...connectionFlags,
    'reset-flags': Flags.boolean({
      summary: 'Also clear TRUSTED_TO_AUTH_FOR_DELEGATION (userAccountControl 0x1000000).',
      default: false,
    }),
  };

  async run(): Promise<ExecuteReport> {
    const settings = await delegationSettings(this.flags, await this.labFile(), true);
    const mode = { kind: 'remove', resetFlags: this.flags['reset-flags'] } as const;
    const report = await executeReport(settings, await connectionSettings(settings), mode, {
      events: this.progressSink(),
    });
    const view = describeExecuteReport(report, 'without labctl values');
    for (const note of view.notes) this.note(note);
    this.log(view.text);
    if (view.failure) throw view.failure;
    return report;
  }
}
