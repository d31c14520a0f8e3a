import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '@labctl/core/errors';
import { LAB_FILE, labNameFromDir, parseLabFile } from '@labctl/core/spec';
import { Flags } from '@oclif/core';
import { LabctlCommand } from '../base-command.js';
import { LAB_TEMPLATES } from '../lab-templates.js';

export interface InitResult {
  file: string;
  lab: string;
  provider: keyof typeof LAB_TEMPLATES;
}

export default class Init extends LabctlCommand<typeof Init> {
  static override summary = 'Start a lab: write a commented labctl.yaml for a provider in the lab directory.';
  static override examples = [
    { description: 'A libvirt lab in the current directory', command: '<%= config.bin %> <%= command.id %>' },
    {
      description: 'A Hyper-V lab in a new directory',
      command: '<%= config.bin %> <%= command.id %> --provider hyperv --lab-dir ~/labs/k8s',
    },
  ];
  static override flags = {
    provider: Flags.string({ summary: 'Hypervisor provider.', options: ['libvirt', 'hyperv'], default: 'libvirt' }),
    force: Flags.boolean({ summary: 'Replace an existing labctl.yaml.' }),
  };

  async run(): Promise<InitResult> {
    const provider = this.flags.provider as keyof typeof LAB_TEMPLATES;
    const lab = labNameFromDir(this.labDir);
    const file = join(this.labDir, LAB_FILE);
    const text = LAB_TEMPLATES[provider](lab);
    parseLabFile(text, file); // the template is a valid lab file, or this is a labctl bug
    await mkdir(this.labDir, { recursive: true });
    const existing = await stat(file).catch(() => undefined);
    // --force replaces a lab file, never a FIFO or a device that stands where it should be.
    if (existing && !existing.isFile())
      throw new UsageError('LABFILE_EXISTS', `${file} exists and is not a regular file`, { hint: 'Remove it first.' });
    try {
      await writeFile(file, text, { flag: this.flags.force ? 'w' : 'wx', mode: 0o644 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      throw new UsageError('LABFILE_EXISTS', `${file} exists; labctl init does not replace a lab file`, {
        hint: 'Edit it, or pass --force to replace it with the commented template.',
      });
    }
    this.log(`Wrote ${file} (${provider}). Edit it, then: labctl create --dry-run`);
    return { file, lab, provider };
  }
}
