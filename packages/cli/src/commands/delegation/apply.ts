import { type ExecuteReport, executeReport } from '@labctl/delegation/service';
import { LabctlCommand } from '../../base-command.js';
import { connectionFlags, connectionSettings, delegationSettings, describeExecuteReport, meshFlags } from './index.js';

export default class DelegationApply extends LabctlCommand<typeof DelegationApply> {
  static override summary = 'Set up Kerberos constrained delegation for live migration between every pair of hosts.';
  static override description =
    'For every ordered pair (A, B), A\'s computer object gets msDS-AllowedToDelegateTo "<service>/B.<domain>" and "<service>/B" ' +
    'for each service, and A is trusted to authenticate for delegation (any protocol) with unconstrained delegation off. ' +
    'One search reads all hosts; each host that lacks something gets one modify with only the missing values (compared ' +
    'case-insensitively) and the userAccountControl swap as compare-and-swap (retried when the object changed meanwhile). ' +
    'Unrelated values and bits are kept. Re-running changes nothing. Exit 1 if any host failed or is missing from AD.';
  static override examples = [
    {
      description: 'Three hosts, password from the environment',
      command:
        'LABCTL_LDAP_PASSWORD=... <%= config.bin %> <%= command.id %> --hosts hv01,hv02,hv03 --domain lab.example --ldap-url ldaps://dc01.lab.example --bind-user admin@lab.example',
    },
    {
      description: 'Hosts from a file, StartTLS on port 389',
      command:
        '<%= config.bin %> <%= command.id %> --hosts-file hyperv.txt --domain lab.example --ldap-url ldap://dc01.lab.example --bind-user admin@lab.example --password-file ~/.ldap-pw',
    },
    {
      description: 'Only the live-migration service',
      command:
        '<%= config.bin %> <%= command.id %> --hosts hv01,hv02 --services "Microsoft Virtual System Migration Service" --json',
    },
  ];
  static override flags = { ...meshFlags, ...connectionFlags };

  async run(): Promise<ExecuteReport> {
    const settings = await delegationSettings(this.flags, await this.labFile(), true);
    const report = await executeReport(
      settings,
      await connectionSettings(settings),
      { kind: 'apply' },
      { events: this.progressSink() },
    );
    const view = describeExecuteReport(report, 'configured');
    for (const note of view.notes) this.note(note);
    this.log(view.text);
    if (view.failure) throw view.failure;
    return report;
  }
}
