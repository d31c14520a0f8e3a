import { LabctlError } from '@labctl/core/errors';
import { type VerifyReport, verifyReport } from '@labctl/delegation/service';
import { LabctlCommand } from '../../base-command.js';
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
    'is a gap too.';
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
  ];
  static override flags = { ...meshFlags, ...connectionFlags };

  async run(): Promise<VerifyReport> {
    const settings = await delegationSettings(this.flags, await this.labFile(), true);
    const report = await verifyReport(settings, await connectionSettings(settings));
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
    if (!report.ok) {
      throw new LabctlError(
        'DELEGATION_GAPS',
        `${report.gaps.length} host(s) not configured, ${report.missing.length + report.ambiguous.length} not found`,
        {
          hint: 'Run `labctl delegation apply` with the same hosts.',
          details: { ...report },
        },
      );
    }
    this.log(`All ${report.hosts.length} hosts can delegate to each other.`);
    return report;
  }
}
