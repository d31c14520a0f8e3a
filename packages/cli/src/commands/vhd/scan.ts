import { renderScan } from '@labctl/vhd/format';
import { type ScanResult, scanDir } from '@labctl/vhd/scan';
import { Args } from '@oclif/core';
import { LabctlCommand } from '../../base-command.js';

export default class VhdScan extends LabctlCommand<typeof VhdScan> {
  static override summary = 'Show every VHD/VHDX below a directory as a tree of parents and children.';
  static override description =
    'Like `vhd-util scan -p`: each base disk with its children indented below it. Flags: ORPHAN (its parent is missing or ' +
    'does not match), ANCESTOR-MISSING (a parent further up is), CYCLE, UNREADABLE (damaged file). Before merging anything into a ' +
    'shared parent, this shows every other child that depends on it. Files are only read.';
  static override examples = [
    { description: 'A storage directory', command: '<%= config.bin %> <%= command.id %> /var/lib/hyperv/disks' },
    { description: 'As JSON', command: '<%= config.bin %> <%= command.id %> ./recovered --json' },
  ];
  static override args = {
    dir: Args.directory({ description: 'Directory to scan (recursively)', required: true, exists: true }),
  };

  async run(): Promise<ScanResult> {
    const result = await scanDir(this.args.dir);
    this.log(renderScan(result));
    return result;
  }
}
