import type { AddressesSummary } from '@labctl/core/flows/addresses';
import { operationExitCode, type OperationSummary } from '@labctl/core/flows/operate';
import type { StartFacts } from '@labctl/core/provider';
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
import { prose } from '../render.js';

export type StartResult = OperationSummary<StartFacts> & { ssh?: AddressesSummary; warnings?: string[] };

export default class Start extends LabctlCommand<typeof Start> {
  static override needsLab = true;
  static override summary = 'Start VMs of the lab and wait until they answer SSH.';
  static override description = prose([
    'Starts the named VMs (or --group, or --all); a VM that is already running is left as it is, so a re-run is a no-op.',
    'Then, unless --no-wait, waits until each started VM answers SSH with its pinned host key and records its address',
    '(as `labctl ip --wait`). One provider call per batch: on Hyper-V one start_vms script per host.',
  ]);
  static override examples = [
    { description: 'Two VMs', command: '<%= config.bin %> <%= command.id %> web-01 web-02' },
    {
      description: 'The web group, without waiting for SSH',
      command: '<%= config.bin %> <%= command.id %> --group web --no-wait',
    },
    { description: 'Everything, as JSON', command: '<%= config.bin %> <%= command.id %> --all --json' },
  ];
  static override strict = false;
  static override args = { names: Args.string({ description: 'VM names (several allowed).' }) };
  static override flags = {
    ...selectionFlags,
    wait: Flags.boolean({ summary: 'Wait until the VMs answer SSH.', default: true, allowNo: true }),
    timeout: Flags.integer({
      summary: "Seconds to wait for SSH (default: the lab file's timeout, else 300).",
      min: 1,
      max: 604_800,
    }),
  };

  async run(): Promise<StartResult> {
    const lab = await this.labFile();
    const store = this.stateStore();
    const startedAt = new Date().toISOString();
    const summary = await runOperation<StartFacts>({
      lab,
      labDir: this.labDir,
      store,
      json: this.jsonEnabled(),
      names: positionalNames(this.argv, [...SELECTION_VALUE_FLAGS, '--timeout']),
      groups: this.flags.group,
      all: this.flags.all,
      operation: 'start',
      call: (provider, vms, events) => provider.start(vms, events),
      // A VM started now ignores DHCP leases older than this start (discovery).
      update: (vm, facts) => ({ state: facts.state, ...(facts.started || !vm.startedAt ? { startedAt } : {}) }),
      dryRun: this.flags['dry-run'],
      note: (message) => this.note(message),
    });
    this.log(operationTable(summary, (facts) => (facts.started ? 'started' : 'already running')));
    for (const hint of operationHints(summary)) this.log(hint);
    let ssh: AddressesSummary | undefined;
    const started = summary.vms.filter((vm) => vm.ok).map((vm) => vm.name);
    if (this.flags.wait && started.length > 0 && !summary.interrupted && !summary.dryRun) {
      ssh = await waitForSsh({
        lab,
        labDir: this.labDir,
        store,
        names: started,
        timeoutS: this.flags.timeout ?? lab.spec.timeout ?? 300,
        events: this.progressSink(),
      });
      for (const vm of ssh.vms)
        if (vm.status !== 'reachable') this.log(`  ${vm.name}: ${vm.status}${vm.hint ? `: ${vm.hint}` : ''}`);
    }
    process.exitCode = operationExitCode(summary) || (ssh?.vms.some((vm) => vm.status !== 'reachable') ? 1 : 0);
    return { ...summary, ...(ssh ? { ssh } : {}), ...(this.warnings.length ? { warnings: this.warnings } : {}) };
  }
}
