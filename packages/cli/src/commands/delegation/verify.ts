import { LabctlError } from '@labctl/core/errors';
import { type VerifyReport, verifyReport } from '@labctl/delegation/service';
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

export default class DelegationVerify extends LabctlCommand<typeof DelegationVerify> {
  static override summary =
    'Check that every pair of hosts can delegate to each other; exit 1 with the gaps otherwise.';
  static override description =
    'One LDAP search. A host passes when it holds every value `delegation apply` would add, is trusted to authenticate for ' +
    'delegation (userAccountControl 0x1000000) and is not trusted for unconstrained delegation (0x80000). A host missing from AD ' +
    'is a gap too. With --configure-hosts, each Hyper-V host is also read over SSH: live migration must be on with Kerberos ' +
    'authentication; a host that is not, or cannot be read, is a gap.';
  static override examples = [
    {
      description: 'Verify three hosts',
      command:
        '<%= config.bin %> <%= command.id %> --hosts hv01,hv02,hv03 --domain lab.example --ldap-url ldaps://dc01.lab.example --bind-user admin@lab.example',
    },
    {
      description: 'From the lab file, as JSON (gaps in error.details when it fails)',
      command: '<%= config.bin %> <%= command.id %> --json',
    },
    {
      description: "Also the hosts' live-migration settings (over SSH, hosts: in labctl.yaml)",
      command: '<%= config.bin %> <%= command.id %> --configure-hosts',
    },
  ];
  static override flags = { ...meshFlags, ...connectionFlags, ...configureHostsFlag };

  async run(): Promise<VerifyReport & { migration?: MigrationReport }> {
    const lab = await this.labFile();
    const settings = await delegationSettings(this.flags, lab, true);
    const setup = this.flags['configure-hosts'] ? hostsSetup(lab, this.labDir, settings) : undefined;
    const ldap = await verifyReport(settings, await connectionSettings(settings));
    const migration = setup ? await runHosts(setup, 'read', this.progressSink()) : undefined;
    const hostGaps = migration ? migration.needsChange + migration.failed : 0;
    const report = migration ? { ...ldap, migration, ok: ldap.ok && hostGaps === 0 } : ldap;
    for (const line of findings(report)) this.note(line);
    if (report.gaps.length) {
      this.log(
        renderTable(report.gaps, [
          { header: 'host', get: (g) => g.host },
          { header: 'missing values', get: (g) => g.missingValues.length },
          { header: 'protocol transition', get: (g) => (g.protocolTransition ? 'on' : 'OFF') },
          { header: 'unconstrained', get: (g) => (g.unconstrained ? 'ON' : 'off') },
        ]),
      );
      for (const gap of report.gaps) for (const value of gap.missingValues) this.log(`  ${gap.host} lacks ${value}`);
    }
    this.log(operationsLine(report.operations));
    if (migration) {
      const hosts = describeHosts(migration);
      for (const note of hosts.notes) this.note(note);
      this.log(hosts.text);
    }
    if (!report.ok) {
      throw new LabctlError(
        'DELEGATION_GAPS',
        `${report.gaps.length} host(s) not configured, ${report.missing.length + report.ambiguous.length} not found` +
          (migration ? `, ${hostGaps} Hyper-V host(s) without live migration by Kerberos` : ''),
        {
          hint: `Run \`labctl delegation apply${migration ? ' --configure-hosts' : ''}\` with the same hosts.`,
          details: { ...report },
        },
      );
    }
    this.log(
      `All ${report.hosts.length} hosts can delegate to each other${migration ? ' and take live migrations with Kerberos' : ''}.`,
    );
    return report;
  }
}
