import { type CheckResult, checkDisk } from '@labctl/vhd/check';
import { Args } from '@oclif/core';
import { LabctlCommand } from '../../base-command.js';
import { allowGrownChildFlag, searchFlag } from './chain.js';

export default class VhdCheck extends LabctlCommand<typeof VhdCheck> {
  static override summary = 'Validate the structure of a VHD or VHDX; exit 1 when anything is wrong.';
  static override description =
    'Checks checksums (footer, dynamic header, VHDX headers and region tables), that every BAT entry lies inside the file, ' +
    'aligned and overlapping nothing, that bitmaps exist where the format needs them, that the VHDX log is empty, and, for a ' +
    'differencing disk, that its parent can be found and matches. Lists every problem found; never modifies the file.';
  static override examples = [
    { description: 'Check one disk', command: '<%= config.bin %> <%= command.id %> disk.vhd' },
    { description: 'In a script', command: '<%= config.bin %> <%= command.id %> disk.vhdx --json || echo damaged' },
  ];
  static override args = { file: Args.string({ description: 'VHD or VHDX file', required: true }) };
  static override flags = { search: searchFlag, 'allow-grown-child': allowGrownChildFlag };

  async run(): Promise<CheckResult> {
    const result = await checkDisk(this.args.file, {
      search: this.flags.search ?? [],
      allowGrownChild: this.flags['allow-grown-child'],
    });
    const what = result.format ? `${result.format} ${result.type}` : 'unreadable';
    if (result.findings.length === 0) this.log(`${result.path}: ok (${what})`);
    for (const f of result.findings) this.log(`${f.severity.toUpperCase()} ${f.code}: ${f.message}`);
    if (!result.ok) {
      if (this.jsonEnabled()) this.logJson(result);
      else this.log(`${result.path}: ${result.findings.filter((f) => f.severity === 'error').length} problem(s) found`);
      this.exit(1);
    }
    return result;
  }
}
