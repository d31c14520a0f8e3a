import { LabctlError } from '@labctl/core/errors';
import type { AddressesSummary } from '@labctl/core/flows/addresses';
import { checkHostName, evacuationTargets, labHostNames, migrateBatch } from '@labctl/core/flows/migrate';
import type { OperationSummary } from '@labctl/core/flows/operate';
import type { HostCapacity } from '@labctl/core/placement';
import type { MigrateFacts } from '@labctl/core/provider';
import { Args, Flags } from '@oclif/core';
import { LabctlCommand } from '../base-command.js';
import {
  finishMigration,
  migrateDetail,
  migratedRecord,
  migrateRequest,
  migrationFlags,
  requireMigration,
} from '../migration.js';
import { operationTable, runOperation } from '../operations.js';
import { DEFAULT_PROVIDER, makeProvider } from '../providers.js';
import { prose } from '../render.js';

export type EvacuateResult = OperationSummary<MigrateFacts> & {
  host: string;
  targets: Record<string, string>;
  ssh?: AddressesSummary;
  warnings?: string[];
};

export default class Evacuate extends LabctlCommand<typeof Evacuate> {
  static override needsLab = true;
  static override summary = 'Move every VM of the lab off a host (maintenance), placed on the other hosts.';
  static override description = prose([
    'Each VM the state records on HOST goes to the host with the most free memory left (the rule `create` places',
    'by), among --to hosts or else every other host of the lab; running VMs move live, stopped ones offline.',
    'Migrations run a few at a time per host; the table gives the time each VM took. A re-run moves what is left.',
  ]);
  static override examples = [
    { description: 'Empty kvm1', command: '<%= config.bin %> <%= command.id %> kvm1' },
    { description: 'Empty kvm1 onto kvm3 only', command: '<%= config.bin %> <%= command.id %> kvm1 --to kvm3' },
  ];
  static override args = { host: Args.string({ description: 'The host to empty.', required: true }) };
  static override flags = {
    to: Flags.string({
      summary: 'Hosts that may take the VMs (several allowed; default: every other host).',
      multiple: true,
    }),
    'dry-run': Flags.boolean({ summary: 'Show where each VM would go; move nothing.' }),
    ...migrationFlags,
  };

  async run(): Promise<EvacuateResult> {
    const lab = await this.labFile();
    const host = this.args.host;
    const hosts = labHostNames(lab.spec, 'labctl evacuate');
    checkHostName(hosts, host, 'HOST');
    for (const target of this.flags.to ?? []) checkHostName(hosts, target, '--to');
    requireMigration(lab, this.labDir, hosts[0]!);
    const targetNames = (this.flags.to ?? hosts).filter((name) => name !== host);
    const state = await this.stateStore().read();
    const vms = (state?.vms ?? []).filter((vm) => vm.host === host && vm.state !== 'missing');
    const provider = lab.spec.provider ?? DEFAULT_PROVIDER;
    const capacities: HostCapacity[] = [];
    // Every target host asked at once (one slow host does not hold up the others).
    const reports = await Promise.all(
      targetNames.map((name) => makeProvider(provider, { lab, labDir: this.labDir, connection: name }).hostReport?.()),
    );
    reports.forEach((report, index) => {
      const name = targetNames[index]!;
      if (report?.reachable)
        capacities.push({ name, freeMemoryBytes: report.freeMemoryBytes ?? 0, vmCount: report.vms ?? 0 });
      else if (report) this.note(`host ${name} cannot take VMs: ${report.error ?? 'unreachable'}`);
    });
    if (vms.length > 0 && capacities.length === 0)
      throw new LabctlError(
        'HOSTS_UNREACHABLE',
        `no host can take ${host}'s VMs: ${targetNames.join(', ')} cannot be reached`,
        {
          hint: 'Check the hosts with `labctl hosts`.',
        },
      );
    const targets = evacuationTargets(vms, capacities);
    const request = migrateRequest(this.flags);
    const store = this.stateStore();
    const summary =
      vms.length === 0
        ? { lab: lab.lab, operation: 'evacuate', vms: [], interrupted: false }
        : await runOperation<MigrateFacts>({
            lab,
            labDir: this.labDir,
            store,
            json: this.jsonEnabled(),
            names: vms.map((vm) => vm.name),
            operation: 'evacuate',
            call: (p, batch, events) => migrateBatch(p, batch, (vm) => targets.get(vm.name)!, request, events),
            update: migratedRecord,
            dryRun: this.flags['dry-run'],
            note: (message) => this.note(message),
          });
    if (summary.dryRun)
      this.log(
        `Would move: ${vms.map((vm) => `${vm.name} -> ${targets.get(vm.name)}`).join(', ')} (nothing changed: --dry-run)`,
      );
    else if (vms.length === 0) this.log(`No VM of the lab is on ${host}.`);
    else this.log(operationTable(summary, migrateDetail));
    const { ssh, exitCode } = await finishMigration(summary, {
      lab,
      labDir: this.labDir,
      store,
      wait: this.flags.wait,
      timeoutS: this.flags.timeout ?? lab.spec.timeout ?? 300,
      events: this.progressSink(),
      log: (line) => this.log(line),
    });
    process.exitCode = exitCode;
    return {
      ...summary,
      host,
      targets: Object.fromEntries(targets),
      ...(ssh ? { ssh } : {}),
      ...(this.warnings.length ? { warnings: this.warnings } : {}),
    };
  }
}
