import { checkName } from '@labctl/core/names';
import { operationExitCode, type OperationSummary } from '@labctl/core/flows/operate';
import type { SnapshotFacts, SnapshotRequest } from '@labctl/core/provider';
import { Args, Flags } from '@oclif/core';
import { LabctlCommand } from './base-command.js';
import {
  operationHints,
  operationTable,
  positionalNames,
  runOperation,
  SELECTION_VALUE_FLAGS,
  selectionFlags,
} from './operations.js';
import { renderTable } from './render.js';

/**
 * The four `labctl snapshot` commands share everything but the request: one provider call per
 * batch (Hyper-V: one snapshot_vms script per host), a result per VM, and the stack afterwards.
 */
export type SnapshotResult = OperationSummary<SnapshotFacts> & { warnings?: string[] };

export const snapshotArgs = { names: Args.string({ description: 'VM names (several allowed).' }) };
export const snapshotName = Flags.string({ char: 'n', summary: 'The snapshot (default: the newest).' });

export abstract class SnapshotCommand<T extends typeof LabctlCommand<any>> extends LabctlCommand<T> {
  static override needsLab = true;
  static override strict = false;
  static override args = snapshotArgs;

  protected abstract request(): SnapshotRequest;

  protected async runSnapshot(): Promise<SnapshotResult> {
    const request = this.request();
    if (request.name !== undefined) checkName('snapshot', request.name, `snapshot ${request.action}`);
    const lab = await this.labFile();
    const summary = await runOperation<SnapshotFacts>({
      lab,
      labDir: this.labDir,
      store: this.stateStore(),
      json: this.jsonEnabled(),
      names: positionalNames(this.argv, [...SELECTION_VALUE_FLAGS, '--name', '-n', '--type', '--min-free']),
      groups: (this.flags as { group?: string[] }).group,
      all: (this.flags as { all?: boolean }).all,
      operation: `snapshot ${request.action}`,
      call: (provider, vms, events) => provider.snapshot(vms, request, events),
      update: (_vm, facts) => (facts.state ? { state: facts.state } : undefined),
      dryRun: (this.flags as { 'dry-run'?: boolean })['dry-run'],
      note: (message) => this.note(message),
    });
    if (request.action === 'list') {
      const rows = summary.vms.flatMap((vm) =>
        vm.ok
          ? vm.facts.snapshots.map((snapshot) => ({ vm: vm.name, ...snapshot }))
          : [{ vm: vm.name, name: '-', created: undefined, parent: undefined, vmState: `failed: ${vm.error.message}` }],
      );
      this.log(
        rows.length === 0
          ? 'No snapshots.'
          : renderTable(rows, [
              { header: 'vm', get: (row) => row.vm },
              { header: 'snapshot', get: (row) => row.name },
              { header: 'created', get: (row) => row.created ?? '' },
              { header: 'parent', get: (row) => row.parent ?? '' },
              { header: 'vm state', get: (row) => row.vmState ?? '' },
            ]),
      );
    } else {
      this.log(operationTable(summary, (facts) => `${facts.snapshot ?? ''} (${facts.snapshots.length} on the stack)`));
    }
    for (const hint of operationHints(summary)) this.log(hint);
    process.exitCode = operationExitCode(summary);
    return { ...summary, ...(this.warnings.length ? { warnings: this.warnings } : {}) };
  }
}

export { selectionFlags };
