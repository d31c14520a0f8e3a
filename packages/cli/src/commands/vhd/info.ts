import { openDisk } from '@labctl/vhd/chain';
import { renderInfo } from '@labctl/vhd/format';
import type { DiskInfo } from '@labctl/vhd/image';
import { Args } from '@oclif/core';
import { LabctlCommand } from '../../base-command.js';

export default class VhdInfo extends LabctlCommand<typeof VhdInfo> {
  static override summary = 'Show what a VHD or VHDX file is: type, sizes, identity, parent, checksums.';
  static override description =
    'Reads the footer and dynamic header (VHD) or the headers, region table and metadata (VHDX), like `vhd-util read -p`. ' +
    'The file is opened read-only. A damaged file is refused with the structure that is wrong; `labctl vhd check` lists every problem.';
  static override examples = [
    { description: 'A differencing disk and its parent link', command: '<%= config.bin %> <%= command.id %> root.vhd' },
    { description: 'As JSON', command: '<%= config.bin %> <%= command.id %> disk.vhdx --json' },
  ];
  static override args = { file: Args.string({ description: 'VHD or VHDX file', required: true }) };

  async run(): Promise<DiskInfo> {
    const image = await openDisk(this.args.file);
    try {
      const info = image.info();
      this.log(renderInfo(info));
      return info;
    } finally {
      await image.close();
    }
  }
}
