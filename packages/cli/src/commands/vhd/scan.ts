import { renderScan } from '@labctl/vhd/format';
import { type ScanResult, scanDir } from '@labctl/vhd/scan';
import { Args, Flags } from '@oclif/core';
import { LabctlCommand } from '../../base-command.js';

export default class VhdScan extends LabctlCommand<typeof VhdScan> {
  static override summary = 'Show every VHD/VHDX below a directory as a tree of parents and children.';
  static override description =
    'Like `vhd-util scan -p`: each base disk with its children indented below it. Flags: ORPHAN (its parent is missing or ' +
    'does not match), ANCESTOR-MISSING (a parent further up is), CYCLE, UNREADABLE (damaged file). Before merging anything into a ' +
    'shared parent, this shows every other child that depends on it. Disks are found by content, not by name: every regular ' +
    'file that holds a VHD or VHDX (XenServer names volumes VHD-<uuid>, without an extension), and every .vhd/.vhdx/.avhdx ' +
    "name (a damaged one is flagged). --pattern looks only at names matching a glob. blktap's hidden flag is shown as " +
    'hidden=1. Files are only read.';
  static override examples = [
    { description: 'A storage directory', command: '<%= config.bin %> <%= command.id %> /var/lib/hyperv/disks' },
    { description: 'As JSON', command: '<%= config.bin %> <%= command.id %> ./recovered --json' },
    {
      description: 'A XenServer file SR: only the VHD-<uuid> volumes',
      command: "<%= config.bin %> <%= command.id %> /var/run/sr-mount/<sr-uuid> --pattern 'VHD-*'",
    },
  ];
  static override args = {
    dir: Args.directory({ description: 'Directory to scan (recursively)', required: true, exists: true }),
  };

  static override flags = {
    pattern: Flags.string({
      summary: 'Only files whose name matches this glob (*, ?, [abc]); one that is no VHD/VHDX is flagged.',
    }),
  };

  async run(): Promise<ScanResult> {
    const result = await scanDir(
      this.args.dir,
      this.flags.pattern !== undefined ? { pattern: this.flags.pattern } : {},
    );
    this.log(renderScan(result));
    return result;
  }
}
