import type { AddressesSummary } from '@labctl/core/flows/addresses';
import { operationExitCode, type OperationSummary } from '@labctl/core/flows/operate';
import type { StartFacts, StopFacts } from '@labctl/core/provider';
import { Args, Flags } from '@oclif/core';
import { LabctlCommand } from '../base-command.js';
import {
  operationHints,
  operationTable,
  positionalNames,
  runOperation,
  SELECTION_VALUE_FLAGS,
  selectionFlags,
  waitForSsh,
} from '../operations.js';
import { stopDetail, stopFlags, stopOperation } from './stop.js';
import { prose } from '../render.js';

export interface RestartResult {
  stop: OperationSummary<StopFacts>;
  start?: OperationSummary<StartFacts>;
  ssh?: AddressesSummary;
  warnings?: string[];
}

export default class Restart extends LabctlCommand<typeof Restart> {
  static override needsLab = true;
  static override summary = 'Stop VMs (as labctl stop) and start them again, then wait for SSH.';
  static override description = prose([
    'A stop with the same deadline and --force as `labctl stop`, then a start of every VM that stopped, then a wait until',
    'they answer SSH (unless --no-wait). A VM that fails to stop is not started again.',
  ]);
  static override examples = [
    { description: 'One VM', command: '<%= config.bin %> <%= command.id %> web-01' },
    {
      description: 'The db group, powering off at once',
      command: '<%= config.bin %> <%= command.id %> --group db --force',
    },
  ];
  static override strict = false;
  static override args = { names: Args.string({ description: 'VM names (several allowed).' }) };
  static override flags = {
    ...selectionFlags,
    ...stopFlags,
    wait: Flags.boolean({ summary: 'Wait until the VMs answer SSH again.', default: true, allowNo: true }),
  };

  async run(): Promise<RestartResult> {
    const lab = await this.labFile();
    const store = this.stateStore();
    const common = {
      lab,
      labDir: this.labDir,
      store,
      json: this.jsonEnabled(),
      dryRun: this.flags['dry-run'],
      note: (message: string) => this.note(message),
    };
    const stop = await runOperation<StopFacts>({
      ...common,
      names: positionalNames(this.argv, [...SELECTION_VALUE_FLAGS, '--timeout']),
      groups: this.flags.group,
      all: this.flags.all,
      ...stopOperation(this.flags),
    });
    this.log(operationTable(stop, stopDetail));
    for (const hint of operationHints(stop)) this.log(hint);
    const stopped = stop.vms.filter((vm) => vm.ok).map((vm) => vm.name);
    let start: OperationSummary<StartFacts> | undefined;
    let ssh: AddressesSummary | undefined;
    if (stopped.length > 0 && !stop.interrupted && !stop.dryRun) {
      const startedAt = new Date().toISOString();
      start = await runOperation<StartFacts>({
        ...common,
        names: stopped,
        operation: 'start',
        call: (provider, vms, events) => provider.start(vms, events),
        update: (_vm, facts) => ({ state: facts.state, startedAt }),
      });
      this.log(operationTable(start, () => 'started'));
      for (const hint of operationHints(start)) this.log(hint);
      const started = start.vms.filter((vm) => vm.ok).map((vm) => vm.name);
      if (this.flags.wait && started.length > 0 && !start.interrupted)
        ssh = await waitForSsh({
          lab,
          labDir: this.labDir,
          store,
          names: started,
          timeoutS: lab.spec.timeout ?? 300,
          events: this.progressSink(),
        });
    }
    process.exitCode =
      operationExitCode(stop) ||
      (start ? operationExitCode(start) : 0) ||
      (ssh?.vms.some((vm) => vm.status !== 'reachable') ? 1 : 0);
    return {
      stop,
      ...(start ? { start } : {}),
      ...(ssh ? { ssh } : {}),
      ...(this.warnings.length ? { warnings: this.warnings } : {}),
    };
  }
}
