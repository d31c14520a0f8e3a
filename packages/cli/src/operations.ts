import { refreshAddresses, type AddressesSummary } from '@labctl/core/flows/addresses';
import type { EventSink } from '@labctl/core/events';
import { operateOnVms, type OperationOptions, type OperationSummary } from '@labctl/core/flows/operate';
import { discover } from '@labctl/discovery/discover';
import type { LoadedLabFile } from '@labctl/core/spec';
import type { StateStore } from '@labctl/core/state';
import { resolve } from 'node:path';
import { Flags } from '@oclif/core';
import { interruptOnSigint } from './interrupt.js';
import { createProgress } from './progress.js';
import { providerCache } from './providers.js';
import { renderTable } from './render.js';

/**
 * What the day-2 commands share (start, stop, restart, snapshot …): picking VMs by name, --group or
 * --all; running the operation through the core flow with progress and Ctrl-C handling; one result
 * table; and waiting for SSH after a start. Commands stay a table of contents.
 */
export const selectionFlags = {
  group: Flags.string({ char: 'g', summary: 'Every VM of this group (several allowed).', multiple: true }),
  all: Flags.boolean({ summary: 'Every VM of the lab.' }),
  'dry-run': Flags.boolean({ summary: 'Check the names and show which VMs it would act on; change nothing.' }),
};

/**
 * A path given on the command line: one on a Hyper-V host (D:\\x, \\\\server\\share) is passed as
 * typed, for the provider to check; anything else is this machine's, made absolute.
 */
export function hostOrLocalPath(value: string): string {
  return /^(?:[A-Za-z]:\\|\\\\)/.test(value) ? value : resolve(value);
}

/** The positional VM names of a non-strict command: words that are neither flags nor a flag's value. */
export function positionalNames(argv: readonly string[], valueFlags: readonly string[]): string[] {
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') break;
    if (arg.startsWith('-')) {
      if (valueFlags.includes(arg)) i++;
      continue;
    }
    names.push(arg);
  }
  return names;
}

/** Flags that take a value in every day-2 command (their value is not a VM name). */
export const SELECTION_VALUE_FLAGS = ['--group', '-g', '--lab-dir'];

export interface OperationRun<F> {
  lab: LoadedLabFile;
  labDir: string;
  store: StateStore;
  json: boolean;
  names: string[];
  groups?: string[];
  all?: boolean;
  operation: string;
  call: OperationOptions<F>['call'];
  update?: OperationOptions<F>['update'];
  dryRun?: boolean;
  note: (message: string) => void;
}

/** Runs one day-2 operation on the selected VMs, with progress lines and Ctrl-C stopping after the current batch. */
export async function runOperation<F>(run: OperationRun<F>): Promise<OperationSummary<F>> {
  const progress = createProgress({ json: run.json, subjects: [], finishedBy: () => false });
  const interrupt = interruptOnSigint(run.note);
  try {
    return await operateOnVms<F>({
      lab: run.lab.lab,
      store: run.store,
      provider: providerCache({ lab: run.lab, labDir: run.labDir }),
      names: run.names,
      ...(run.groups ? { groups: run.groups } : {}),
      all: run.all ?? false,
      operation: run.operation,
      call: run.call,
      ...(run.update ? { update: run.update } : {}),
      ...(run.dryRun ? { dryRun: true } : {}),
      events: progress.sink,
      signal: interrupt.signal,
    });
  } finally {
    interrupt.dispose();
    await progress.stop();
  }
}

/** One row per VM: ok or the error (with its hint under the table); with --dry-run, what it would act on. */
export function operationTable<F>(summary: OperationSummary<F>, detail: (facts: F) => string): string {
  if (summary.dryRun)
    return `Would ${summary.operation}: ${summary.dryRun.selected.join(', ')} (nothing changed: --dry-run)`;
  return renderTable(summary.vms, [
    { header: 'name', get: (vm) => vm.name },
    { header: 'result', get: (vm) => (vm.ok ? 'ok' : 'failed') },
    { header: 'detail', get: (vm) => (vm.ok ? detail(vm.facts) : vm.error.message) },
  ]);
}

export function operationHints<F>(summary: OperationSummary<F>): string[] {
  return summary.vms.flatMap((vm) => (!vm.ok && vm.error.hint ? [`  ${vm.name}: ${vm.error.hint}`] : []));
}

/** After a start: wait until the started VMs answer SSH with their pinned keys (as `labctl ip --wait`). */
export async function waitForSsh(options: {
  lab: LoadedLabFile;
  labDir: string;
  store: StateStore;
  names: string[];
  timeoutS: number;
  events: EventSink;
}): Promise<AddressesSummary> {
  const interrupt = interruptOnSigint(() => {});
  try {
    return await refreshAddresses({
      lab: options.lab.lab,
      store: options.store,
      provider: providerCache({ lab: options.lab, labDir: options.labDir }),
      discover,
      names: options.names,
      wait: true,
      timeoutMs: options.timeoutS * 1000,
      events: options.events,
      signal: interrupt.signal,
    });
  } finally {
    interrupt.dispose();
  }
}
