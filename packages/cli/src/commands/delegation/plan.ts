import { LabctlError } from '@labctl/core/errors';
import { type PlanReport, planReport } from '@labctl/delegation/service';
import { LabctlCommand } from '../../base-command.js';
import {
  configureHostsFlag,
  describeHosts,
  hostsSetup,
  type MigrationReport,
  runHosts,
} from '../../delegation-hosts.js';
import { renderTable } from '../../render.js';
import {
  connectionFlags,
  connectionSettings,
  delegationSettings,
  findings,
  meshFlags,
  operationsLine,
} from './index.js';

export default class DelegationPlan extends LabctlCommand<typeof DelegationPlan> {
  static override summary = 'Show what `delegation apply` would change; nothing is written.';
  static override description =
    "Reads every host's computer object with one LDAP search and lists, per host, the msDS-AllowedToDelegateTo values to add " +
    'and the userAccountControl change (protocol transition on, unconstrained delegation off). Hosts missing from AD, names given ' +
    'twice and hosts without a "Microsoft Virtual System Migration Service" SPN are reported. The bind password comes from ' +
    'LABCTL_LDAP_PASSWORD, --password-file or a prompt. With --configure-hosts, each Hyper-V host is also read over SSH ' +
    '(Get-VMHost) and the Enable-VMMigration / Set-VMHost -VirtualMachineMigrationAuthenticationType Kerberos it would get ' +
    'are listed; nothing is changed there either. Exit 1 if a host cannot be read.';
  static override examples = [
    {
      description: 'Three hosts over LDAPS with the lab CA',
      command:
        '<%= config.bin %> <%= command.id %> --hosts hv01,hv02,hv03 --domain lab.example --ldap-url ldaps://dc01.lab.example --bind-user admin@lab.example --ca-file lab-ca.pem',
    },
    {
      description: 'Hosts and DC from the delegation: section of labctl.yaml, as JSON',
      command: '<%= config.bin %> <%= command.id %> --json',
    },
    {
      description: 'Also what each Hyper-V host would get (live migration on, Kerberos), read over SSH',
      command: '<%= config.bin %> <%= command.id %> --hosts hv01,hv02,hv03 --configure-hosts',
    },
  ];
  static override flags = { ...meshFlags, ...connectionFlags, ...configureHostsFlag };

  async run(): Promise<PlanReport & { migration?: MigrationReport }> {
    const lab = await this.labFile();
    const settings = await delegationSettings(this.flags, lab, true);
    const setup = this.flags['configure-hosts'] ? hostsSetup(lab, this.labDir, settings) : undefined;
    const report = await planReport(settings, await connectionSettings(settings));
    for (const line of findings(report)) this.note(line);
    if (report.changes.length === 0) {
      this.log(`Nothing to change: ${report.unchanged.length} host(s) already configured.`);
    } else {
      this.log(
        renderTable(report.changes, [
          { header: 'host', get: (c) => c.host },
          { header: 'values to add', get: (c) => c.add.length },
          {
            header: 'userAccountControl',
            get: (c) =>
              c.userAccountControl ? `${c.userAccountControl.from} -> ${c.userAccountControl.to}` : 'unchanged',
          },
        ]),
      );
      for (const c of report.changes) {
        if (c.add.length === 0) continue;
        this.log(`\n${c.host} (${c.dn}) gets:`);
        for (const value of c.add) this.log(`  + ${value}`);
      }
      if (report.unchanged.length) this.log(`\nalready configured: ${report.unchanged.join(', ')}`);
    }
    this.log(operationsLine(report.operations));
    if (!setup) return report;
    const migration = await runHosts(setup, 'read', this.progressSink());
    const hosts = describeHosts(migration);
    for (const note of hosts.notes) this.note(note);
    this.log(hosts.text);
    const full = { ...report, migration };
    if (migration.failed > 0) {
      throw new LabctlError('MIGRATION_READ_FAILED', `${migration.failed} Hyper-V host(s) could not be read`, {
        hint: 'Check that the hosts answer over SSH (hosts: and hyperv: in labctl.yaml) and have the Hyper-V module.',
        details: { ...full },
      });
    }
    return full;
  }
}
