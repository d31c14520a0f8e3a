import { operationExitCode, type OperationSummary } from '@labctl/core/flows/operate';
import type { StopFacts } from '@labctl/core/provider';
import { Args, Flags } from '@oclif/core';
import { LabctlCommand } from '../base-command.js';
import {
  operationHints,
  type OperationRun,
  operationTable,
  positionalNames,
  runOperation,
  SELECTION_VALUE_FLAGS,
  selectionFlags,
} from '../operations.js';
import { prose } from '../render.js';

export const stopFlags = {
  force: Flags.boolean({ summary: 'Power off at once, without asking the guest to shut down.' }),
  timeout: Flags.integer({
    summary: 'Seconds each guest gets to shut down (default 120).',
    description: 'When they pass, the VM is powered off, unless --no-power-off.',
    min: 1,
    max: 86_400,
    default: 120,
  }),
  'power-off': Flags.boolean({
    summary: 'Power off a guest that did not shut down within --timeout.',
    description: 'With --no-power-off such a VM is left running and reported as failed (exit 1).',
    default: true,
    allowNo: true,
  }),
};

export type StopResult = OperationSummary<StopFacts> & { warnings?: string[] };

/** The stop operation as `stop` and `restart` run it, from their shared flags. */
export function stopOperation(flags: {
  force: boolean;
  timeout: number;
  'power-off': boolean;
}): Pick<OperationRun<StopFacts>, 'operation' | 'call' | 'update'> {
  return {
    operation: 'stop',
    call: (provider, vms, events) =>
      provider.stop(
        vms,
        { force: flags.force, timeoutS: flags.timeout, forceAfterTimeout: flags['power-off'] },
        events,
      ),
    update: (_vm, facts) => ({ state: facts.state }),
  };
}

export function stopDetail(facts: StopFacts): string {
  if (!facts.stopped) return 'not running';
  return facts.forced ? 'powered off' : 'shut down';
}

export default class Stop extends LabctlCommand<typeof Stop> {
  static override needsLab = true;
  static override summary = 'Shut VMs of the lab down: a guest shutdown with a deadline, then power-off.';
  static override description = prose([
    'Asks each guest to shut down (libvirt: ACPI; Hyper-V: the Shutdown integration service) and waits up to --timeout',
    'seconds for all of them; a guest still running then is powered off (--no-power-off: reported as failed instead).',
    '--force powers off at once. A VM that is not running is left as it is, so a re-run is a no-op. A Hyper-V VM that is',
    'Paused-Critical (its volume is full) is reported as such, with the free space of the volume.',
  ]);
  static override examples = [
    { description: 'Two VMs', command: '<%= config.bin %> <%= command.id %> web-01 web-02' },
    {
      description: 'Everything, giving guests five minutes',
      command: '<%= config.bin %> <%= command.id %> --all --timeout 300',
    },
    { description: 'Pull the plug', command: '<%= config.bin %> <%= command.id %> db-01 --force' },
  ];
  static override strict = false;
  static override args = { names: Args.string({ description: 'VM names (several allowed).' }) };
  static override flags = { ...selectionFlags, ...stopFlags };

  async run(): Promise<StopResult> {
    const lab = await this.labFile();
    const summary = await runOperation<StopFacts>({
      lab,
      labDir: this.labDir,
      store: this.stateStore(),
      json: this.jsonEnabled(),
      names: positionalNames(this.argv, [...SELECTION_VALUE_FLAGS, '--timeout']),
      groups: this.flags.group,
      all: this.flags.all,
      ...stopOperation(this.flags),
      dryRun: this.flags['dry-run'],
      note: (message) => this.note(message),
    });
    this.log(operationTable(summary, stopDetail));
    for (const hint of operationHints(summary)) this.log(hint);
    process.exitCode = operationExitCode(summary);
    return { ...summary, ...(this.warnings.length ? { warnings: this.warnings } : {}) };
  }
}
