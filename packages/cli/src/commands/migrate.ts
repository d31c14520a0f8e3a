import type { AddressesSummary } from '@labctl/core/flows/addresses';
import { checkHostName, labHostNames, migrateBatch } from '@labctl/core/flows/migrate';
import type { OperationSummary } from '@labctl/core/flows/operate';
import type { MigrateFacts } from '@labctl/core/provider';
import { Args, Flags } from '@oclif/core';
import { LabctlCommand } from '../base-command.js';
import {
  finishMigration,
  MIGRATION_VALUE_FLAGS,
  migrateDetail,
  migratedRecord,
  migrateRequest,
  migrationFlags,
  requireMigration,
} from '../migration.js';
import { operationTable, positionalNames, runOperation, SELECTION_VALUE_FLAGS, selectionFlags } from '../operations.js';
import { prose } from '../render.js';

export type MigrateResult = OperationSummary<MigrateFacts> & { ssh?: AddressesSummary; warnings?: string[] };

export default class Migrate extends LabctlCommand<typeof Migrate> {
  static override needsLab = true;
  static override summary = 'Move VMs to another host of the lab: live while they run, their definition when stopped.';
  static override description = prose([
    'libvirt: `virsh migrate --persistent --undefinesource`, live for a running VM (it keeps running, SSH sessions stay',
    'open), offline for a stopped one. The disks stay where they are, so both hosts must see them at the same path',
    '(shared storage). The state follows the VM; a moved running VM is checked over SSH with its pinned key on the new',
    'host. A VM already on the destination is left alone, so a re-run after an interrupted move finishes it.',
  ]);
  static override examples = [
    { description: 'One VM, live', command: '<%= config.bin %> <%= command.id %> web-01 --to kvm2' },
    {
      description: 'A group, through libvirt’s own connection',
      command: '<%= config.bin %> <%= command.id %> --group web --to kvm2 --tunnelled',
    },
  ];
  static override strict = false;
  static override args = { names: Args.string({ description: 'VM names (several allowed).' }) };
  static override flags = {
    ...selectionFlags,
    to: Flags.string({ summary: 'The host to move them to (a name from hosts: in labctl.yaml).', required: true }),
    ...migrationFlags,
  };

  async run(): Promise<MigrateResult> {
    const lab = await this.labFile();
    const hosts = labHostNames(lab.spec, 'labctl migrate');
    checkHostName(hosts, this.flags.to, '--to');
    requireMigration(lab, this.labDir, hosts[0]!);
    const request = migrateRequest(this.flags);
    const store = this.stateStore();
    const summary = await runOperation<MigrateFacts>({
      lab,
      labDir: this.labDir,
      store,
      json: this.jsonEnabled(),
      names: positionalNames(this.argv, [...SELECTION_VALUE_FLAGS, ...MIGRATION_VALUE_FLAGS]),
      groups: this.flags.group,
      all: this.flags.all,
      operation: 'migrate',
      call: (provider, vms, events) => migrateBatch(provider, vms, () => this.flags.to, request, events),
      update: migratedRecord,
      dryRun: this.flags['dry-run'],
      note: (message) => this.note(message),
    });
    this.log(operationTable(summary, migrateDetail));
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
    return { ...summary, ...(ssh ? { ssh } : {}), ...(this.warnings.length ? { warnings: this.warnings } : {}) };
  }
}
