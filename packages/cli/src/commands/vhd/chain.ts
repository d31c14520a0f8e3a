import { openChain, type ChainLink } from '@labctl/vhd/chain';
import { renderChain } from '@labctl/vhd/format';
import { Args, Flags } from '@oclif/core';
import { LabctlCommand } from '../../base-command.js';

export interface VhdChainResult {
  file: string;
  depth: number;
  links: ChainLink[];
}

export const searchFlag = Flags.string({
  char: 's',
  summary: 'Also look for parents in this directory (repeatable).',
  multiple: true,
});
export const allowGrownChildFlag = Flags.boolean({
  summary:
    'Accept a parent smaller than its child (grown on purpose with vhd-util resize or Resize-VHD); refused by default.',
});

export default class VhdChain extends LabctlCommand<typeof VhdChain> {
  static override summary = 'Show the parent chain of a differencing disk, down to its base.';
  static override description =
    "Parents are looked for the way Hyper-V does: the absolute path locator, the relative locator (from the child's directory), " +
    "then the parent's file name next to the child, then each --search directory. Each parent must carry the UUID (VHD) or " +
    'DataWriteGuid (VHDX) the child recorded; a broken link names what was expected and what was found. Loops are refused. ' +
    'Every file is opened read-only.';
  static override examples = [
    { description: 'The chain of a recovered root disk', command: '<%= config.bin %> <%= command.id %> 7046409c.vhd' },
    {
      description: 'The parents were copied elsewhere',
      command: '<%= config.bin %> <%= command.id %> vm.avhdx --search /srv/golden',
    },
    { description: 'As JSON', command: '<%= config.bin %> <%= command.id %> vm.vhdx --json' },
  ];
  static override args = { file: Args.string({ description: 'VHD or VHDX file', required: true }) };
  static override flags = { search: searchFlag, 'allow-grown-child': allowGrownChildFlag };

  async run(): Promise<VhdChainResult> {
    const chain = await openChain(this.args.file, {
      search: this.flags.search ?? [],
      allowGrownChild: this.flags['allow-grown-child'],
    });
    try {
      this.log(renderChain(chain.links));
      for (const l of chain.links) {
        if (l.timestampMismatch) {
          this.note(
            `${l.path}: its ${l.timestampMismatch.compared} differs from what the child recorded (expected ${l.timestampMismatch.expected}, found ${l.timestampMismatch.found}); the parent may have been modified after the child was made${l.timestampMismatch.compared === 'file modification time' ? ' (or copied without keeping its modification time)' : ''}`,
          );
        }
      }
      return { file: this.args.file, depth: chain.links.length, links: chain.links };
    } finally {
      await chain.close();
    }
  }
}
