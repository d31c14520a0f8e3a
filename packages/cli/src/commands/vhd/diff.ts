import { type DiffResult, createDifferencing } from '@labctl/vhd/diff';
import { Args, Flags } from '@oclif/core';
import { LabctlCommand } from '../../base-command.js';
import { searchFlag } from './chain.js';

export default class VhdDiff extends LabctlCommand<typeof VhdDiff> {
  static override summary = 'Create a differencing disk on a parent (what New-VHD -Differencing does).';
  static override description =
    "The child gets the parent's format and size, records the parent's UUID (VHD) or DataWriteGuid (VHDX), its file name and " +
    'its path relative to the child, so the two can be copied or moved together (vhd-util, qemu-img and labctl follow the ' +
    'relative path first). A VHD child records the absolute path too only with --absolute-parent: tools that follow it would ' +
    "read the original parent from a copied chain. The parent's own chain must be readable; the parent is only read. CHILD must not exist.";
  static override examples = [
    {
      description: 'A child of a golden image',
      command: '<%= config.bin %> <%= command.id %> golden.vhdx -o vm1.vhdx',
    },
    { description: 'A VHD child', command: '<%= config.bin %> <%= command.id %> base.vhd -o snap1.vhd' },
  ];
  static override args = { parent: Args.string({ description: 'The parent disk (VHD or VHDX)', required: true }) };
  static override flags = {
    output: Flags.string({
      char: 'o',
      summary: 'The new differencing disk (same format as the parent).',
      required: true,
    }),
    search: searchFlag,
    'absolute-parent': Flags.boolean({
      summary: "VHD: also record the parent's absolute path (a W2ku locator, after the relative one).",
    }),
  };

  async run(): Promise<DiffResult> {
    const result = await createDifferencing(this.args.parent, this.flags.output, {
      search: this.flags.search ?? [],
      ...(this.flags['absolute-parent'] ? { absoluteParent: true } : {}),
    });
    this.log(
      `${result.child}: ${result.format} differencing disk on ${result.parent} (parent ${result.format === 'vhd' ? 'UUID' : 'DataWriteGuid'} ${result.parentId})`,
    );
    return result;
  }
}
