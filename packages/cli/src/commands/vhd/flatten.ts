import type { ProgressEvent } from '@labctl/core/events';
import { type FlattenResult, flatten } from '@labctl/vhd/flatten';
import { humanSize } from '@labctl/vhd/format';
import { Args, Flags } from '@oclif/core';
import { LabctlCommand } from '../../base-command.js';
import { allowGrownChildFlag, searchFlag } from './chain.js';

export default class VhdFlatten extends LabctlCommand<typeof VhdFlatten> {
  static override summary = 'Merge a differencing chain into a new standalone disk (the safe vhd-util coalesce).';
  static override description =
    'Reads the whole chain of FILE (parents found as `labctl vhd chain` finds them) and writes a new disk OUT that needs no ' +
    'parent. The chain is opened read-only and never modified, so a shared golden parent and its other children stay intact. ' +
    'OUT is written under a temporary name next to it and renamed when complete: an error or Ctrl-C leaves no partial file. ' +
    'Holes stay holes. OUT must not exist and must not be part of the chain. Format defaults to the extension of OUT.';
  static override examples = [
    {
      description: 'Merge a VM root disk into a new dynamic VHD',
      command: '<%= config.bin %> <%= command.id %> 7046409c.vhd -o ppvm3-root.vhd',
    },
    {
      description: 'A fixed VHDX',
      command: '<%= config.bin %> <%= command.id %> vm.avhdx -o vm-flat.vhdx --type fixed',
    },
    {
      description: 'A raw image for qemu',
      command: '<%= config.bin %> <%= command.id %> vm.vhdx -o vm.img --format raw',
    },
  ];
  static override args = { file: Args.string({ description: 'The top of the chain (VHD or VHDX)', required: true }) };
  static override flags = {
    output: Flags.string({ char: 'o', summary: 'The new disk to write (must not exist).', required: true }),
    format: Flags.string({
      summary: 'Output format (default: from the extension of --output; raw otherwise).',
      options: ['vhd', 'vhdx', 'raw'],
    }),
    type: Flags.string({ summary: 'Output type for vhd/vhdx.', options: ['dynamic', 'fixed'], default: 'dynamic' }),
    search: searchFlag,
    'allow-grown-child': allowGrownChildFlag,
  };

  async run(): Promise<FlattenResult> {
    const abort = new AbortController();
    const onSignal = () => abort.abort();
    // SIGHUP: the SSH session that ran labctl dropped; SIGQUIT: Ctrl-\. Each stops the copy and
    // removes the temporary output, like Ctrl-C.
    for (const signal of FLATTEN_SIGNALS) process.once(signal, onSignal);
    try {
      const result = await flatten(this.args.file, this.flags.output, {
        ...(this.flags.format ? { format: this.flags.format as 'vhd' | 'vhdx' | 'raw' } : {}),
        type: this.flags.type as 'dynamic' | 'fixed',
        search: this.flags.search ?? [],
        allowGrownChild: this.flags['allow-grown-child'],
        events: this.progressBar(),
        signal: abort.signal,
      });
      this.log(
        `${result.output}: ${result.format}${result.format === 'raw' ? '' : ` ${result.type}`}, ${humanSize(result.virtualSize)} virtual, ` +
          `${humanSize(result.dataBytes)} of data from ${result.chain.length} layer(s) in ${result.seconds.toFixed(1)} s`,
      );
      return result;
    } finally {
      for (const signal of FLATTEN_SIGNALS) process.off(signal, onSignal);
    }
  }

  /** A one-line bar on a terminal, a line every 10 % otherwise, nothing with --json. */
  private progressBar(): (event: ProgressEvent) => void {
    if (this.jsonEnabled()) return () => {};
    const tty = process.stderr.isTTY;
    let lastTenth = -1;
    return (event) => {
      if (event.status !== 'progress' || event.fraction === undefined) return;
      const percent = Math.floor(event.fraction * 100);
      if (tty) {
        const width = 30;
        const filled = Math.round((percent / 100) * width);
        process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(percent).padStart(3)}%`);
        if (percent >= 100) process.stderr.write('\n');
      } else if (Math.floor(percent / 10) > lastTenth) {
        lastTenth = Math.floor(percent / 10);
        process.stderr.write(`${event.subject}: ${percent}%\n`);
      }
    };
  }
}

const FLATTEN_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;
