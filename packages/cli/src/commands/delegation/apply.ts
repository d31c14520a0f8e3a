import { applyDelegation, type ExecuteReport } from '@labctl/delegation/service';
import { LabctlCommand } from '../../base-command.js';
import {
  configureHostsFlag,
  describeHosts,
  hostsFailure,
  hostsSetup,
  type MigrationReport,
  runHosts,
} from '../../delegation-hosts.js';
import { connectionFlags, connectionSettings, delegationSettings, describeExecuteReport, meshFlags } from './index.js';

export type ApplyReport = ExecuteReport & { migration?: MigrationReport };

export default class DelegationApply extends LabctlCommand<typeof DelegationApply> {
  static override summary = 'Set up Kerberos constrained delegation for live migration between every pair of hosts.';
  static override description =
    'For every ordered pair (A, B), A\'s computer object gets msDS-AllowedToDelegateTo "<service>/B.<domain>" and "<service>/B" ' +
    'for each service, and A is trusted to authenticate for delegation (any protocol) with unconstrained delegation off. ' +
    'One search reads all hosts; each host that lacks something gets one modify with only the missing values (compared ' +
    'case-insensitively) and the userAccountControl swap as compare-and-swap (retried when the object changed meanwhile). ' +
    'Unrelated values and bits are kept. Re-running changes nothing. Exit 1 if any host failed or is missing from AD.\n' +
    'With --configure-hosts, then on each Hyper-V host over SSH (hosts: in labctl.yaml): Enable-VMMigration and ' +
    'Set-VMHost -VirtualMachineMigrationAuthenticationType Kerberos where not already so. A host whose delegation failed ' +
    'is skipped; a host that fails does not stop the others; re-running finishes.';
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
    {
      description:
        'Delegation, then live migration with Kerberos on each host (SSH addresses from hosts: in labctl.yaml)',
      command: '<%= config.bin %> <%= command.id %> --hosts hv01,hv02,hv03 --configure-hosts',
    },
  ];
  static override flags = { ...meshFlags, ...connectionFlags, ...configureHostsFlag };

  async run(): Promise<ApplyReport> {
    const lab = await this.labFile();
    const settings = await delegationSettings(this.flags, lab, true);
    // Refused before anything is contacted: a host not in hosts:, a bad hyperv: section.
    const setup = this.flags['configure-hosts'] ? hostsSetup(lab, this.labDir, settings) : undefined;
    const events = this.progressSink();
    // LDAP first; the Hyper-V side only for hosts whose delegation is in place (the rule lives in the service).
    const { report, hosts: migration } = await applyDelegation(settings, await connectionSettings(settings), {
      events,
      ...(setup ? { configureHosts: (skip: Map<string, string>) => runHosts(setup, 'apply', events, skip) } : {}),
    });
    const view = describeExecuteReport(report, 'configured');
    for (const note of view.notes) this.note(note);
    this.log(view.text);
    if (!migration) {
      if (view.failure) throw view.failure;
      return report;
    }
    const full = { ...report, migration, ok: report.ok && migration.failed === 0 && migration.skipped === 0 };
    const hosts = describeHosts(migration);
    for (const note of hosts.notes) this.note(note);
    this.log(hosts.text);
    const failure = hostsFailure(full, view.failure);
    if (failure) throw failure;
    return full;
  }
}
